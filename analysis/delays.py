r"""How long an event takes to arrive after its send, estimated from censored observations.

Each decision contributes one pair: ``elapsed_hours``, the time from its send to its event when the
event arrived (``observed``), or else to now (censored: the event may still come, or never). Events
that arrive after the attribution window ``window_hours`` are not attributed, so follow-up stops at
the window and a decision whose window has closed without an event is a final zero.

Two estimators of the delay distribution, both conditional on the event arriving within the window,

.. math:: F(t) = P(D \le t \mid D \le W,\ \text{event}),

which is what delay-aware learning needs (:func:`arrival_weights`):

- :func:`fit_exponential_delay`, Chapelle's delayed-feedback model without features (O. Chapelle,
  "Modeling delayed feedback in display advertising", KDD 2014): an event happens at all with
  probability :math:`p` and then after an exponential delay of rate :math:`\lambda`; fitted by maximum
  likelihood with censoring;
- :func:`fit_lognormal_delay`, the same model with a lognormal delay (conversions that rarely come
  within the first hours);
- :func:`fit_kaplan_meier_delay`, the nonparametric Kaplan–Meier estimate of the survival of
  "no event yet" (Kaplan & Meier, JASA 1958), normalised by its value at the end of follow-up.

:func:`arrival_weights` turns a model into the trial weights of delay-aware learning (Vernade, Cappé &
Perchet, "Stochastic bandit models for delayed conversions", UAI 2017): a decision sent ``e`` hours ago
without its event counts as :math:`F(e)` of a trial with reward 0, since it would have shown its event
by now with probability :math:`F(e)` had it one; an arrived event, or a closed window, counts as a
whole trial (the policy revises the row to weight 1: ``Policy.revise``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import optimize, special

from analysis.errors import AnalysisInputError

#: How the delay distribution is estimated (:func:`fit_delay_model`).
DelayModelKind = Literal["exponential", "lognormal", "kaplan_meier"]
DELAY_MODEL_KINDS: tuple[DelayModelKind, ...] = ("exponential", "lognormal", "kaplan_meier")


class DelayModel(Protocol):
    """What delay-aware learning needs of a delay estimate."""

    window_hours: float

    def cdf(self, hours: np.ndarray | float) -> np.ndarray:
        """:math:`P(D \\le t \\mid D \\le W, \\text{event})` at each ``hours``."""
        ...


def _pairs(
    elapsed_hours: np.ndarray, observed: np.ndarray, window_hours: float
) -> tuple[np.ndarray, np.ndarray]:
    if not (np.isfinite(window_hours) and window_hours > 0):
        raise AnalysisInputError(f"window_hours: must be a positive number of hours, got {window_hours!r}")
    elapsed = np.asarray(elapsed_hours, dtype=np.float64)
    seen = np.asarray(observed)
    if elapsed.ndim != 1 or seen.shape != elapsed.shape:
        raise AnalysisInputError(
            f"elapsed_hours and observed: expected two 1-D arrays of one length, got shapes "
            f"{elapsed.shape} and {seen.shape}"
        )
    if seen.dtype != np.bool_:
        raise AnalysisInputError(f"observed: expected booleans, got {seen.dtype}")
    if not np.all(np.isfinite(elapsed)) or np.any(elapsed < 0):
        raise AnalysisInputError("elapsed_hours: must be finite and >= 0")
    if np.any(elapsed[seen] > window_hours):
        raise AnalysisInputError(
            f"elapsed_hours: an observed event arrived after window_hours ({window_hours:g}); such events "
            "are not attributed and belong with the censored zeros"
        )
    if not seen.any():
        raise AnalysisInputError("observed: no event has arrived yet, so no delay can be estimated")
    return np.minimum(elapsed, window_hours), seen


@dataclass(frozen=True)
class ExponentialDelay:
    r"""Chapelle's model: an event with probability ``event_probability``, after an exponential delay.

    Attributes
    ----------
    rate_per_hour : float
        :math:`\lambda`; the mean delay of the events that happen is :math:`1 / \lambda` hours.
    event_probability : float
        :math:`p`, the probability that a decision has the event at all (within or after the window).
    window_hours : float
    iterations : int
        Optimiser iterations.
    """

    rate_per_hour: float
    event_probability: float
    window_hours: float
    iterations: int = 0

    @property
    def mean_hours(self) -> float:
        """The mean delay of an event, :math:`1 / \\lambda`."""
        return 1.0 / self.rate_per_hour

    def cdf(self, hours: np.ndarray | float) -> np.ndarray:
        r""":math:`F(t) = (1 - e^{-\lambda \min(t, W)}) / (1 - e^{-\lambda W})`."""
        t = np.clip(np.asarray(hours, dtype=np.float64), 0.0, self.window_hours)
        return -np.expm1(-self.rate_per_hour * t) / -np.expm1(-self.rate_per_hour * self.window_hours)


def exponential_log_likelihood(
    rate_per_hour: float, event_probability: float, elapsed_hours: np.ndarray, observed: np.ndarray
) -> float:
    r"""Chapelle's log-likelihood of censored delays,

    .. math:: \sum_{\text{observed}} \log(p \lambda e^{-\lambda d_i})
              + \sum_{\text{censored}} \log(1 - p + p e^{-\lambda e_i}).
    """
    d = elapsed_hours[observed]
    e = elapsed_hours[~observed]
    lam, p = rate_per_hour, event_probability
    return float(np.sum(np.log(p * lam) - lam * d) + np.sum(np.log1p(-p * -np.expm1(-lam * e))))


def fit_exponential_delay(
    elapsed_hours: np.ndarray, observed: np.ndarray, window_hours: float
) -> ExponentialDelay:
    r"""Fit Chapelle's delayed-feedback model (no features) by maximum likelihood.

    Maximises :func:`exponential_log_likelihood` over :math:`(\log \lambda, \operatorname{logit} p)`
    by Newton's method (:func:`_newton`), censored times grouped by value. Chapelle (KDD 2014,
    section 4) fits the same likelihood with a conversion model; here the conversion rate is one
    constant. Elapsed times are capped at ``window_hours`` (follow-up stops there). While few decisions
    have been followed long, a slow delay with a high :math:`p` and a fast one with a low :math:`p`
    explain the data almost equally well: :math:`p` is then poorly determined, :math:`F` less so.

    Parameters
    ----------
    elapsed_hours : ndarray of float, shape (n,)
        Hours from send to the event (``observed``) or to now (censored), >= 0.
    observed : ndarray of bool, shape (n,)
    window_hours : float
        The attribution window; observed delays must not exceed it.

    Returns
    -------
    ExponentialDelay
    """
    elapsed, seen = _pairs(elapsed_hours, observed, window_hours)
    n_obs = float(seen.sum())
    d_sum = float(elapsed[seen].sum())
    censored, counts = np.unique(elapsed[~seen], return_counts=True)

    def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        lam, p = float(np.exp(theta[0])), float(special.expit(theta[1]))
        survive = np.exp(-lam * censored)
        stay = 1.0 - p + p * survive  # P(no event by e) for a censored decision
        value = n_obs * (np.log(p) + np.log(lam)) - lam * d_sum + float(np.dot(counts, np.log(stay)))
        d_lam = n_obs / lam - d_sum - float(np.dot(counts, p * censored * survive / stay))
        d_p = n_obs / p + float(np.dot(counts, (survive - 1.0) / stay))
        return value, np.array([lam * d_lam, p * (1 - p) * d_p])

    start_p = min(max(n_obs / elapsed.size, 1e-6), 1 - 1e-6)
    start_rate = n_obs / max(d_sum + float(np.dot(counts, censored)), 1e-12)
    theta, iterations = _newton(value_and_gradient, np.array([np.log(start_rate), special.logit(start_p)]))
    rate, probability = float(np.exp(theta[0])), float(special.expit(theta[1]))
    return ExponentialDelay(rate, probability, float(window_hours), iterations)


def _newton(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]], theta: np.ndarray
) -> tuple[np.ndarray, int]:
    """Maximise a smooth concave-near-the-top function of two parameters: Newton steps with the Hessian
    by central differences of the gradient, halved until the value rises (a gradient step where the
    Hessian is not negative definite); parameters kept within +-30."""
    value, gradient = value_and_gradient(theta)
    for iteration in range(1, 201):
        h = 1e-5
        hessian = np.column_stack([
            (value_and_gradient(theta + h * e)[1] - value_and_gradient(theta - h * e)[1]) / (2 * h)
            for e in np.eye(2)
        ])
        hessian = (hessian + hessian.T) / 2
        if np.all(np.linalg.eigvalsh(hessian) < 0):
            step = -np.linalg.solve(hessian, gradient)
        else:
            step = gradient / max(1.0, float(np.abs(gradient).max()))
        for _ in range(60):
            candidate = np.clip(theta + step, -30.0, 30.0)
            new_value, new_gradient = value_and_gradient(candidate)
            if new_value >= value:
                break
            step = step / 2
        else:
            return theta, iteration
        moved = np.abs(candidate - theta).max()
        converged = abs(new_value - value) <= 1e-12 * (1.0 + abs(value)) and moved < 1e-9
        theta, value, gradient = candidate, new_value, new_gradient
        if converged or np.abs(gradient).max() < 1e-9:
            return theta, iteration
    return theta, 200


@dataclass(frozen=True)
class LognormalDelay:
    r"""Chapelle's model with a lognormal delay: :math:`\log D \sim N(\mu, \sigma^2)` given an event.

    Attributes
    ----------
    mu, sigma : float
        The mean and sd of the log of the delay in hours (median :math:`e^\mu`).
    event_probability : float
    window_hours : float
    """

    mu: float
    sigma: float
    event_probability: float
    window_hours: float

    @property
    def median_hours(self) -> float:
        r""":math:`e^\mu`."""
        return float(np.exp(self.mu))

    def _uncensored_cdf(self, hours: np.ndarray) -> np.ndarray:
        t = np.asarray(hours, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return special.ndtr((np.log(t) - self.mu) / self.sigma)

    def cdf(self, hours: np.ndarray | float) -> np.ndarray:
        r""":math:`F(t) = \Phi((\log \min(t, W) - \mu) / \sigma) / \Phi((\log W - \mu) / \sigma)`."""
        t = np.clip(np.asarray(hours, dtype=np.float64), 0.0, self.window_hours)
        return self._uncensored_cdf(t) / self._uncensored_cdf(np.array(self.window_hours))


def fit_lognormal_delay(
    elapsed_hours: np.ndarray, observed: np.ndarray, window_hours: float
) -> LognormalDelay:
    r"""Fit Chapelle's model with a lognormal delay by maximum likelihood,

    .. math:: \sum_{\text{observed}} \log\big(p\, \phi((\log d_i - \mu)/\sigma) / (\sigma d_i)\big)
              + \sum_{\text{censored}} \log\big(1 - p\, \Phi((\log e_i - \mu)/\sigma)\big),

    over :math:`(\mu, \log \sigma, \operatorname{logit} p)` by BFGS (censored times grouped by value).
    Observed delays must be positive.

    Parameters
    ----------
    elapsed_hours, observed, window_hours : see :func:`fit_exponential_delay`

    Returns
    -------
    LognormalDelay
    """
    elapsed, seen = _pairs(elapsed_hours, observed, window_hours)
    delays = elapsed[seen]
    if np.any(delays <= 0):
        raise AnalysisInputError("elapsed_hours: a lognormal delay needs every observed delay > 0")
    log_d = np.log(delays)
    censored, counts = np.unique(elapsed[~seen], return_counts=True)
    with np.errstate(divide="ignore"):
        log_e = np.log(censored)

    def negative(theta: np.ndarray) -> float:
        mu, sigma, p = theta[0], float(np.exp(theta[1])), float(special.expit(theta[2]))
        observed_part = np.sum(np.log(p) - 0.5 * ((log_d - mu) / sigma) ** 2 - np.log(sigma) - log_d)
        censored_part = np.dot(counts, np.log1p(-p * special.ndtr((log_e - mu) / sigma)))
        return -float(observed_part + censored_part)

    start_p = min(max(seen.mean(), 1e-6), 1 - 1e-6)
    start = np.array([log_d.mean(), np.log(max(log_d.std(), 0.1)), special.logit(start_p)])
    result = optimize.minimize(negative, start, method="BFGS", options={"gtol": 1e-8})
    mu, sigma, p = float(result.x[0]), float(np.exp(result.x[1])), float(special.expit(result.x[2]))
    return LognormalDelay(mu, sigma, p, float(window_hours))


@dataclass(frozen=True)
class KaplanMeierDelay:
    r"""The Kaplan–Meier survival of "no event yet", turned into the conditional delay CDF.

    Attributes
    ----------
    event_hours : ndarray of float, shape (m,)
        The distinct observed delays, ascending.
    survival : ndarray of float, shape (m,)
        :math:`\hat S(t)`, the estimated probability of no event by each of ``event_hours``.
    followed_hours : float
        The end of follow-up: ``min(window_hours, longest elapsed time)``.
    window_hours : float
    """

    event_hours: np.ndarray
    survival: np.ndarray
    followed_hours: float
    window_hours: float

    def survival_at(self, hours: np.ndarray | float) -> np.ndarray:
        """:math:`\\hat S(t)`, a right-continuous step function (1 before the first event)."""
        t = np.asarray(hours, dtype=np.float64)
        index = np.searchsorted(self.event_hours, t, side="right")
        return np.where(index > 0, np.concatenate([[1.0], self.survival])[index], 1.0)

    @property
    def event_share(self) -> float:
        """:math:`1 - \\hat S` at the end of follow-up: the share of decisions with an event by then."""
        return float(1.0 - self.survival_at(self.followed_hours))

    def cdf(self, hours: np.ndarray | float) -> np.ndarray:
        r""":math:`F(t) = (1 - \hat S(\min(t, t_f))) / (1 - \hat S(t_f))`, :math:`t_f` the end of follow-up.

        Until some decisions have been followed for the whole window this assumes no event comes after
        the longest follow-up, so :math:`F` is then too high for late delays.
        """
        t = np.minimum(np.asarray(hours, dtype=np.float64), self.followed_hours)
        return (1.0 - self.survival_at(t)) / self.event_share


def fit_kaplan_meier_delay(
    elapsed_hours: np.ndarray, observed: np.ndarray, window_hours: float
) -> KaplanMeierDelay:
    r"""The Kaplan–Meier estimate, :math:`\hat S(t) = \prod_{t_j \le t} (1 - d_j / n_j)`, with
    :math:`d_j` events at :math:`t_j` and :math:`n_j` decisions still followed just before it (censored
    at their elapsed time, capped at the window).

    Parameters
    ----------
    elapsed_hours : ndarray of float, shape (n,)
    observed : ndarray of bool, shape (n,)
    window_hours : float

    Returns
    -------
    KaplanMeierDelay
    """
    elapsed, seen = _pairs(elapsed_hours, observed, window_hours)
    times, inverse = np.unique(elapsed, return_inverse=True)
    events = np.bincount(inverse, weights=seen.astype(np.float64), minlength=times.size)
    leaving = np.bincount(inverse, minlength=times.size).astype(np.float64)
    at_risk = leaving[::-1].cumsum()[::-1]
    has_event = events > 0
    survival = np.cumprod(1.0 - events[has_event] / at_risk[has_event])
    return KaplanMeierDelay(times[has_event], survival, float(elapsed.max()), float(window_hours))


def fit_delay_model(
    elapsed_hours: np.ndarray, observed: np.ndarray, window_hours: float, kind: DelayModelKind
) -> ExponentialDelay | LognormalDelay | KaplanMeierDelay:
    """The delay model of ``kind`` fitted to the pairs, or the exponential one where ``kind`` cannot be.

    ``kaplan_meier`` needs some decision followed for the whole window (before, the estimate cannot tell
    how many events are still to come) and ``lognormal`` every observed delay > 0; until then the
    exponential model (:func:`fit_exponential_delay`) stands in.

    Parameters
    ----------
    elapsed_hours, observed, window_hours : see :func:`fit_exponential_delay`
    kind : {"exponential", "lognormal", "kaplan_meier"}

    Returns
    -------
    ExponentialDelay, LognormalDelay or KaplanMeierDelay
    """
    if kind not in DELAY_MODEL_KINDS:
        raise AnalysisInputError(f"kind: expected one of {list(DELAY_MODEL_KINDS)}, got {kind!r}")
    if kind == "kaplan_meier":
        nonparametric = fit_kaplan_meier_delay(elapsed_hours, observed, window_hours)
        if nonparametric.followed_hours >= window_hours:
            return nonparametric
    if kind == "lognormal" and np.all(np.asarray(elapsed_hours)[np.asarray(observed, dtype=bool)] > 0):
        return fit_lognormal_delay(elapsed_hours, observed, window_hours)
    return fit_exponential_delay(elapsed_hours, observed, window_hours)


def arrival_weights(elapsed_hours: np.ndarray, arrived: np.ndarray, model: DelayModel) -> np.ndarray:
    r"""The trial weight of each decision for delay-aware learning (Vernade, Cappé & Perchet, UAI 2017).

    .. math:: w_i = 1 \text{ if the event arrived or } e_i \ge W, \text{ else } F(e_i).

    Parameters
    ----------
    elapsed_hours : ndarray of float, shape (n,)
        Hours since each decision's send.
    arrived : ndarray of bool, shape (n,)
        Whether its event has arrived.
    model : DelayModel

    Returns
    -------
    ndarray of float, shape (n,), in [0, 1]
    """
    elapsed = np.asarray(elapsed_hours, dtype=np.float64)
    done = np.asarray(arrived, dtype=bool) | (elapsed >= model.window_hours)
    return np.where(done, 1.0, np.clip(model.cdf(elapsed), 0.0, 1.0))
