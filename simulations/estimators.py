r"""Off-policy estimators of a target policy's value from logged sends.

Every estimator is the ratio of two sums over rows of one per-row *kernel* ``(u_i, d_i)``:

.. math::

    \hat V = \frac{\sum_i u_i}{\sum_i d_i}, \qquad
    w_i = \frac{\pi(a_i \mid x_i)}{\mu_i},

where :math:`\pi` is the target policy, :math:`a_i` the logged action, :math:`\mu_i` its logged
propensity, :math:`r_i` the reward and :math:`\hat q(x, a)` a reward model's prediction.

=============== ============================================================ ===========
estimator       :math:`u_i`                                                  :math:`d_i`
=============== ============================================================ ===========
``ips``         :math:`w_i r_i`                                              1
``clipped_ips`` :math:`\min(w_i, M)\, r_i`                                   1
``snips``       :math:`w_i r_i`                                              :math:`w_i`
``dm``          :math:`\sum_a \pi(a \mid x_i)\, \hat q(x_i, a)`              1
``dr``          :math:`\mathrm{dm}_i + w_i (r_i - \hat q(x_i, a_i))`         1
``clipped_dr``  :math:`\mathrm{dm}_i + \min(w_i, M)(r_i - \hat q(x_i, a_i))` 1
``replay``      :math:`\mathbb 1[\pi(x_i) = a_i]\, r_i`                      :math:`\mathbb 1[\pi(x_i) = a_i]`
=============== ============================================================ ===========

Replay (rejection sampling) needs a deterministic target and is unbiased when the logging policy
was uniform; with other logging policies use SNIPS (the same ratio, weighted by :math:`1/\mu_i`).

The sums are held in an :class:`EstimatorState` that merges with ``+`` exactly, so a log processed
chunk by chunk, or partition by partition on Dask, gives the very same numbers as in one piece. The
standard error is the delta-method one for a ratio of means (which for ``d_i = 1`` is the usual
``std(u, ddof=1) / sqrt(n)``):

.. math::

    \widehat{\mathrm{se}}^2 = \frac{n}{n-1}\,\frac{\sum_i (u_i - \hat V d_i)^2}{(\sum_i d_i)^2}.

References
----------
Dudík, Langford, Li (2011), "Doubly robust policy evaluation and learning", ICML.
Li, Chu, Langford, Wang (2011), "Unbiased offline evaluation of contextual-bandit-based news article
recommendation algorithms", WSDM.
Swaminathan, Joachims (2015), "The self-normalized estimator for counterfactual learning", NeurIPS.
Saito et al. (2021), "Open Bandit Dataset and Pipeline", NeurIPS Datasets and Benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import numpy as np
from scipy import stats

from simulations.data import LoggedData, SimulationInputError
from simulations.exact_sum import ExactSum

EstimatorName = Literal["replay", "ips", "snips", "dm", "dr", "clipped_ips", "clipped_dr"]
ESTIMATORS: tuple[str, ...] = get_args(EstimatorName)
_NEEDS_MODEL = frozenset({"dm", "dr", "clipped_dr"})
_CLIPPED = frozenset({"clipped_ips", "clipped_dr"})
_RATIO = frozenset({"snips", "replay"})


@dataclass(frozen=True)
class PolicyEstimate:
    """The estimated value of a target policy.

    Attributes
    ----------
    estimator : str
        Which estimator (one of ``ESTIMATORS``, or ``"logged"`` for the logging policy's mean reward).
    value : float
        The point estimate (expected reward per send); NaN when no row supports it.
    ci : tuple of float
        The two-sided confidence interval ``(low, high)``.
    std_error : float
        The estimated standard error of ``value``.
    n : int
        Number of logged sends used.
    effective_sample_size : float
        :math:`(\\sum w)^2 / \\sum w^2` of the importance weights the estimator uses (for replay, the
        number of matched rows).
    max_weight : float
        The largest importance weight.
    warnings : tuple of str
        Why the estimate may be unreliable (extreme weights, poor support, few rows).
    ci_method : str
        ``"normal"`` or ``"bootstrap"``.
    """

    estimator: str
    value: float
    ci: tuple[float, float]
    std_error: float
    n: int
    effective_sample_size: float
    max_weight: float
    warnings: tuple[str, ...] = ()
    ci_method: str = "normal"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping (NaN becomes ``None``)."""

        def clean(x: object) -> object:
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, tuple | list):
                return [clean(v) for v in x]
            return x

        return {key: clean(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class WarningThresholds:
    """When an estimate carries a warning about its importance weights.

    Attributes
    ----------
    min_ess_fraction : float
        Warn when the effective sample size is below this fraction of ``n``.
    max_weight : float
        Warn when any importance weight exceeds this.
    """

    min_ess_fraction: float = 0.01
    max_weight: float = 100.0


@dataclass(frozen=True)
class EstimatorState:
    """Mergeable sums of one estimator's per-row kernel over a set of rows.

    Attributes
    ----------
    estimator : str
        The estimator the kernel belongs to.
    n : int
        Number of rows.
    sum_u, sum_d, sum_uu, sum_ud, sum_dd : ExactSum
        Sums of :math:`u`, :math:`d`, :math:`u^2`, :math:`ud` and :math:`d^2`.
    sum_w, sum_ww : ExactSum
        Sums of the importance weights the estimator uses, and of their squares.
    sum_raw_w, sum_raw_ww : ExactSum
        Sums of the unclipped weights :math:`w_i` and their squares (support diagnostics).
    max_weight : float
        Largest weight used; 0 for no rows.
    min_propensity, max_propensity : float
        Range of logged propensities (replay warns when logging was not uniform).
    n_clipped : int
        Rows whose weight was clipped (clipped estimators only).
    clip : float or None
        The clipping threshold :math:`M`.
    """

    estimator: str
    n: int = 0
    sum_u: ExactSum = ExactSum()
    sum_d: ExactSum = ExactSum()
    sum_uu: ExactSum = ExactSum()
    sum_ud: ExactSum = ExactSum()
    sum_dd: ExactSum = ExactSum()
    sum_w: ExactSum = ExactSum()
    sum_ww: ExactSum = ExactSum()
    sum_raw_w: ExactSum = ExactSum()
    sum_raw_ww: ExactSum = ExactSum()
    max_weight: float = 0.0
    min_propensity: float = math.inf
    max_propensity: float = -math.inf
    n_clipped: int = 0
    clip: float | None = None

    def __add__(self, other: EstimatorState) -> EstimatorState:
        if not isinstance(other, EstimatorState):
            return NotImplemented
        if (other.estimator, other.clip) != (self.estimator, self.clip):
            raise SimulationInputError(
                f"estimator: cannot merge {self.estimator!r} (clip {self.clip}) with "
                f"{other.estimator!r} (clip {other.clip})"
            )
        return EstimatorState(
            estimator=self.estimator,
            n=self.n + other.n,
            sum_u=self.sum_u + other.sum_u,
            sum_d=self.sum_d + other.sum_d,
            sum_uu=self.sum_uu + other.sum_uu,
            sum_ud=self.sum_ud + other.sum_ud,
            sum_dd=self.sum_dd + other.sum_dd,
            sum_w=self.sum_w + other.sum_w,
            sum_ww=self.sum_ww + other.sum_ww,
            sum_raw_w=self.sum_raw_w + other.sum_raw_w,
            sum_raw_ww=self.sum_raw_ww + other.sum_raw_ww,
            max_weight=max(self.max_weight, other.max_weight),
            min_propensity=min(self.min_propensity, other.min_propensity),
            max_propensity=max(self.max_propensity, other.max_propensity),
            n_clipped=self.n_clipped + other.n_clipped,
            clip=self.clip,
        )

    @property
    def value(self) -> float:
        """The point estimate :math:`\\sum u / \\sum d` (NaN when :math:`\\sum d = 0`)."""
        denominator = self.sum_d.value
        return self.sum_u.value / denominator if denominator != 0 else math.nan

    @property
    def std_error(self) -> float:
        """Delta-method standard error of :attr:`value` (NaN with fewer than two rows)."""
        denominator = self.sum_d.value
        if self.n < 2 or denominator == 0:
            return math.nan
        v = self.value
        squares = math.fsum((self.sum_uu.value, -2.0 * v * self.sum_ud.value, v * v * self.sum_dd.value))
        return math.sqrt(max(squares, 0.0) * self.n / (self.n - 1)) / abs(denominator)

    @property
    def effective_sample_size(self) -> float:
        """:math:`(\\sum w)^2 / \\sum w^2` of the weights used (0 when all are zero)."""
        squares = self.sum_ww.value
        return self.sum_w.value ** 2 / squares if squares > 0 else 0.0

    def to_estimate(
        self, alpha: float = 0.05, thresholds: WarningThresholds = WarningThresholds()
    ) -> PolicyEstimate:
        """The estimate with a normal-approximation ``1 - alpha`` interval and its warnings."""
        _check_alpha(alpha)
        value, se = self.value, self.std_error
        z = float(stats.norm.ppf(1 - alpha / 2))
        ci = (value - z * se, value + z * se) if math.isfinite(se) else (math.nan, math.nan)
        return PolicyEstimate(
            estimator=self.estimator,
            value=value,
            ci=ci,
            std_error=se,
            n=self.n,
            effective_sample_size=self.effective_sample_size,
            max_weight=self.max_weight,
            warnings=self.warnings(thresholds),
        )

    def warnings(self, thresholds: WarningThresholds = WarningThresholds()) -> tuple[str, ...]:
        """Reasons the estimate may be unreliable."""
        out: list[str] = []
        if self.n < 2:
            out.append(f"only {self.n} row(s): no standard error")
        if self.estimator == "dm":
            out.append("the interval ignores the reward model's own error (a refit bootstrap includes it)")
        if self.sum_d.value == 0 and self.n > 0:
            out.append("no row supports the target policy (replay matched nothing or all weights are 0)")
        ess = self.effective_sample_size
        if self.estimator != "dm" and self.n > 0 and ess < thresholds.min_ess_fraction * self.n:
            out.append(
                f"extreme weights: effective sample size {ess:.1f} is below "
                f"{thresholds.min_ess_fraction:.0%} of {self.n} rows"
            )
        if self.estimator not in ("dm", "replay") and self.max_weight > thresholds.max_weight:
            out.append(
                f"extreme weights: max importance weight {self.max_weight:.3g} > {thresholds.max_weight:g}"
            )
        if self.n_clipped:
            out.append(
                f"{self.n_clipped} of {self.n} weights clipped at {self.clip:g}: the estimate is biased"
            )
        if self.estimator == "replay" and self.n and self.max_propensity > self.min_propensity * (1 + 1e-9):
            out.append(
                "logging propensities vary "
                f"({self.min_propensity:.3g} to {self.max_propensity:.3g}): replay is unbiased only under "
                "uniform logging, prefer snips"
            )
        if self.n >= 2 and self.estimator != "replay":
            mean_w = self.sum_raw_w.value / self.n
            var_w = max(self.sum_raw_ww.value / self.n - mean_w**2, 0.0)
            se_w = math.sqrt(var_w / (self.n - 1))
            if abs(mean_w - 1.0) > max(4 * se_w, 0.05):
                out.append(
                    f"mean importance weight {mean_w:.3f} is far from 1: the target chooses variants the "
                    "logging policy rarely or never chose, or propensities are wrong"
                )
        return tuple(out)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise SimulationInputError(f"alpha: must be in (0, 1), got {alpha}")


def check_target_probabilities(
    target: np.ndarray, n: int, k: int, name: str = "target_probabilities"
) -> None:
    """Raise :class:`SimulationInputError` unless ``target`` is an ``(n, k)`` array of distributions."""
    target = np.asarray(target)
    if target.shape != (n, k):
        raise SimulationInputError(f"{name}: expected shape ({n}, {k}), got {target.shape}")
    if n == 0:
        return
    if not np.all(np.isfinite(target)) or target.min() < 0:
        row = int(np.flatnonzero(~np.all(np.isfinite(target) & (target >= 0), axis=1))[0])
        raise SimulationInputError(f"{name}: row {row} has a negative or non-finite probability")
    sums = target.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise SimulationInputError(f"{name}: row {int(bad[0])} sums to {sums[bad[0]]:.6g}, not 1")


def kernel(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The per-row kernel of an estimator.

    Parameters
    ----------
    estimator : str
        One of ``ESTIMATORS``.
    data : LoggedData
        ``n`` logged sends over ``k`` variants.
    target_probabilities : ndarray of shape (n, k)
        :math:`\\pi(a \\mid x_i)`, the target policy's distribution per row.
    reward_predictions : ndarray of shape (n, k), optional
        :math:`\\hat q(x_i, a)`; required by ``dm``, ``dr`` and ``clipped_dr``.
    clip : float
        :math:`M`, the weight cap of the clipped estimators.
    validate : bool
        Check ``target_probabilities`` (skip only when the caller already did).

    Returns
    -------
    u : ndarray of shape (n,)
        The numerator terms.
    d : ndarray of shape (n,) or None
        The denominator terms (``None`` means all ones).
    w : ndarray of shape (n,)
        The importance weights the estimator uses (for diagnostics).
    """
    if estimator not in ESTIMATORS:
        raise SimulationInputError(
            f"estimator: unknown {estimator!r}; expected one of {', '.join(ESTIMATORS)}"
        )
    n, k = data.n, data.n_actions
    target = np.asarray(target_probabilities, dtype=float)
    if validate:
        check_target_probabilities(target, n, k)
    if estimator in _CLIPPED and not clip > 0:
        raise SimulationInputError(f"clip: must be positive, got {clip}")
    rows = np.arange(n)
    actions = np.asarray(data.actions)
    rewards = np.asarray(data.rewards, dtype=float)
    pi_logged = target[rows, actions]
    if estimator == "replay":
        deterministic = np.all((target == 0.0) | (target == 1.0), axis=1)
        if not deterministic.all():
            row = int(np.flatnonzero(~deterministic)[0])
            raise SimulationInputError(
                "target_probabilities: replay needs a deterministic policy, "
                f"row {row} is {target[row].tolist()}"
            )
        return pi_logged * rewards, pi_logged, pi_logged
    w = pi_logged / np.asarray(data.propensities, dtype=float)
    if estimator in _NEEDS_MODEL:
        if reward_predictions is None:
            raise SimulationInputError(f"reward_predictions: estimator {estimator!r} needs a reward model")
        q = np.asarray(reward_predictions, dtype=float)
        if q.shape != (n, k):
            raise SimulationInputError(f"reward_predictions: expected shape ({n}, {k}), got {q.shape}")
        if n and not np.all(np.isfinite(q)):
            raise SimulationInputError("reward_predictions: contains non-finite values")
        direct = np.einsum("ij,ij->i", target, q)
        if estimator == "dm":
            return direct, None, w
        used = np.minimum(w, clip) if estimator == "clipped_dr" else w
        return direct + used * (rewards - q[rows, actions]), None, used
    if estimator == "snips":
        return w * rewards, w, w
    used = np.minimum(w, clip) if estimator == "clipped_ips" else w
    return used * rewards, None, used


def estimator_state(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> EstimatorState:
    """The mergeable sums of one estimator over ``data`` (see :func:`kernel` for the parameters)."""
    return kernel_and_state(
        estimator, data, target_probabilities, reward_predictions, clip=clip, validate=validate
    )[2]


def kernel_and_state(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, EstimatorState]:
    """:func:`kernel`'s ``(u, d)`` and :func:`estimator_state`'s sums, the kernel computed once."""
    u, d, used = kernel(
        estimator, data, target_probabilities, reward_predictions, clip=clip, validate=validate
    )
    n = data.n
    ones = ExactSum.of(np.ones(1) * n) if n else ExactSum()
    propensities = np.asarray(data.propensities, dtype=float)
    clipped = estimator in _CLIPPED
    sum_u = ExactSum.of(u)
    sum_uu = ExactSum.of(u * u)
    sum_w = ExactSum.of(used)
    sum_ww = ExactSum.of(used * used)
    raw_w = target_weights(data, target_probabilities) if clipped else used
    state = EstimatorState(
        estimator=estimator,
        n=n,
        sum_u=sum_u,
        sum_d=ones if d is None else (sum_w if d is used else ExactSum.of(d)),
        sum_uu=sum_uu,
        sum_ud=sum_u if d is None else ExactSum.of(u * d),
        sum_dd=ones if d is None else (sum_ww if d is used else ExactSum.of(d * d)),
        sum_w=sum_w,
        sum_ww=sum_ww,
        sum_raw_w=ExactSum.of(raw_w) if clipped else sum_w,
        sum_raw_ww=ExactSum.of(raw_w * raw_w) if clipped else sum_ww,
        max_weight=float(used.max()) if n else 0.0,
        min_propensity=float(propensities.min()) if n else math.inf,
        max_propensity=float(propensities.max()) if n else -math.inf,
        n_clipped=int(np.count_nonzero(raw_w > clip)) if clipped else 0,
        clip=clip if clipped else None,
    )
    return u, d, state


def estimator_states(
    estimators: Sequence[EstimatorName],
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
) -> dict[str, EstimatorState]:
    """:func:`estimator_state` for several estimators, checking the target probabilities once."""
    check_target_probabilities(np.asarray(target_probabilities), data.n, data.n_actions)
    return {
        name: estimator_state(name, data, target_probabilities, reward_predictions, clip=clip, validate=False)
        for name in estimators
    }


def target_weights(data: LoggedData, target_probabilities: np.ndarray) -> np.ndarray:
    """Importance weights :math:`w_i = \\pi(a_i \\mid x_i) / \\mu_i`, shape ``(n,)``."""
    target = np.asarray(target_probabilities, dtype=float)
    return target[np.arange(data.n), data.actions] / np.asarray(data.propensities, dtype=float)


def estimate_policy_value(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    alpha: float = 0.05,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
    thresholds: WarningThresholds = WarningThresholds(),
) -> PolicyEstimate:
    """Estimate a target policy's value from logged sends held in memory.

    Parameters
    ----------
    estimator, data, target_probabilities, reward_predictions, clip
        As in :func:`kernel`.
    alpha : float
        The interval is ``1 - alpha`` two-sided.
    bootstrap : int
        When positive, the interval is the percentile interval of this many bootstrap resamples of
        the same per-row kernel (rows drawn with replacement by ``rng``) instead of the normal one.
    rng : numpy.random.Generator, optional
        Required when ``bootstrap > 0``.
    thresholds : WarningThresholds
        When to warn about extreme weights.

    Returns
    -------
    PolicyEstimate
    """
    state = estimator_state(estimator, data, target_probabilities, reward_predictions, clip=clip)
    estimate = state.to_estimate(alpha, thresholds)
    if bootstrap <= 0:
        return estimate
    if rng is None:
        raise SimulationInputError("rng: a numpy Generator is required for a bootstrap interval")
    u, d, _ = kernel(estimator, data, target_probabilities, reward_predictions, clip=clip)
    replicates = bootstrap_values(u, d, bootstrap, rng)
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return estimate
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return PolicyEstimate(
        estimator=estimate.estimator,
        value=estimate.value,
        ci=(float(low), float(high)),
        std_error=float(np.std(finite, ddof=1)),
        n=estimate.n,
        effective_sample_size=estimate.effective_sample_size,
        max_weight=estimate.max_weight,
        warnings=estimate.warnings,
        ci_method="bootstrap",
    )


def estimate_lift(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    alpha: float = 0.05,
) -> PolicyEstimate:
    r"""The target's value minus the logging policy's observed value, with a paired interval.

    Both are estimated on the same rows, so the interval of the difference is much narrower than the
    two intervals side by side. With :math:`\hat V = \sum u / \sum d`, :math:`\bar d` the mean of
    :math:`d` and :math:`\bar r` the mean logged reward, the per-row influence of the difference is

    .. math:: \phi_i = \frac{u_i - \hat V d_i}{\bar d} - (r_i - \bar r), \qquad
              \widehat{\mathrm{se}}^2 = \frac{\sum_i \phi_i^2}{n (n - 1)}.

    Parameters
    ----------
    estimator, data, target_probabilities, reward_predictions, clip
        As in :func:`kernel`.
    alpha : float
        The interval is ``1 - alpha`` two-sided.

    Returns
    -------
    PolicyEstimate
        ``estimator`` is ``"<name> lift"``; ``value`` is the estimated difference in reward per send.
    """
    _check_alpha(alpha)
    state = estimator_state(estimator, data, target_probabilities, reward_predictions, clip=clip)
    u, d, _ = kernel(estimator, data, target_probabilities, reward_predictions, clip=clip, validate=False)
    n = data.n
    rewards = np.asarray(data.rewards, dtype=float)
    value = state.value - float(rewards.mean()) if n else math.nan
    se = math.nan
    if n >= 2 and math.isfinite(state.value):
        d_values = np.ones(n) if d is None else d
        influence = (u - state.value * d_values) / d_values.mean() - (rewards - rewards.mean())
        se = float(np.sqrt(np.sum(influence**2) / (n * (n - 1))))
    z = float(stats.norm.ppf(1 - alpha / 2))
    ci = (value - z * se, value + z * se) if math.isfinite(se) else (math.nan, math.nan)
    return PolicyEstimate(
        estimator=f"{estimator} lift",
        value=value,
        ci=ci,
        std_error=se,
        n=n,
        effective_sample_size=state.effective_sample_size,
        max_weight=state.max_weight,
        warnings=state.warnings(),
    )


def bootstrap_values(
    u: np.ndarray, d: np.ndarray | None, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of :math:`\\sum u / \\sum d`, rows resampled with replacement.

    Parameters
    ----------
    u : ndarray of shape (n,)
    d : ndarray of shape (n,) or None (all ones)
    replicates : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (replicates,)
        NaN where a resample's denominator is zero.
    """
    n = u.shape[0]
    if n == 0:
        return np.full(replicates, math.nan)
    out = np.empty(replicates)
    for b in range(replicates):
        idx = rng.integers(0, n, size=n)
        denominator = float(n) if d is None else float(d[idx].sum())
        out[b] = u[idx].sum() / denominator if denominator != 0 else math.nan
    return out
