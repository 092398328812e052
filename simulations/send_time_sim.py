"""Send-time policies on a synthetic audience whose recipients prefer different hours.

Each recipient has a base click rate and, for a share of them, a preferred hour of their local day:
their click probability peaks there and falls off with the circular distance from it. The others
follow one population-wide curve over the day. Each recipient's past engagement (a few clicks drawn at
hours in proportion to their rates) is what a contextual policy sees, as the share of past clicks at
each hour.

Four timing policies send to the same recipients for the same number of sends:

- ``fixed``: the hour most senders use (``fixed_hour``);
- ``best_single_hour``: the one hour best for the population as a whole (the true one: an oracle);
- ``explore_then_best2``: an exploratory send spread evenly over the hours, then each send within two
  hours of the best hour observed so far (as Klaviyo's Smart Send Time);
- ``contextual``: the same exploratory send, then :class:`HourModel`, an epsilon-greedy contextual
  policy: one ridge regression of the click on features of (recipient, hour) — the recipient's share of
  past clicks at that hour and around it, and the hour itself — learned from every send.

Pure numpy and :mod:`bandit`; the random generator is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulations.data import LoggedData
from simulations.estimates import PolicyEstimate
from simulations.estimators import estimate_policy_value

HOURS = 24
TIMING_POLICIES = ("fixed", "best_single_hour", "explore_then_best2", "contextual")


@dataclass(frozen=True)
class HourAudience:
    """Recipients with their click probability at each local hour and their past engagement.

    Attributes
    ----------
    rates : ndarray of float, shape (n, 24)
        The probability that a send at each hour earns a click.
    preferred : ndarray of int, shape (n,)
        The preferred hour, -1 for a recipient without one.
    engagement : ndarray of float, shape (n, 24)
        Past clicks at each hour, as a share of the recipient's past clicks (zeros when none).
    """

    rates: np.ndarray
    preferred: np.ndarray
    engagement: np.ndarray

    @property
    def n(self) -> int:
        return int(self.rates.shape[0])


def make_audience(
    n: int,
    rng: np.random.Generator,
    *,
    preference_share: float = 0.7,
    peak_lift: float = 6.0,
    spread_hours: float = 1.5,
    past_clicks_mean: float = 8.0,
) -> HourAudience:
    """Draw ``n`` recipients: base rates ~ Beta(2, 30); a share with a preferred hour (uniform over 06
    to 22) whose rate there is ``peak_lift`` times their off-peak rate (a Gaussian bump of
    ``spread_hours`` in circular distance); the others on a day curve peaking at 10:00 and 19:00; past
    clicks ~ Poisson(``past_clicks_mean``) at hours drawn in proportion to the rates. The mean rate over
    the day is the base rate for both kinds of recipient."""
    hours = np.arange(HOURS)
    base = rng.beta(2.0, 30.0, size=n)
    has_preference = rng.random(n) < preference_share
    preferred = np.where(has_preference, rng.integers(6, 23, size=n), -1)
    distance = np.abs(hours[None, :] - preferred[:, None])
    distance = np.minimum(distance, HOURS - distance)
    bump = 1.0 + (peak_lift - 1.0) * np.exp(-(distance**2) / (2 * spread_hours**2))
    bump /= bump.mean(axis=1, keepdims=True)
    day = 0.4 + 0.8 * np.exp(-((hours - 10) ** 2) / 8.0) + 0.6 * np.exp(-((hours - 19) ** 2) / 4.0)
    shape = np.where(has_preference[:, None], bump, day[None, :] / day.mean())
    rates = np.clip(base[:, None] * shape, 0.0, 1.0)
    past = rng.poisson(past_clicks_mean, size=n)
    engagement = np.zeros((n, HOURS))
    for i in np.flatnonzero(past):
        counts = rng.multinomial(past[i], rates[i] / rates[i].sum())
        engagement[i] = counts / past[i]
    return HourAudience(rates, preferred, engagement)


@dataclass(frozen=True)
class TimingRun:
    """What one policy earned: clicks per send (a list, one per send)."""

    policy: str
    clicks: list[int]

    @property
    def total(self) -> int:
        return int(sum(self.clicks))


def _send(audience: HourAudience, hours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(audience.n) < audience.rates[np.arange(audience.n), hours]).astype(float)


def run_timing_policy(
    name: str, audience: HourAudience, sends: int, rng: np.random.Generator, *, fixed_hour: int = 8
) -> TimingRun:
    """Send ``sends`` times to every recipient by the timing policy ``name`` (:data:`TIMING_POLICIES`)."""
    n = audience.n
    clicks: list[int] = []
    if name in ("fixed", "best_single_hour"):
        hour = fixed_hour if name == "fixed" else int(np.argmax(audience.rates.mean(axis=0)))
        for _ in range(sends):
            clicks.append(int(_send(audience, np.full(n, hour), rng).sum()))
        return TimingRun(name, clicks)
    if name == "explore_then_best2":
        sent_per_hour, clicks_per_hour = np.zeros(HOURS), np.zeros(HOURS)
        hours = rng.integers(0, HOURS, size=n)  # the exploratory send: every hour equally
        for _ in range(sends):
            reward = _send(audience, hours, rng)
            clicks.append(int(reward.sum()))
            sent_per_hour += np.bincount(hours, minlength=HOURS)
            clicks_per_hour += np.bincount(hours, weights=reward, minlength=HOURS)
            best = int(np.argmax(clicks_per_hour / np.maximum(sent_per_hour, 1)))
            hours = (best + rng.integers(-2, 3, size=n)) % HOURS
        return TimingRun(name, clicks)
    if name == "contextual":
        model = HourModel(epsilon=0.05)
        hours, propensities = rng.integers(0, HOURS, size=n), np.full(n, 1.0 / HOURS)
        for _ in range(sends):
            reward = _send(audience, hours, rng)
            clicks.append(int(reward.sum()))
            model.update(audience.engagement, hours, reward)
            hours, propensities = model.choose(audience.engagement, rng)
        return TimingRun(name, clicks)
    raise ValueError(f"policy: unknown timing policy {name!r}; choose from {list(TIMING_POLICIES)}")


def hour_features(engagement: np.ndarray) -> np.ndarray:
    """Features of every (recipient, hour): the share of the recipient's past clicks at the hour, within
    two hours of it, whether they have any past click, and the hour one-hot. Shape ``(n, 24, 27)``."""
    n = engagement.shape[0]
    near = sum(np.roll(engagement, shift, axis=1) for shift in (-2, -1, 1, 2))
    has_past = np.repeat((engagement.sum(axis=1) > 0).astype(float)[:, None], HOURS, axis=1)
    one_hot = np.broadcast_to(np.eye(HOURS), (n, HOURS, HOURS))
    return np.concatenate([engagement[..., None], near[..., None], has_past[..., None], one_hot], axis=2)


class HourModel:
    """An epsilon-greedy timing policy over :func:`hour_features`: a ridge regression shared by all
    hours picks each recipient's best hour; with probability ``epsilon`` the hour is uniform instead.

    The propensity of the chosen hour is ``1 - epsilon + epsilon / 24`` for the model's best hour, else
    ``epsilon / 24``.
    """

    def __init__(self, epsilon: float = 0.05, regularization: float = 1.0) -> None:
        self.epsilon = epsilon
        self._xtx = regularization * np.eye(3 + HOURS)
        self._xty = np.zeros(3 + HOURS)

    def update(self, engagement: np.ndarray, hours: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from one send: each recipient's hour (shape ``(n,)``) and click (0 or 1)."""
        x = hour_features(engagement)[np.arange(len(hours)), hours]
        self._xtx += x.T @ x
        self._xty += x.T @ rewards

    def choose(self, engagement: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Each recipient's hour and its propensity, shapes ``(n,)``."""
        theta = np.linalg.solve(self._xtx, self._xty)
        best = np.argmax(hour_features(engagement) @ theta, axis=1)
        n = engagement.shape[0]
        explore = rng.random(n) < self.epsilon
        hours = np.where(explore, rng.integers(0, HOURS, size=n), best)
        uniform = self.epsilon / HOURS
        return hours, np.where(hours == best, 1.0 - self.epsilon + uniform, uniform)


def exploratory_log(audience: HourAudience, rng: np.random.Generator) -> LoggedData:
    """One exploratory send, every hour with probability 1/24, logged with its propensities."""
    hours = rng.integers(0, HOURS, size=audience.n)
    return LoggedData(
        contexts=np.zeros((audience.n, 0)),
        actions=hours,
        rewards=_send(audience, hours, rng),
        propensities=np.full(audience.n, 1.0 / HOURS),
        action_names=tuple(f"{h:02d}:00" for h in range(HOURS)),
    )


def engagement_hours(audience: HourAudience, fallback_hour: int = 10) -> np.ndarray:
    """A deterministic timing policy: each recipient's hour of most past clicks (``fallback_hour``
    for a recipient without any)."""
    has_past = audience.engagement.sum(axis=1) > 0
    return np.where(has_past, np.argmax(audience.engagement, axis=1), fallback_hour)


def evaluate_timing_offline(
    audience: HourAudience,
    log: LoggedData,
    policy: Callable[[HourAudience], np.ndarray],
    alpha: float = 0.05,
) -> tuple[PolicyEstimate, float]:
    """The IPS estimate of a deterministic timing policy from ``log`` and its on-policy value on the
    same recipients (the mean of their true click probabilities at the hours it picks)."""
    hours = policy(audience)
    target = np.zeros((audience.n, HOURS))
    target[np.arange(audience.n), hours] = 1.0
    estimate = estimate_policy_value("ips", log, target, alpha=alpha)
    return estimate, float(audience.rates[np.arange(audience.n), hours].mean())
