r"""Is the policy still right about its audience? Predicted against earned reward, and a CUSUM on it.

Each day (and each policy version that chose that day) the policy's posterior predicts what its choices
will earn; what they earned is compared with it through the standardised residual

.. math:: z_d = \frac{Y_d - E[Y_d]}{\sqrt{\operatorname{Var}[Y_d]}},

with the mean and variance of the posterior predictive distribution of the day's reward
(:func:`predict_reward`). Predictions made from the data before the day are sequential ("prequential",
Dawid, JRSS A 1984): while the audience stays as it was the :math:`z_d` have mean 0 and variance 1
and are uncorrelated; when the audience moves away from what the policy learned they drift.

A two-sided CUSUM (Page, Biometrika 1954) accumulates that drift,

.. math:: S^+_d = \max(0, S^+_{d-1} + z_d - k), \qquad S^-_d = \max(0, S^-_{d-1} - z_d - k),

and raises the alert the first day either exceeds the threshold :math:`h`. The threshold is calibrated
so that on stationary data (:math:`z_d` standard normal) the probability of any alert within
``horizon`` days is at most ``false_alarm_rate``: the probability that one side alarms within the
horizon is computed exactly enough by the Markov chain approximation of Brook & Evans (Biometrika 1972)
and set to half the rate, and the union of the two sides is at most the sum
(:func:`calibrate_cusum_threshold`). For standard normal residuals the union bound is nearly tight
(the two sides seldom alarm in the same run); binomial residuals of daily sends are close to normal,
and ``tests/analysis/test_drift.py`` checks the rate on seeded stationary experiments. A day judged
by a posterior that has learned nothing yet (the prior alone) says nothing about drift: leave it out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from analysis.errors import AnalysisInputError

#: The CUSUM's allowance :math:`k`, in standard deviations: tuned to a shift of :math:`2k = 1` sd per day.
DEFAULT_REFERENCE = 0.5
#: The days over which the false alarm rate is controlled when no horizon is given.
DEFAULT_HORIZON = 90
DEFAULT_FALSE_ALARM_RATE = 0.05
DETECTOR = "two-sided CUSUM of standardised residuals"
_GRID = 400
_SETTLED = 1e-14  # see one_sided_alarm_probability
_SETTLED_STEPS = 5


def predict_reward(
    alpha: np.ndarray, beta: np.ndarray, sends: np.ndarray, arrival: float | np.ndarray = 1.0
) -> tuple[float, float]:
    r"""Mean and variance of a day's reward under Beta posteriors (Beta-Binomial predictive).

    Arm ``a`` has a Beta(:math:`\alpha_a, \beta_a`) posterior of its rate :math:`\theta_a`, mean
    :math:`m_a` and variance :math:`v_a`; it was sent :math:`n_a` times and a share :math:`F` of its
    events has arrived by the time the day is judged (1: the window has closed). The day's reward is a
    sum of Bernoulli(:math:`F \theta_a`) draws, so

    .. math:: E[Y] = \sum_a n_a F m_a, \qquad
              \operatorname{Var}[Y] = \sum_a n_a F m_a (1 - F m_a) + n_a (n_a - 1) F^2 v_a.

    Parameters
    ----------
    alpha, beta : ndarray of float, shape (k,)
        The posterior before the day.
    sends : ndarray of int, shape (k,)
        The day's decisions per arm.
    arrival : float or ndarray of shape (k,), in [0, 1]

    Returns
    -------
    (float, float)
        The predicted reward and its variance.
    """
    mean, variance = _reward_terms(alpha, beta, sends, arrival)
    return float(np.sum(mean)), float(np.sum(variance))


def predict_rewards(
    alpha: np.ndarray, beta: np.ndarray, sends: np.ndarray, arrival: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_reward` of many days at once: ``alpha``, ``beta`` and ``sends`` of shape (days, k),
    the mean and variance of each day's reward, shape (days,); each day's by the same arithmetic."""
    if np.ndim(alpha) != 2:
        raise AnalysisInputError("alpha, beta, sends: expected arrays of shape (days, k)")
    mean, variance = _reward_terms(alpha, beta, sends, arrival)
    return np.sum(mean, axis=1), np.sum(variance, axis=1)


def _reward_terms(alpha: np.ndarray, beta: np.ndarray, sends: np.ndarray, arrival: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each arm's share of the predicted reward's mean and variance (inputs checked), summed by
    :func:`predict_reward` and :func:`predict_rewards`."""
    a, b = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    n = np.asarray(sends, dtype=np.float64)
    f = np.asarray(arrival, dtype=np.float64)
    if a.shape != b.shape or a.shape != n.shape or np.any(a <= 0) or np.any(b <= 0) or np.any(n < 0):
        raise AnalysisInputError(
            "alpha, beta, sends: expected arrays of one shape, alpha and beta > 0, sends >= 0"
        )
    if np.any(f < 0) or np.any(f > 1):
        raise AnalysisInputError("arrival: must lie in [0, 1]")
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    fm = f * mean
    return n * fm, n * fm * (1 - fm) + n * (n - 1) * f**2 * var


def cusum(residuals: np.ndarray, reference: float = DEFAULT_REFERENCE) -> tuple[np.ndarray, np.ndarray]:
    """Both CUSUM paths over the last axis of ``residuals`` (any leading axes: seeds, experiments).

    Parameters
    ----------
    residuals : ndarray of float, shape (..., T)
    reference : float, >= 0

    Returns
    -------
    (ndarray, ndarray)
        :math:`S^+` and :math:`S^-`, each of the shape of ``residuals``.
    """
    z = np.asarray(residuals, dtype=np.float64)
    if z.ndim == 1:  # one path: the recursion on Python floats (numpy's per-step overhead is the cost)
        ups, downs, up_now, down_now = [], [], 0.0, 0.0
        for step in z.tolist():
            up_now = max(0.0, up_now + step - reference)
            down_now = max(0.0, down_now - step - reference)
            ups.append(up_now)
            downs.append(down_now)
        return np.array(ups), np.array(downs)
    upper, lower = np.zeros_like(z), np.zeros_like(z)
    up = np.zeros(z.shape[:-1])
    down = np.zeros(z.shape[:-1])
    for t in range(z.shape[-1]):
        up = np.maximum(0.0, up + z[..., t] - reference)
        down = np.maximum(0.0, down - z[..., t] - reference)
        upper[..., t], lower[..., t] = up, down
    return upper, lower


def _transition(threshold: float, reference: float) -> np.ndarray:
    r"""Brook & Evans (1972): the one-sided CUSUM of standard normal steps below ``threshold``,
    discretised to ``m = 400`` states :math:`s_j = j\Delta`, :math:`\Delta = h / (m - 1/2)`, each the cell
    :math:`[s_j - \Delta/2, s_j + \Delta/2)` (state 0 also holds the atom at zero): the sub-stochastic
    matrix of the steps :math:`\max(0, s + z - k)` that do not alarm, shape (m, m)."""
    m = _GRID
    delta = threshold / (m - 0.5)
    # cell j is [(j - 1/2) delta, (j + 1/2) delta); from state i a step lands below the bottom of cell j
    # with probability Phi((j - 1/2 - i) delta + k): it depends on j - i alone, so 2m + 1 values
    # of Phi fill the (m, m + 1) matrix
    offsets = np.arange(-m, m + 1)  # j - i
    by_offset = special.ndtr((offsets - 0.5) * delta + reference)
    cdf = by_offset[np.arange(m + 1)[None, :] - np.arange(m)[:, None] + m]
    transition = np.diff(cdf, axis=1)
    transition[:, 0] = cdf[:, 1]  # everything below the first cell's top falls to 0
    return transition


def one_sided_alarm_probability(threshold: float, reference: float, horizon: int) -> float:
    """P(a one-sided CUSUM of standard normal steps, from 0, exceeds ``threshold`` within ``horizon``
    steps), by the Brook & Evans chain (:func:`_transition`) raised to the horizon.

    The chain's mass that has not alarmed shrinks by a factor that settles on the dominant eigenvalue
    :math:`\\lambda` of the transition matrix (geometrically, as :math:`|\\lambda_2 / \\lambda_1|^t`);
    once that factor has moved by less than :data:`_SETTLED` (relative) for :data:`_SETTLED_STEPS`
    steps, the remaining steps multiply the mass by :math:`\\lambda` each (tested against every step
    written out to 1e-9 over horizons up to 5,000).
    """
    transition = _transition(threshold, reference)
    state = np.zeros(transition.shape[0])
    state[0] = 1.0
    alive, factor, settled = 1.0, math.nan, 0
    for step in range(horizon):
        state = state @ transition
        now = float(state.sum())
        if now == 0.0:
            return 1.0
        moved = abs(now / alive - factor)
        factor, alive = now / alive, now
        settled = settled + 1 if moved <= _SETTLED * factor else 0
        if settled == _SETTLED_STEPS:
            return float(1.0 - alive * factor ** (horizon - 1 - step))
    return float(1.0 - alive)


def average_run_length(threshold: float, reference: float) -> float:
    """The expected number of standard normal steps until a one-sided CUSUM from 0 alarms (Brook &
    Evans: the first entry of :math:`(I - Q)^{-1} 1`)."""
    transition = _transition(threshold, reference)
    steps = np.linalg.solve(np.eye(transition.shape[0]) - transition, np.ones(transition.shape[0]))
    return float(steps[0])


@lru_cache(maxsize=256)
def calibrate_cusum_threshold(
    horizon: int, false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE, reference: float = DEFAULT_REFERENCE
) -> float:
    """The threshold ``h`` at which each side alarms within ``horizon`` steps with probability
    ``false_alarm_rate / 2`` on standard normal residuals (so both together with at most the rate).

    Bisection on :func:`one_sided_alarm_probability` to 1e-6 would give the first point of its grid
    that holds the rate; that point is found from the root by Brent's method (about a dozen evaluations,
    not 25).
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise AnalysisInputError(f"horizon: expected a whole number of days >= 1, got {horizon!r}")
    if not 0 < false_alarm_rate < 1:
        raise AnalysisInputError(f"false_alarm_rate: must lie in (0, 1), got {false_alarm_rate!r}")
    if not reference >= 0:
        raise AnalysisInputError(f"reference: must be >= 0, got {reference!r}")
    target = false_alarm_rate / 2

    def excess(h: float) -> float:  # a threshold of 0 alarms at the first positive step: take it as 1
        return (one_sided_alarm_probability(h, reference, horizon) if h > 0 else 1.0) - target

    low, high = 0.0, 1.0
    while excess(high) > 0:
        low, high = high, 2 * high
    # The bisection of [low, high] to 1e-6 would end on the first point of the grid low + i * step that
    # does not exceed the target (the probability falls as the threshold rises): find the root by
    # Brent's method, then that grid point next to it, checked on both sides.
    step = high - low
    while step > 1e-6:
        step /= 2
    root = optimize.brentq(excess, low, high, xtol=step / 64)
    point = low + math.ceil((root - low) / step) * step
    while point > low and excess(point - step) <= 0:
        point -= step
    while excess(point) > 0:
        point += step
    return min(point, high)


@dataclass(frozen=True)
class DriftDay:
    """One policy version's decisions of one day: what it predicted they would earn, what they earned.

    Attributes
    ----------
    day : int
        Days since the experiment's start (or the send's index).
    policy_version : int
    decisions : int
    predicted : float
        The expected reward of the day's decisions (:func:`predict_reward`).
    variance : float, > 0
        Its predictive variance.
    observed : float
        The reward they earned.
    """

    day: int
    policy_version: int
    decisions: int
    predicted: float
    variance: float
    observed: float


@dataclass(frozen=True)
class DriftPoint:
    """A day of the detector: the day's figures, its residual and both CUSUM statistics."""

    day: int
    policy_version: int
    decisions: int
    predicted: float
    observed: float
    residual: float
    upper: float
    lower: float
    alarm: bool

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class DriftReport:
    """The drift monitor's verdict: the ``drift`` block of the results.

    Attributes
    ----------
    alert : bool
        A CUSUM crossed the threshold on some day.
    detector : str
    threshold, reference : float
        The CUSUM's :math:`h` and :math:`k`.
    horizon : int
        The days over which the false alarm rate holds.
    false_alarm_rate : float
        The bound on P(any alert within the horizon) when nothing drifts.
    first_alarm_day : int or None
    points : tuple of DriftPoint
    """

    alert: bool
    detector: str
    threshold: float
    reference: float
    horizon: int
    false_alarm_rate: float
    first_alarm_day: int | None
    points: tuple[DriftPoint, ...]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {**{k: v for k, v in self.__dict__.items() if k != "points"},
                "points": [p.to_dict() for p in self.points]}


def monitor_drift(
    days: Sequence[DriftDay],
    *,
    horizon: int = DEFAULT_HORIZON,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    reference: float = DEFAULT_REFERENCE,
) -> DriftReport:
    """Run the calibrated two-sided CUSUM over the days, in the order given.

    Parameters
    ----------
    days : sequence of DriftDay
        In time order (within a day, by policy version).
    horizon : int
        Days over which ``false_alarm_rate`` is controlled.
    false_alarm_rate : float
    reference : float
        The allowance :math:`k`.

    Returns
    -------
    DriftReport
    """
    for i, day in enumerate(days):
        if not (np.isfinite(day.variance) and day.variance > 0):
            raise AnalysisInputError(f"days[{i}].variance: must be positive, got {day.variance!r}")
        if not (np.isfinite(day.predicted) and np.isfinite(day.observed)):
            raise AnalysisInputError(f"days[{i}]: predicted and observed must be finite")
    threshold = calibrate_cusum_threshold(horizon, false_alarm_rate, reference)
    z = np.array([(d.observed - d.predicted) / np.sqrt(d.variance) for d in days])
    upper, lower = cusum(z, reference) if z.size else (z, z)
    alarms = (upper > threshold) | (lower > threshold)
    points = tuple(
        DriftPoint(d.day, d.policy_version, d.decisions, d.predicted, d.observed, float(z[i]),
                   float(upper[i]), float(lower[i]), bool(alarms[i]))
        for i, d in enumerate(days)
    )
    first = next((p.day for p in points if p.alarm), None)
    return DriftReport(bool(alarms.any()), DETECTOR, threshold, reference, horizon, false_alarm_rate, first,
                       points)
