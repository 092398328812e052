r"""One policy through a scenario with ``timing``: sends on a clock, events after delays in hours.

Send ``w`` (from 0) goes out at hour :math:`w \Delta` (``interval_hours``). A recipient who responds
has the event after a delay drawn from the reward event's distribution; an event after
``window_hours`` is not attributed (reward 0). The other events of ``timing.event_rates`` (clicks of
a conversion scenario) happen with their own rates and delays, independently of the reward event, and
are counted with their delays but never rewarded nor learned. Before each send, and once more one
interval after the last, the policy learns what it knows at that hour, in its ``delays`` mode
(:mod:`simulations.scenario_timing`): every row it has learned is kept with the reward and weight it
was learned with, so a later change is a ``revise`` (exact for the policies that can revise).

The drift monitor judges each send at the first learning when its window has closed, or earlier once
the share :math:`F(a)` of events expected by its age :math:`a` reaches ``monitor.min_arrival``, with
:math:`F` the Kaplan–Meier delay estimate of the log so far (trusted once some decisions have been
followed for the whole window: :mod:`analysis.delays`). The policy's Beta posterior at the send (its
own, or the Beta(1, 1) posterior of the rows it learned) predicts the reward of its choices that will
have arrived, against what arrived (:func:`analysis.drift.predict_reward`). Sends made before any
decision had been followed for a whole window are not judged: until then a policy that learns early
rests on a delay model the log cannot yet pin down (how many events are still to come), and its
predictions say more about that than about the audience. Nor is a send still too young when the run
ends. The calibration of
:mod:`analysis.drift` assumes each send is predicted from everything known before it; a policy that
waits for whole windows predicts several sends from the same stale posterior, so their residuals are
correlated and its false alarm rate is higher than the stated bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.delays import DelayModel, DelayModelKind, KaplanMeierDelay, arrival_weights, fit_delay_model
from analysis.drift import DriftDay, DriftReport, monitor_drift, predict_reward
from bandit.policy import Policy
from simulations.data import SimulationInputError
from simulations.scenario import Scenario
from simulations.scenario_timing import PolicySpec

HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class TimedRun:
    """What one policy did on one seed of a timed scenario.

    Attributes
    ----------
    reward, regret : ndarray of float, shape (waves,)
        Realised reward (events within the window) and expected regret per send.
    send_traffic : ndarray of int, shape (waves, k)
    successes : ndarray of int, shape (k,)
    mismatches : int
        Recipients not sent their own best variant.
    posterior : ndarray of float, shape (2, k)
        The Beta posterior ``(alpha, beta)`` after the last learning.
    drift : DriftReport
    event_counts : dict of str to ndarray of int, shape (waves,)
        Per event besides the reward, its events within the window per send.
    event_delays : dict of str to ndarray of float
        Per event besides the reward, the delay in hours of each of those events.
    """

    reward: np.ndarray
    regret: np.ndarray
    send_traffic: np.ndarray
    successes: np.ndarray
    mismatches: int
    posterior: np.ndarray
    drift: DriftReport
    event_counts: dict[str, np.ndarray]
    event_delays: dict[str, np.ndarray]


def draw_delays(scenario: Scenario, sizes: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
    """One delay in hours per recipient of each wave (used when the recipient responds)."""
    if scenario.timing is None:
        raise SimulationInputError("timing: the scenario has no timing")  # pragma: no cover
    return [scenario.timing.delay.draw(rng.random(n)) for n in sizes]


def draw_events(scenario: Scenario, sizes: Sequence[int],
                rng: np.random.Generator) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per event besides the reward, per wave: each recipient's uniform (whether the event happens,
    against its rate for the variant sent) and delay in hours."""
    if scenario.timing is None:
        raise SimulationInputError("timing: the scenario has no timing")  # pragma: no cover
    return {event: [(rng.random(n), scenario.timing.delays[event].draw(rng.random(n))) for n in sizes]
            for event in scenario.timing.others}


def _beta_posterior(policy: Policy, actions: np.ndarray, weights: np.ndarray, rewards: np.ndarray,
                    k: int) -> np.ndarray:
    """The policy's Beta posterior, or Beta(1, 1) updated by the rows it learned: shape (2, k)."""
    if hasattr(policy, "posterior"):
        alpha, beta = policy.posterior()
        return np.stack([alpha, beta])
    successes = np.bincount(actions, weights=weights * rewards, minlength=k)
    trials = np.bincount(actions, weights=weights, minlength=k)
    return np.stack([1.0 + successes, 1.0 + trials - successes])


class _Log:
    """The decisions sent so far and what the policy learned of each (arrays grown per send)."""

    def __init__(self, total: int) -> None:
        self.count = 0
        self.send_hour = np.zeros(total)
        self.event_hour = np.full(total, np.inf)
        self.action = np.zeros(total, dtype=np.int64)
        self.propensity = np.ones(total)
        self.contexts: list[Any] = []
        self.learned_weight = np.zeros(total)
        self.learned_reward = np.zeros(total)
        self._models: dict[tuple[float, str], DelayModel | None] = {}

    def add(self, hour: float, contexts: list[Any], actions: np.ndarray, propensities: np.ndarray,
            event_hours: np.ndarray) -> slice:
        rows = slice(self.count, self.count + actions.size)
        self.send_hour[rows] = hour
        self.action[rows] = actions
        self.propensity[rows] = propensities
        self.event_hour[rows] = event_hours
        self.contexts.extend(contexts)
        self.count += actions.size
        return rows

    def delay_model(self, now: float, window: float, kind: DelayModelKind) -> DelayModel | None:
        """The delay model fitted to what is known at ``now`` (None before any event arrived)."""
        key = (now, kind)
        if key not in self._models:
            self._models = {key: self._fitted(now, window, kind)}
        return self._models[key]

    def _fitted(self, now: float, window: float, kind: DelayModelKind) -> DelayModel | None:
        send, event = self.send_hour[: self.count], self.event_hour[: self.count]
        arrived = event <= now
        elapsed = np.where(arrived, event - send, np.minimum(now - send, window))  # delay, or follow-up
        if not arrived.any():
            return None
        return fit_delay_model(elapsed, arrived, window, kind)


def _learn(policy: Policy, log: _Log, now: float, spec: PolicySpec, window: float) -> None:
    """Bring the policy up to what is known at hour ``now``, in the spec's ``delays`` mode."""
    n = log.count
    elapsed = now - log.send_hour[:n]
    arrived = log.event_hour[:n] <= now
    reward = arrived.astype(np.float64)
    closed = elapsed >= window
    if spec.delays == "wait":
        weight = closed.astype(np.float64)
    elif spec.delays == "zero":
        weight = np.ones(n)
    else:
        model = log.delay_model(now, window, spec.delay_model)
        weight = ((arrived | closed).astype(np.float64) if model is None
                  else arrival_weights(elapsed, arrived, model))
    old_weight, old_reward = log.learned_weight[:n], log.learned_reward[:n]
    new = (old_weight == 0) & (weight > 0)
    changed = (old_weight > 0) & ((weight != old_weight) | (reward != old_reward))
    times = log.send_hour[:n] / HOURS_PER_DAY
    fractional = spec.delays == "model"
    if changed.any():
        rows = np.flatnonzero(changed)
        policy.revise([log.contexts[i] for i in rows], log.action[rows], old_reward[rows], reward[rows],
                      old_weights=old_weight[rows], new_weights=weight[rows], times=times[rows])
    if new.any():
        rows = np.flatnonzero(new)
        policy.update([log.contexts[i] for i in rows], log.action[rows], reward[rows], log.propensity[rows],
                      weights=weight[rows] if fractional else None, times=times[rows])
    log.learned_weight[:n] = np.where(new | changed, weight, old_weight)
    log.learned_reward[:n] = np.where(new | changed, reward, old_reward)


def run_timed(
    policy: Policy,
    spec: PolicySpec,
    scenario: Scenario,
    waves: Sequence[Any],
    delays: Sequence[np.ndarray],
    rng: np.random.Generator,
    events: dict[str, list[tuple[np.ndarray, np.ndarray]]] | None = None,
) -> TimedRun:
    """Run one policy through the sends of one seed (see the module docstring).

    Parameters
    ----------
    policy : Policy
    spec : PolicySpec
        Its ``delays`` mode and delay model.
    scenario : Scenario
        With ``timing``.
    waves : sequence of Population
    delays : sequence of ndarray
        Per wave, each recipient's delay in hours (:func:`draw_delays`).
    rng : numpy.random.Generator
        The policy's choices.
    events : dict, optional
        The other events' draws (:func:`draw_events`); without them none are simulated.

    Returns
    -------
    TimedRun
    """
    timing = scenario.timing
    if timing is None:
        raise SimulationInputError("timing: the scenario has no timing")  # pragma: no cover
    if spec.delays != "wait" and not policy.can_revise:
        raise SimulationInputError(
            f"policies: delays {spec.delays!r} learns a decision before its outcome is final and revises it "
            f"later, which {spec.policy!r} cannot do; use delays: wait"
        )
    k, interval, window = len(scenario.variants), timing.interval_hours, timing.window_hours
    in_window = timing.in_window
    log = _Log(sum(len(w.uniforms) for w in waves))
    reward, regret = np.zeros(len(waves)), np.zeros(len(waves))
    send_traffic = np.zeros((len(waves), k), dtype=np.int64)
    successes = np.zeros(k, dtype=np.int64)
    mismatches = 0
    judged: list[tuple[int, np.ndarray, slice]] = []
    days: list[DriftDay] = []
    others = events or {}
    event_rates = {e: np.array([timing.event_rates[e][v] for v in scenario.variants]) for e in others}
    event_counts = {e: np.zeros(len(waves), dtype=np.int64) for e in others}
    event_delays: dict[str, list[np.ndarray]] = {e: [] for e in others}

    def judge(now: float) -> None:
        model = log.delay_model(now, window, "kaplan_meier")
        trusted = isinstance(model, KaplanMeierDelay)
        for item in list(judged):
            w, posterior, rows = item
            age = now - log.send_hour[rows.start]
            arrival = 1.0 if age >= window else float(model.cdf(age)) if trusted and model else 0.0
            if age < window and arrival < scenario.monitor.min_arrival:
                continue
            judged.remove(item)
            predicted, variance = predict_reward(posterior[0], posterior[1], send_traffic[w], arrival)
            if variance > 0:
                observed = float(np.count_nonzero(log.event_hour[rows] <= now))
                days.append(DriftDay(w + 1, w + 1, int(send_traffic[w].sum()), predicted, variance, observed))

    for w, population in enumerate(waves):
        now = w * interval
        _learn(policy, log, now, spec, window)
        judge(now)
        n = log.count
        learned = log.learned_weight[:n]
        posterior = _beta_posterior(policy, log.action[:n], learned, log.learned_reward[:n], k)
        choices = policy.choose(population.contexts, rng)
        actions = np.asarray(choices.actions)
        chosen_p = population.probabilities[np.arange(actions.size), actions]
        responded = population.uniforms < chosen_p
        attributed = responded & (delays[w] <= window)
        rows = log.add(now, list(population.contexts), actions, np.asarray(choices.propensities),
                       np.where(attributed, now + delays[w], np.inf))
        best_p = population.probabilities.max(axis=1)
        reward[w] = attributed.sum()
        regret[w] = float(np.sum(best_p - chosen_p)) * in_window
        send_traffic[w] = np.bincount(actions, minlength=k)
        successes += np.bincount(actions, weights=attributed, minlength=k).astype(np.int64)
        mismatches += int(np.count_nonzero(chosen_p < best_p))
        for event, draws in others.items():
            uniforms, hours = draws[w]
            happened = (uniforms < event_rates[event][actions]) & (hours <= window)
            event_counts[event][w] = np.count_nonzero(happened)
            event_delays[event].append(hours[happened])
        if learned.sum() > 0 and now >= window:  # some decision followed for a whole window
            judged.append((w, posterior, rows))
    end = len(waves) * interval
    _learn(policy, log, end, spec, window)
    judge(end)
    final = _beta_posterior(policy, log.action[: log.count], log.learned_weight[: log.count],
                            log.learned_reward[: log.count], k)
    drift = monitor_drift(sorted(days, key=lambda d: d.day), horizon=scenario.monitor.horizon,
                          false_alarm_rate=scenario.monitor.false_alarm_rate)
    return TimedRun(reward, regret, send_traffic, successes, mismatches, final, drift, event_counts,
                    {e: np.concatenate(d) for e, d in event_delays.items()})
