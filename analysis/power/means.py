"""Sample size, minimum detectable effect and power for means (revenue per recipient, order value).

Two conventions, named in every result:

``"statsmodels"``
    statsmodels' ``TTestIndPower``: the exact power of the pooled two-sample t-test (noncentral t)
    on Cohen's :math:`d = \\Delta / \\sigma` with :math:`n_0 + n_1 - 2` degrees of freedom.
``"normal"``
    the normal approximation :math:`n_0 = (z_{1-\\alpha'} + z_{1-\\beta})^2 \\sigma^2 (1 + 1/r) / \\Delta^2`.

The standard deviation is given, or estimated from a sample of past values (``ddof=1``).

References
----------
Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., table 2.4.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.power import TTestIndPower

from analysis.power.duration import solve_duration
from analysis.power.inputs import (
    Alternative,
    Correction,
    PowerInputError,
    arm_sizes,
    below_resolution,
    check_choice,
    check_count,
    check_daily,
    check_finite,
    check_n_per_arm,
    check_nonzero,
    check_plan_options,
    check_positive,
    check_power_above_alpha,
    describe_correction,
    normal_guess,
    refine_sample_size,
)
from analysis.stats import SampleStats

MeanMethod = Literal["statsmodels", "normal"]
Direction = Literal["increase", "decrease"]


@dataclass(frozen=True)
class MeanPlan:
    """The sample a test of a mean needs.

    Attributes
    ----------
    sd : float
        Standard deviation of the value per recipient (given, or estimated from ``sample``).
    sd_source : {"given", "sample"}
        Where ``sd`` came from.
    baseline_mean : float or None
        Control mean, when known (needed for a relative ``mde``).
    mde_absolute : float
        The effect to detect, in the value's units (signed).
    mde_relative : float or None
        The effect as a share of ``baseline_mean``, when known.
    effect_size : float
        Cohen's d, ``mde_absolute / sd``.
    n_exact, per_arm, per_arm_sizes, total, days
        As in :class:`analysis.power.rates.RatePlan`.
    convention : {"statsmodels", "normal"}
        Which formula solved it.
    method : str
        A sentence stating the formula, the rounding and the multiple-arm correction.
    """

    sd: float
    sd_source: Literal["given", "sample"]
    baseline_mean: float | None
    mde_absolute: float
    mde_relative: float | None
    effect_size: float
    alpha: float
    alpha_per_comparison: float
    power: float
    alternative: Alternative
    arms: int
    ratio: float
    n_exact: float
    per_arm: int
    per_arm_sizes: tuple[int, ...]
    total: int
    daily: int | None
    traffic_share: float
    days: int | None
    convention: MeanMethod
    method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (tuples become lists)."""
        out = asdict(self)
        out["per_arm_sizes"] = list(self.per_arm_sizes)
        return out


@dataclass(frozen=True)
class MeanMde:
    """The smallest change of a mean that a test of a given size detects with the requested power."""

    sd: float
    baseline_mean: float | None
    mde_absolute: float
    mde_relative: float | None
    effect_size: float
    n_per_arm: int
    alpha: float
    alpha_per_comparison: float
    power: float
    alternative: Alternative
    arms: int
    ratio: float
    convention: MeanMethod
    method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class MeanPower:
    """The power of a test of a mean of a given size against a given effect.

    Attributes
    ----------
    power : float
        Power of each treatment-versus-control comparison, in (0, 1).
    sd, sd_source, baseline_mean, mde_absolute, mde_relative, effect_size
        As in :class:`MeanPlan`.
    n_per_arm : float
        Control-arm size the power is for (treatments have ``ratio`` times it).
    convention, method : str
        Which formula, and a sentence stating it.
    """

    power: float
    sd: float
    sd_source: Literal["given", "sample"]
    baseline_mean: float | None
    mde_absolute: float
    mde_relative: float | None
    effect_size: float
    n_per_arm: float
    alpha: float
    alpha_per_comparison: float
    alternative: Alternative
    arms: int
    ratio: float
    convention: MeanMethod
    method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def _resolve_sd(
    sd: float | None, sample: Sequence[float] | SampleStats | None, baseline_mean: float | None
) -> tuple[float, Literal["given", "sample"], float | None]:
    """The standard deviation, where it came from, and the baseline mean (from the sample if not given)."""
    if baseline_mean is not None:
        baseline_mean = check_finite("baseline_mean", baseline_mean)
    if sd is not None and sample is not None:
        raise PowerInputError("sd and sample were both given; give one of them.")
    if sd is not None:
        return check_positive("sd", sd), "given", baseline_mean
    if sample is None:
        raise PowerInputError("sd is missing; give sd or a sample of past values.")
    if isinstance(sample, SampleStats):
        if sample.n < 2:
            raise PowerInputError("sample must summarise at least 2 values.", field="summary")
        try:
            estimate, mean = sample.std, sample.mean
        except OverflowError:
            estimate = mean = math.inf  # reported below
    else:
        values = np.asarray(sample, dtype=float)
        if values.ndim != 1 or values.size < 2:
            raise PowerInputError("sample must be a flat sequence of at least 2 values.")
        if not np.all(np.isfinite(values)):
            raise PowerInputError("sample must contain only finite numbers.")
        with np.errstate(over="ignore", invalid="ignore"):
            estimate, mean = float(np.std(values, ddof=1)), float(np.mean(values))
    if not (math.isfinite(estimate) and math.isfinite(mean)):
        raise PowerInputError("sample values are too large: their mean or standard deviation overflows.")
    if estimate <= 0.0:
        raise PowerInputError("sample has no spread (all values equal), so its standard deviation is 0.")
    return estimate, "sample", mean if baseline_mean is None else baseline_mean


def _effect_size(delta: float, sd: float) -> float:
    """Cohen's d, checked to be a usable finite, non-zero number."""
    d = delta / sd
    if not math.isfinite(d):
        raise PowerInputError(f"mde is too large next to sd: mde / sd overflows ({delta:g} / {sd:g}).")
    if d == 0.0:
        raise PowerInputError(
            f"mde is too small next to sd: mde / sd is 0 in floating point ({delta:g} / {sd:g})."
        )
    return d


def _absolute_mde(mde: float, relative: bool, baseline_mean: float | None) -> float:
    mde = check_nonzero("mde", mde)
    if not relative:
        return mde
    if baseline_mean is None:
        raise PowerInputError("baseline_mean is needed for a relative mde; give it or a sample.")
    if baseline_mean == 0.0:
        raise PowerInputError("baseline_mean is 0, so a relative mde is undefined.")
    return mde * abs(baseline_mean)


def _z_alpha(alpha_each: float, alternative: Alternative) -> float:
    return float(stats.norm.isf(alpha_each / 2.0 if alternative == "two-sided" else alpha_each))


def _z_sum(alpha_each: float, alternative: Alternative, power: float) -> float:
    return _z_alpha(alpha_each, alternative) + float(stats.norm.ppf(power))


def _sm_alternative(alternative: Alternative) -> str:
    return "two-sided" if alternative == "two-sided" else "larger"


def _describe(method: MeanMethod, alternative: Alternative, correction_text: str) -> str:
    if method == "statsmodels":
        formula = "statsmodels TTestIndPower (pooled two-sample t-test) on Cohen's d = mde / sd"
    else:
        formula = "the normal approximation n0 = (z_alpha + z_beta)^2 sd^2 (1 + 1/ratio) / mde^2"
    return f"{formula}, {alternative}; {correction_text}; sizes rounded up to whole recipients."


def _check_method(method: str) -> MeanMethod:
    return check_choice("method", method, ("statsmodels", "normal"))  # type: ignore[return-value]


def _mean_power(d: float, n: float, alpha_each: float, alternative: Alternative, ratio: float,
                method: MeanMethod) -> float:
    if method == "statsmodels":
        value = float(TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha_each, ratio=ratio,
                                            alternative=_sm_alternative(alternative)))
        if math.isfinite(value):
            return value
        return _t_power_by_tails(d, n, alpha_each, alternative, ratio)
    return float(stats.norm.cdf(d / math.sqrt((1 + 1 / ratio) / n) - _z_alpha(alpha_each, alternative)))


def _t_power_by_tails(d: float, n: float, alpha_each: float, alternative: Alternative,
                              ratio: float) -> float:
    """The t-test power of statsmodels, recomputed when it returned NaN.

    With a large noncentrality :math:`\\delta` scipy's noncentral t can return NaN for the far tail
    :math:`P(T < -t_{crit})` of a two-sided test (rejecting in the wrong direction). That tail is
    computed again as :math:`P(T' > t_{crit})` with :math:`T'` of noncentrality :math:`-\\delta` (the same
    number by symmetry); if that fails too and its bound :math:`\\Phi(-\\delta)` is below 1e-15 it is
    dropped, exactly to double precision. NaN is returned when no number comes out; the callers
    report it.
    """
    df = n * (1 + ratio) - 2
    noncentrality = d * math.sqrt(n * ratio / (1 + ratio))
    two_sided = alternative == "two-sided"
    critical = float(stats.t.isf(alpha_each / 2 if two_sided else alpha_each, df))
    power = float(stats.nct.sf(critical, df, noncentrality))
    if two_sided:
        far = float(stats.nct.cdf(-critical, df, noncentrality))
        if not math.isfinite(far):
            far = float(stats.nct.sf(critical, df, -noncentrality))
        if not math.isfinite(far) and float(stats.norm.cdf(-noncentrality)) < 1e-15:
            far = 0.0
        power += far
    return min(power, 1.0) if math.isfinite(power) else math.nan


def _unreachable_precision(n: float, d: float) -> PowerInputError:
    return PowerInputError(
        f"alpha, mde and sd are beyond the precision of the t-test power function at {n:.6g} per arm "
        f"(effect size {d:.6g}); try method 'normal'."
    )


def solve_mean_sample_size(
    sd: float | None,
    mde: float,
    *,
    sample: Sequence[float] | SampleStats | None = None,
    baseline_mean: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    daily: int | None = None,
    traffic_share: float = 1.0,
    method: MeanMethod = "statsmodels",
    correction: Correction = "bonferroni",
) -> MeanPlan:
    """Recipients per arm to detect a change of a mean value per recipient.

    Parameters
    ----------
    sd : float or None
        Standard deviation of the value per recipient; None to estimate it from ``sample``.
    mde : float
        Minimum detectable effect in the value's units, or with ``relative=True`` a share of
        ``baseline_mean``.
    sample : sequence of float, shape (m,), or SampleStats, optional
        Past values per recipient (zeros included), or their summary statistics (``n``, ``sum``,
        ``sum_squares``); gives ``sd`` (ddof=1) and, when ``baseline_mean`` is not given, the baseline
        mean.
    baseline_mean : float, optional
        Control mean, needed for a relative ``mde`` without a sample.
    relative, alpha, power, alternative, arms, ratio, daily, traffic_share, correction
        As in :func:`analysis.power.rates.solve_rate_sample_size`.
    method : {"statsmodels", "normal"}
        The t-test (default) or the normal approximation.

    Returns
    -------
    MeanPlan

    Examples
    --------
    >>> solve_mean_sample_size(1.0, 0.5).per_arm  # Cohen's d = 0.5: 63.8 rounded up
    64
    """
    alpha_each = check_plan_options(alpha, power, alternative, arms, ratio, correction)
    check_power_above_alpha(power, alpha_each)
    method = _check_method(method)
    check_daily(daily, traffic_share)
    sd_value, source, baseline = _resolve_sd(sd, sample, baseline_mean)
    delta = _absolute_mde(mde, relative, baseline)
    d = _effect_size(delta, sd_value)
    if method == "statsmodels":
        guess = normal_guess(abs(d), alpha_each, alternative, power, ratio)
        # the pooled t-test needs n0 + n1 > 2 (positive degrees of freedom)
        n_exact = refine_sample_size(
            lambda n: _mean_power(abs(d), n, alpha_each, alternative, ratio, method),
            power, float(guess), minimum=2.0 / (1.0 + ratio),
        )
    else:
        n_exact = _z_sum(alpha_each, alternative, power) ** 2 * (1 + 1 / ratio) / d**2
    sizes = arm_sizes(n_exact, arms, ratio)
    total = sum(sizes)
    return MeanPlan(
        sd=sd_value,
        sd_source=source,
        baseline_mean=baseline,
        mde_absolute=delta,
        mde_relative=None if not baseline else delta / abs(baseline),
        effect_size=d,
        alpha=float(alpha),
        alpha_per_comparison=alpha_each,
        power=float(power),
        alternative=alternative,
        arms=int(arms),
        ratio=float(ratio),
        n_exact=n_exact,
        per_arm=sizes[0],
        per_arm_sizes=sizes,
        total=total,
        daily=daily,
        traffic_share=float(traffic_share),
        days=None if daily is None else solve_duration(total, daily, traffic_share),
        convention=method,
        method=_describe(method, alternative, describe_correction(arms, correction, alpha, alpha_each)),
    )


def solve_mean_power(
    sd: float | None,
    mde: float,
    n_per_arm: int,
    *,
    sample: Sequence[float] | SampleStats | None = None,
    baseline_mean: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: MeanMethod = "statsmodels",
    correction: Correction = "bonferroni",
) -> float:
    """Power of each treatment-versus-control t-test with ``n_per_arm`` in the control arm.

    Examples
    --------
    >>> round(solve_mean_power(1.0, 0.5, 64), 3)
    0.801
    """
    return evaluate_mean_power(
        sd, mde, n_per_arm, sample=sample, baseline_mean=baseline_mean, relative=relative, alpha=alpha,
        alternative=alternative, arms=arms, ratio=ratio, method=method, correction=correction,
    ).power


def evaluate_mean_power(
    sd: float | None,
    mde: float,
    n_per_arm: float,
    *,
    sample: Sequence[float] | SampleStats | None = None,
    baseline_mean: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: MeanMethod = "statsmodels",
    correction: Correction = "bonferroni",
) -> MeanPower:
    """:func:`solve_mean_power` with the effect, the settings and the convention that produced it.

    Parameters are those of :func:`solve_mean_power`.

    Returns
    -------
    MeanPower

    Examples
    --------
    >>> result = evaluate_mean_power(None, 1.0, 100, sample=[0.0, 0.0, 10.0, 2.0])
    >>> round(result.sd, 3), round(result.power, 3)
    (4.761, 0.315)
    """
    alpha_each = check_plan_options(alpha, 0.5, alternative, arms, ratio, correction)
    method = _check_method(method)
    n = check_n_per_arm(n_per_arm, at_least=2)
    sd_value, source, baseline = _resolve_sd(sd, sample, baseline_mean)
    delta = _absolute_mde(mde, relative, baseline)
    d = _effect_size(delta, sd_value)
    power = _mean_power(abs(d), n, alpha_each, alternative, ratio, method)
    if not math.isfinite(power):
        raise _unreachable_precision(n, d)
    return MeanPower(
        power=power,
        sd=sd_value,
        sd_source=source,
        baseline_mean=baseline,
        mde_absolute=delta,
        mde_relative=None if not baseline else delta / abs(baseline),
        effect_size=d,
        n_per_arm=n,
        alpha=float(alpha),
        alpha_per_comparison=alpha_each,
        alternative=alternative,
        arms=int(arms),
        ratio=float(ratio),
        convention=method,
        method=_describe(method, alternative, describe_correction(arms, correction, alpha, alpha_each)),
    )


def solve_mean_mde(
    sd: float | None,
    n_per_arm: int,
    *,
    sample: Sequence[float] | SampleStats | None = None,
    baseline_mean: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: MeanMethod = "statsmodels",
    correction: Correction = "bonferroni",
    direction: Direction = "increase",
) -> MeanMde:
    """The smallest change of the mean that ``n_per_arm`` recipients per arm detect with ``power``.

    Examples
    --------
    >>> round(solve_mean_mde(1.0, 64).effect_size, 3)
    0.499
    """
    alpha_each = check_plan_options(alpha, power, alternative, arms, ratio, correction)
    check_power_above_alpha(power, alpha_each)
    method = _check_method(method)
    n = check_n_per_arm(check_count("n_per_arm", n_per_arm, 2), at_least=2)
    check_choice("direction", direction, ("increase", "decrease"))
    sd_value, _, baseline = _resolve_sd(sd, sample, baseline_mean)
    if method == "statsmodels":
        def power_gap(d: float) -> float:
            return _mean_power(d, n, alpha_each, alternative, ratio, method) - power

        # statsmodels' own solve_power for the effect stops at a loose tolerance; solve it tightly here
        # bracket from the normal approximation, widened until the t-test reaches the power
        upper = 2.0 * _z_sum(alpha_each, alternative, power) * math.sqrt((1 + 1 / ratio) / n)
        while not power_gap(upper) > 0:
            upper *= 2.0
            if upper > 1e3:
                raise PowerInputError(f"n_per_arm {n_per_arm} is too small: power {power:g} needs an effect "
                                      "above 1,000 standard deviations.")
        if power_gap(1e-12) >= 0:
            raise below_resolution(power, alpha_each, 1e-12)
        try:
            d = optimize.brentq(power_gap, 1e-12, upper, xtol=1e-15, rtol=1e-13)
        except ValueError:  # NaN inside the bracket: scipy's noncentral t fails at few degrees of freedom
            raise PowerInputError(f"scipy's noncentral t failed at n_per_arm {n_per_arm}; method 'normal' "
                                  "answers by the normal approximation.") from None
    else:
        d = _z_sum(alpha_each, alternative, power) * math.sqrt((1 + 1 / ratio) / n)
    delta = (1.0 if direction == "increase" else -1.0) * d * sd_value
    if not math.isfinite(delta):
        raise PowerInputError(f"sd is too large: the detectable effect {d:g} x sd overflows.")
    return MeanMde(
        sd=sd_value,
        baseline_mean=baseline,
        mde_absolute=delta,
        mde_relative=None if not baseline else delta / abs(baseline),
        effect_size=delta / sd_value,
        n_per_arm=int(n),
        alpha=float(alpha),
        alpha_per_comparison=alpha_each,
        power=float(power),
        alternative=alternative,
        arms=int(arms),
        ratio=float(ratio),
        convention=method,
        method=_describe(method, alternative, describe_correction(arms, correction, alpha, alpha_each)),
    )
