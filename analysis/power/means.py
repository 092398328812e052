"""One solver for means (revenue per recipient, order value): the sample size, the minimum detectable
effect or the power, whichever is left unknown (:func:`solve_mean`, answering a :class:`MeanAnswer`).

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
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.power import TTestIndPower

from analysis.power.inputs import (
    Alternative,
    Correction,
    PowerInputError,
    check_choice,
    check_finite,
    check_nonzero,
    check_positive,
)
from analysis.power.solver import (
    Direction,
    QuestionSettings,
    TestAnswer,
    below_resolution,
    check_settings,
    check_size,
    finite_power,
)
from analysis.stats import SampleStats

MeanMethod = Literal["statsmodels", "normal"]


@dataclass(frozen=True, kw_only=True)
class MeanAnswer(TestAnswer):
    """A test of a mean: the effect, the size and the power, one of them solved for.

    Attributes
    ----------
    sd : float
        Standard deviation of the value per recipient (given, or estimated from ``sample``).
    sd_source : {"given", "sample"}
        Where ``sd`` came from (optional in the type: the HTTP answer of the effect question omits it).
    baseline_mean : float or None
        Control mean, when known (needed for a relative ``mde``).
    mde_absolute : float
        The effect in the value's units (signed).
    mde_relative : float or None
        The effect as a share of ``baseline_mean``, when known.
    effect_size : float
        Cohen's d, ``mde_absolute / sd``.
    convention : {"statsmodels", "normal"}
        Which formula solved it.
    Other attributes
        As in :class:`analysis.power.solver.TestAnswer`.
    """

    sd: float
    baseline_mean: float | None
    mde_absolute: float
    mde_relative: float | None
    convention: MeanMethod
    sd_source: Literal["given", "sample"] = "given"


#: How far (relative) a summary's ``sum_squares`` may fall below ``sum^2 / n`` from rounding alone: sums
#: of many values carry an error of about n times the machine epsilon at worst.
SUMS_ROUNDING = 1e-6


def _check_real_sums(sample: SampleStats) -> None:
    """Real values have ``sum_squares >= sum^2 / n`` (a variance is never negative); sums further below
    than rounding explains were not summed from real values."""
    floor = sample.mean * sample.sum  # sum^2 / n, without squaring a large sum
    if sample.sum_squares < floor * (1.0 - SUMS_ROUNDING):
        raise PowerInputError(
            f"sample.sum_squares is less than sum^2/n ({sample.sum_squares:g} < {floor:g}): not the sums "
            "of real values.", field="sample.sum_squares",
        )


def _resolve_sd(
    sd: float | None, sample: Sequence[float] | SampleStats | None, baseline_mean: float | None
) -> tuple[float, Literal["given", "sample"], float | None]:
    """The standard deviation, where it came from, and the baseline mean (from the sample if not given)."""
    if baseline_mean is not None:
        baseline_mean = check_finite("baseline_mean", baseline_mean)
    if sd is not None and sample is not None:
        raise PowerInputError("sample and sd were both given; give one of them.", field="sd")
    if sd is not None:
        return check_positive("sd", sd), "given", baseline_mean
    if sample is None:
        raise PowerInputError("sd is missing; give sd or a sample of past values.")
    if isinstance(sample, SampleStats):
        if sample.n < 2:
            raise PowerInputError("sample must summarise at least 2 values.", field="summary")
        _check_real_sums(sample)
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


def _formula(method: MeanMethod) -> str:
    if method == "statsmodels":
        return "statsmodels TTestIndPower (pooled two-sample t-test) on Cohen's d = mde / sd"
    return "the normal approximation n0 = (z_alpha + z_beta)^2 sd^2 (1 + 1/ratio) / mde^2"


def _z_alpha(settings: QuestionSettings) -> float:
    # scipy's normal here and below, as statsmodels' own normal quantiles
    alpha_each = settings.alpha_each
    return float(stats.norm.isf(alpha_each / 2.0 if settings.alternative == "two-sided" else alpha_each))


def _z_sum(settings: QuestionSettings) -> float:
    return _z_alpha(settings) + float(stats.norm.ppf(settings.power))


def _normal_effect(n: float, settings: QuestionSettings) -> float:
    """The standardised effect a z-test of ``n`` per arm detects with the requested power."""
    return _z_sum(settings) * math.sqrt((1 + 1 / settings.ratio) / n)


def _mean_power(d: float, n: float, settings: QuestionSettings, method: MeanMethod) -> float:
    alpha_each, alternative, ratio = settings.alpha_each, settings.alternative, settings.ratio
    if method == "statsmodels":
        sided = "two-sided" if alternative == "two-sided" else "larger"
        value = float(TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha_each, ratio=ratio,
                                            alternative=sided))
        if math.isfinite(value):
            return value
        return _t_power_by_tails(d, n, alpha_each, alternative, ratio)
    return float(stats.norm.cdf(d / math.sqrt((1 + 1 / ratio) / n) - _z_alpha(settings)))


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


def _sample_size(d: float, settings: QuestionSettings, method: MeanMethod) -> float:
    if method == "statsmodels":
        # the pooled t-test needs n0 + n1 > 2 (positive degrees of freedom)
        return settings.exact_size(d, lambda n: _mean_power(abs(d), n, settings, method),
                                   minimum=2.0 / (1.0 + settings.ratio))
    return _z_sum(settings) ** 2 * (1 + 1 / settings.ratio) / d**2


def _detectable_effect(n: float, settings: QuestionSettings, method: MeanMethod) -> float:
    """The standardised effect (Cohen's d, positive) ``n`` per arm detect with the requested power."""
    if method == "normal":
        return _normal_effect(n, settings)
    power_gap = finite_power(lambda d: _mean_power(d, n, settings, method) - settings.power)
    # statsmodels' own solve_power for the effect stops at a loose tolerance; solve it tightly here,
    # bracketed from the normal approximation and widened until the t-test reaches the power
    upper = 2.0 * _normal_effect(n, settings)
    while not power_gap(upper) > 0:
        upper *= 2.0
        if upper > 1e3:
            raise PowerInputError(f"n_per_arm {int(n)} is too small: power {settings.power:g} needs an "
                                  "effect above 1,000 standard deviations.")
    if power_gap(1e-12) >= 0:
        raise below_resolution(settings.power, settings.alpha_each, 1e-12)
    return optimize.brentq(power_gap, 1e-12, upper, xtol=1e-15, rtol=1e-13)


def solve_mean(
    sd: float | None = None,
    *,
    mde: float | None = None,
    n_per_arm: float | None = None,
    power: float | None = 0.8,
    sample: Sequence[float] | SampleStats | None = None,
    baseline_mean: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    daily: int | None = None,
    traffic_share: float = 1.0,
    method: MeanMethod = "statsmodels",
    correction: Correction = "bonferroni",
    direction: Direction = "increase",
) -> MeanAnswer:
    """The sample size, minimum detectable effect or power of a test of a mean value per recipient:
    leave one of ``mde``, ``n_per_arm`` and ``power`` as None and it is solved for.

    Parameters
    ----------
    sd : float or None
        Standard deviation of the value per recipient; None to estimate it from ``sample``.
    mde : float or None
        Minimum detectable effect in the value's units, or with ``relative=True`` a share of
        ``baseline_mean``.
    n_per_arm, power
        As in :func:`analysis.power.rates.solve_rate`; ``n_per_arm`` is at least 2.
    sample : sequence of float, shape (m,), or SampleStats, optional
        Past values per recipient (zeros included), or their summary statistics (``n``, ``sum``,
        ``sum_squares``); gives ``sd`` (ddof=1) and, when ``baseline_mean`` is not given, the baseline
        mean.
    baseline_mean : float, optional
        Control mean, needed for a relative ``mde`` without a sample.
    relative, alpha, alternative, arms, ratio, daily, traffic_share, correction, direction
        As in :func:`analysis.power.rates.solve_rate`.
    method : {"statsmodels", "normal"}
        The t-test (default) or the normal approximation.

    Returns
    -------
    MeanAnswer
        With ``sizes`` (every arm, the total, the days) when ``n_per_arm`` was solved for.

    Examples
    --------
    >>> solve_mean(1.0, mde=0.5).n_per_arm  # Cohen's d = 0.5: 63.8 rounded up
    64
    >>> round(solve_mean(1.0, mde=0.5, n_per_arm=64, power=None).power, 3)
    0.801
    >>> round(solve_mean(1.0, n_per_arm=64).effect_size, 3)
    0.499
    """
    settings = check_settings(mde, n_per_arm, power, alpha=alpha, alternative=alternative, arms=arms,
                              ratio=ratio, correction=correction, daily=daily, traffic_share=traffic_share,
                              direction=direction)
    method = check_choice("method", method, ("statsmodels", "normal"))  # type: ignore[assignment]
    n = None if n_per_arm is None else check_size(n_per_arm, settings.question, 2)
    sd_value, source, baseline = _resolve_sd(sd, sample, baseline_mean)
    sizes = None
    if settings.question == "mde":
        detectable = _detectable_effect(n, settings, method)  # type: ignore[arg-type]
        delta = (1.0 if direction == "increase" else -1.0) * detectable * sd_value
        if not math.isfinite(delta):
            raise PowerInputError(f"sd is too large: the detectable effect {detectable:g} x sd overflows.")
        d = delta / sd_value
        n_answer: int | float = int(n)  # type: ignore[arg-type]
    else:
        delta = _absolute_mde(mde, relative, baseline)  # type: ignore[arg-type]
        d = _effect_size(delta, sd_value)
    if settings.question == "power":
        n_answer = n  # type: ignore[assignment]
        power = _mean_power(abs(d), n, settings, method)  # type: ignore[arg-type]
        if not math.isfinite(power):
            raise _unreachable_precision(n, d)  # type: ignore[arg-type]
    elif settings.question == "n_per_arm":
        sizes = settings.sizes(_sample_size(d, settings, method))
        n_answer = sizes.per_arm
    return MeanAnswer(
        sd=sd_value, sd_source=source, baseline_mean=baseline, mde_absolute=delta,
        mde_relative=None if not baseline else delta / abs(baseline), effect_size=d, n_per_arm=n_answer,
        power=float(power), convention=method, method=settings.describe(_formula(method)),  # type: ignore[arg-type]
        sizes=sizes, **settings.common_fields(),
    )
