r"""What an off-policy estimate is, and the mergeable sums it is computed from.

:class:`EstimatorState` holds the sums of one estimator's per-round kernel ``(u_i, d_i)`` over a set
of rounds (see :mod:`simulations.estimators`); states merge with ``+``, so a log processed chunk by
chunk, or partition by partition on Dask, gives the estimate of the whole log. Each chunk's sums are
taken once by numpy (pairwise summation) and held as :class:`~simulations.exact_sum.ExactSum`, so
merging is exact and does not depend on the order of the chunks. The standard error is the
delta-method one for a ratio of means (for ``d_i = 1`` the usual ``std(u, ddof=1) / sqrt(n)``):

.. math::

    \widehat{\mathrm{se}}^2 = \frac{n}{n-1}\,\frac{\sum_i (u_i - \hat V d_i)^2}{(\sum_i d_i)^2}.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np

from analysis.power.normal import normal_isf
from simulations.errors import SimulationInputError
from simulations.exact_sum import ExactSum, NonFiniteSum


@contextmanager
def finite_sums(too_large: Callable[[], str]) -> Iterator[None]:
    """Sums taken inside stay within a float's range, or :class:`SimulationInputError` says why.

    Inputs are checked finite before they are summed, so a sum that is not finite
    (:class:`~simulations.exact_sum.NonFiniteSum`) has overflowed: the error's message is
    ``too_large()``, which names the values too large. numpy's overflow warnings are silenced here,
    as the error reports them.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            yield
    except NonFiniteSum:
        raise SimulationInputError(too_large()) from None


def rewards_too_large(what: str, detail: str) -> str:
    """The message of :func:`finite_sums` for a sum of ``what`` that overflows; ``detail`` names the
    largest values or the rows summed."""
    return f"rewards: too large for {what}: a sum overflows a float ({detail}); rescale the rewards"


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
        ``"normal"``, ``"bootstrap"``, ``"poisson bootstrap"``, ``"bootstrap (refit)"``, or ``"none"``
        when no interval is given (``ci`` and ``std_error`` are NaN): the direct method without a refit
        bootstrap (see :data:`REFIT_ONLY`), or no estimate at all.
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


#: Estimators whose error is mostly the reward model's own: an interval from the spread of their per-row
#: terms (normal, or a bootstrap that holds the model fixed) treats the fitted model as known and is far
#: too narrow, so they get an interval only from a bootstrap that refits the model.
REFIT_ONLY = frozenset({"dm"})
#: The warning of an estimate in :data:`REFIT_ONLY` given without an interval.
NO_MODEL_ERROR_WARNING = (
    "no interval: one from these rows alone would leave out the reward model's own error "
    "(a refit bootstrap includes it)"
)


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
        Range of logged propensities, kept by ``replay`` only (it warns when logging was not uniform).
    n_clipped : int
        Rows whose weight was clipped (clipped estimators only).
    clip : float or None
        The clipping threshold :math:`M`.
    action_names : tuple of str
        The log's variants (empty for a state built without rows).
    action_rows : tuple of int
        Per variant, the rows that logged it (the rows that support it: every used row has a positive
        propensity).
    target_mass : tuple of ExactSum
        Per variant, :math:`\\sum_i \\pi(a \\mid x_i)`, the target's probability of it summed over rows.
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
    action_names: tuple[str, ...] = ()
    action_rows: tuple[int, ...] = ()
    target_mass: tuple[ExactSum, ...] = ()

    def __add__(self, other: EstimatorState) -> EstimatorState:
        if not isinstance(other, EstimatorState):
            return NotImplemented
        if (other.estimator, other.clip) != (self.estimator, self.clip):
            raise SimulationInputError(
                f"estimator: cannot merge {self.estimator!r} (clip {self.clip}) with "
                f"{other.estimator!r} (clip {other.clip})"
            )
        if self.action_names and other.action_names and self.action_names != other.action_names:
            raise SimulationInputError(
                f"action_names: cannot merge {list(self.action_names)} with {list(other.action_names)}"
            )
        rows, mass = self.action_rows, self.target_mass
        if not rows:
            rows, mass = other.action_rows, other.target_mass
        elif other.action_rows:
            rows = tuple(a + b for a, b in zip(rows, other.action_rows, strict=True))
            mass = tuple(a + b for a, b in zip(mass, other.target_mass, strict=True))
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
            action_names=self.action_names or other.action_names,
            action_rows=rows,
            target_mass=mass,
        )

    @property
    def unsupported_share(self) -> float:
        """The share of the target's probability on variants that no row logged (0 without rows):
        what no logged reward shows, so no estimator can estimate it."""
        total = math.fsum(m.value for m in self.target_mass)
        if total <= 0:
            return 0.0
        unsupported = math.fsum(m.value for m, rows in zip(self.target_mass, self.action_rows, strict=True)
                                if rows == 0)
        return unsupported / total

    def _unsupported_names(self) -> list[str]:
        return [name for name, m, rows in zip(self.action_names, self.target_mass, self.action_rows,
                                              strict=True) if rows == 0 and m.value > 0]

    @property
    def value(self) -> float:
        """The point estimate :math:`\\sum u / \\sum d`; NaN when :math:`\\sum d = 0`, or when all of the
        target's probability is on variants that no row logged (:attr:`unsupported_share` 1)."""
        denominator = self.sum_d.value
        if denominator == 0 or self.unsupported_share == 1.0:
            return math.nan
        return self.sum_u.value / denominator

    @property
    def std_error(self) -> float:
        """Delta-method standard error of :attr:`value`: the spread of the per-row terms alone (NaN with
        fewer than two rows or no value)."""
        denominator = self.sum_d.value
        if self.n < 2 or not math.isfinite(self.value):
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
        """The estimate with a normal-approximation ``1 - alpha`` interval and its warnings; for an
        estimator in :data:`REFIT_ONLY`, no interval (``ci_method`` ``"none"``)."""
        z = z_value(alpha)
        with finite_sums(lambda: rewards_too_large(f"the {self.estimator} estimate", f"over {self.n} rows")):
            value, se = self.value, self.std_error
        if self.estimator in REFIT_ONLY:
            se = math.nan
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
            ci_method="normal" if math.isfinite(se) else "none",
        )

    def warnings(self, thresholds: WarningThresholds = WarningThresholds()) -> tuple[str, ...]:
        """Reasons the estimate may be unreliable."""
        out: list[str] = []
        if self.n < 2:
            out.append(f"only {self.n} row(s): no standard error")
        share = self.unsupported_share
        if share == 1.0:
            out.append("no row supports the target policy: all its probability is on variants no row logged "
                       f"({', '.join(self._unsupported_names())})")
        elif self.sum_d.value == 0 and self.n > 0:
            out.append("no row supports the target policy (replay matched nothing or all weights are 0)")
        elif share > 0:
            out.append(f"{share:.1%} of the target's probability is on variants no row logged "
                       f"({', '.join(self._unsupported_names())}): no estimator sees what they earn, so "
                       "the estimate leaves that share out or extrapolates it")
        if self.estimator in REFIT_ONLY and math.isfinite(self.value):
            out.append(NO_MODEL_ERROR_WARNING)
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


def with_model_error(
    estimate: PolicyEstimate, kernel_std_error: float, model_values: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
) -> PolicyEstimate:
    r"""``estimate`` with a normal interval that adds the reward model's own error to the per-row one.

    The two are taken as independent (exactly so when the model was fitted on other rows than those
    evaluated; when its rows are among them, the covariance vanishes for a correctly specified model,
    whose score has mean zero given the features):

    .. math:: \widehat{\mathrm{se}}^2 = \widehat{\mathrm{se}}_{\mathrm{rows}}^2
        + \widehat{\mathrm{var}}_b(\hat V_b),

    :math:`\hat V_b` the estimate on the same rows under the model refitted on resample ``b`` of the
    model's rows (:func:`simulations.refit_bootstrap.refit_models`).

    Parameters
    ----------
    estimate : PolicyEstimate
    kernel_std_error : float
        :math:`\widehat{\mathrm{se}}_{\text{rows}}`, the standard error from the per-row terms alone.
    model_values : array_like of shape (B,)
        :math:`\hat V_b`; at least two.
    alpha : float

    Returns
    -------
    PolicyEstimate
        ``ci_method`` ``"bootstrap (refit)"``, without the warning that the interval is missing.
    """
    values = np.asarray(model_values, dtype=float)
    if not math.isfinite(estimate.value) or values.size < 2 or not math.isfinite(kernel_std_error):
        return estimate
    std_error = math.sqrt(kernel_std_error**2 + float(np.var(values, ddof=1)))
    half = z_value(alpha) * std_error
    return replace(
        estimate, ci=(estimate.value - half, estimate.value + half), std_error=std_error,
        warnings=tuple(w for w in estimate.warnings if w != NO_MODEL_ERROR_WARNING),
        ci_method="bootstrap (refit)",
    )


def check_alpha(alpha: float) -> None:
    """``alpha`` must lie in (0, 1)."""
    if not 0 < alpha < 1:
        raise SimulationInputError(f"alpha: must be in (0, 1), got {alpha}")


def z_value(alpha: float) -> float:
    """The two-sided normal quantile :math:`z_{1-\\alpha/2}`, ``alpha`` checked."""
    check_alpha(alpha)
    return normal_isf(alpha / 2)
