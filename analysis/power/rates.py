"""Sample size, minimum detectable effect and power for conversion rates (opens, clicks, purchases).

Two conventions, named in every result:

``"statsmodels"``
    statsmodels' ``NormalIndPower`` on Cohen's effect size for proportions,
    :math:`h = 2\\arcsin\\sqrt{p_1} - 2\\arcsin\\sqrt{p_0}`, whose variance-stabilised
    difference has variance :math:`1/n_0 + 1/n_1` (both tails counted when two-sided).
``"unpooled"``
    the classic normal formula with unpooled variances,

    .. math:: n_0 = \\frac{(z_{1-\\alpha'} + z_{1-\\beta})^2 \\left(p_0 q_0 + p_1 q_1 / r\\right)}
        {(p_1 - p_0)^2}, \\qquad n_1 = r\\, n_0,

    with :math:`\\alpha' = \\alpha/2` when two-sided (the far tail is ignored, as in the textbooks).

With more than two arms, each treatment is compared with the control at a per-comparison alpha
(Bonferroni: ``alpha / (arms - 1)``) unless ``correction="none"``.

References
----------
Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., ch. 6.
Chow, S.-C., Shao, J. and Wang, H. (2008). *Sample Size Calculations in Clinical Research*, 4.2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

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
    check_n_per_arm,
    check_nonzero,
    check_open_unit,
    check_plan_options,
    check_power_above_alpha,
    describe_correction,
    normal_guess,
    refine_sample_size,
)
from analysis.power.normal import bisect_root, normal_cdf, normal_isf, normal_ppf, normal_sf

RateMethod = Literal["statsmodels", "unpooled"]
Direction = Literal["increase", "decrease"]


@dataclass(frozen=True)
class RatePlan:
    """The sample a two-or-more-arm rate test needs.

    Attributes
    ----------
    baseline, treatment_rate : float
        Control rate and the treatment rate the test should detect.
    mde_absolute, mde_relative : float
        The effect as a difference of rates and as a share of the baseline.
    effect_size : float
        Cohen's h of the two rates (signed).
    n_exact : float
        The solved control-arm size before rounding.
    per_arm : int
        Control-arm size, rounded up to whole recipients.
    per_arm_sizes : tuple of int, length arms
        Every arm's size: the control, then each treatment (``ratio`` times the control, rounded up).
    total : int
        Sum of ``per_arm_sizes``.
    days : int or None
        Days to reach ``total`` at ``daily`` sends and ``traffic_share``; None without ``daily``.
    alpha, alpha_per_comparison, power : float
        Family-wise alpha, the alpha of each treatment-versus-control test, and the requested power.
    convention : {"statsmodels", "unpooled"}
        Which formula solved it.
    method : str
        A sentence stating the formula, the rounding and the multiple-arm correction.
    """

    baseline: float
    treatment_rate: float
    mde_absolute: float
    mde_relative: float
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
    convention: RateMethod
    method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (tuples become lists)."""
        out = asdict(self)
        out["per_arm_sizes"] = list(self.per_arm_sizes)
        return out


@dataclass(frozen=True)
class RateMde:
    """The smallest effect a rate test of a given size detects with the requested power.

    Attributes
    ----------
    baseline, treatment_rate : float
        Control rate and the smallest detectable treatment rate in the requested direction.
    mde_absolute, mde_relative : float
        The detectable effect as a difference of rates (signed) and as a share of the baseline.
    n_per_arm : int
        Control-arm size the answer is for (treatments have ``ratio`` times it).
    convention, method : str
        Which formula, and a sentence stating it.
    """

    baseline: float
    treatment_rate: float
    mde_absolute: float
    mde_relative: float
    effect_size: float
    n_per_arm: int
    alpha: float
    alpha_per_comparison: float
    power: float
    alternative: Alternative
    arms: int
    ratio: float
    convention: RateMethod
    method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class RatePower:
    """The power of a rate test of a given size against a given effect.

    Attributes
    ----------
    power : float
        Power of each treatment-versus-control comparison, in (0, 1).
    baseline, treatment_rate, mde_absolute, mde_relative, effect_size
        As in :class:`RatePlan`.
    n_per_arm : float
        Control-arm size the power is for (treatments have ``ratio`` times it).
    convention, method : str
        Which formula, and a sentence stating it.
    """

    power: float
    baseline: float
    treatment_rate: float
    mde_absolute: float
    mde_relative: float
    effect_size: float
    n_per_arm: float
    alpha: float
    alpha_per_comparison: float
    alternative: Alternative
    arms: int
    ratio: float
    convention: RateMethod
    method: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def cohens_h(treatment_rate: float, baseline: float) -> float:
    """Cohen's effect size for two proportions, :math:`2\\arcsin\\sqrt{p_1} - 2\\arcsin\\sqrt{p_0}`."""
    return 2.0 * math.asin(math.sqrt(treatment_rate)) - 2.0 * math.asin(math.sqrt(baseline))


def treatment_rate_for(baseline: float, mde: float, relative: bool) -> float:
    """The treatment rate ``baseline + mde`` (or ``baseline * (1 + mde)``), checked to lie in (0, 1)."""
    baseline = check_open_unit("baseline", baseline)
    mde = check_nonzero("mde", mde)
    rate = baseline * (1.0 + mde) if relative else baseline + mde
    if rate >= 1.0:
        raise PowerInputError(f"mde gives a treatment rate of {rate:.6g}, which is not below 1.")
    if rate <= 0.0:
        raise PowerInputError(f"mde gives a treatment rate of {rate:.6g}, which is not above 0.")
    if rate == baseline:
        raise PowerInputError(f"mde {mde!r} is too small to move the baseline in floating point: a zero "
                              "effect cannot be detected.")
    return rate


def _z_alpha(alpha_each: float, alternative: Alternative) -> float:
    return normal_isf(alpha_each / 2.0 if alternative == "two-sided" else alpha_each)


def normal_ind_power(h: float, n_control: float, alpha_each: float, ratio: float,
                     alternative: Alternative) -> float:
    r"""The power of a two-sample z-test of a standardised effect ``h`` (statsmodels' ``NormalIndPower``).

    .. math:: n = \Big(\frac{1}{n_0} + \frac{1}{r n_0}\Big)^{-1},\qquad
        \text{power} = 1 - \Phi(z_{1-\alpha'} - h\sqrt n)
        + [\text{two-sided}]\;\Phi(-z_{1-\alpha'} - h\sqrt n)

    with :math:`\alpha' = \alpha/2` when two-sided (both tails counted), :math:`\alpha` one-sided.
    """
    nobs = 1.0 / (1.0 / n_control + 1.0 / (n_control * ratio))
    shift = h * math.sqrt(nobs)
    crit = _z_alpha(alpha_each, alternative)
    power = normal_sf(crit - shift)
    if alternative == "two-sided":
        power += normal_cdf(-crit - shift)
    return power


def _describe(method: RateMethod, alternative: Alternative, correction_text: str) -> str:
    if method == "statsmodels":
        formula = (
            "statsmodels NormalIndPower on Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))"
            + (" (both tails counted)" if alternative == "two-sided" else "")
        )
    else:
        formula = (
            "the classic unpooled-variance normal formula n0 = (z_alpha + z_beta)^2 "
            "(p0 q0 + p1 q1 / ratio) / (p1 - p0)^2"
        )
    return f"{formula}, {alternative}; {correction_text}; sizes rounded up to whole recipients."


def _rate_power(
    baseline: float,
    treatment_rate: float,
    n_control: float,
    alpha_each: float,
    alternative: Alternative,
    ratio: float,
    method: RateMethod,
) -> float:
    if method == "statsmodels":
        return normal_ind_power(abs(cohens_h(treatment_rate, baseline)), n_control, alpha_each, ratio,
                                alternative)
    n_treatment = ratio * n_control
    variance = baseline * (1 - baseline) / n_control + treatment_rate * (1 - treatment_rate) / n_treatment
    z = abs(treatment_rate - baseline) / math.sqrt(variance) - _z_alpha(alpha_each, alternative)
    return normal_cdf(z)


def _check_method(method: str) -> RateMethod:
    return check_choice("method", method, ("statsmodels", "unpooled"))  # type: ignore[return-value]


def solve_rate_sample_size(
    baseline: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    daily: int | None = None,
    traffic_share: float = 1.0,
    method: RateMethod = "statsmodels",
    correction: Correction = "bonferroni",
) -> RatePlan:
    """Recipients per arm to detect a change of a conversion rate.

    Parameters
    ----------
    baseline : float
        Control rate, in (0, 1).
    mde : float
        Minimum detectable effect: a difference of rates, or with ``relative=True`` a share of the
        baseline (``0.10`` is +10 %). Negative values plan for a decrease.
    relative : bool, default False
        Read ``mde`` as relative to the baseline.
    alpha : float, default 0.05
        Family-wise significance level.
    power : float, default 0.8
        Probability of detecting the effect, in (0, 1).
    alternative : {"two-sided", "one-sided"}
        One-sided tests in the direction of ``mde``.
    arms : int, default 2
        Number of arms, the control included; each treatment is compared with the control.
    ratio : float, default 1.0
        Size of each treatment arm relative to the control arm.
    daily : int, optional
        Emails sent per day; gives ``days``.
    traffic_share : float, default 1.0
        Share of the daily volume in the test.
    method : {"statsmodels", "unpooled"}
        Which formula (see the module notes).
    correction : {"bonferroni", "none"}
        How the per-comparison alpha is set when ``arms > 2``.

    Returns
    -------
    RatePlan

    Examples
    --------
    >>> plan = solve_rate_sample_size(0.03, 0.10, relative=True)
    >>> plan.per_arm, plan.total
    (53182, 106364)
    """
    alpha_each = check_plan_options(alpha, power, alternative, arms, ratio, correction)
    check_power_above_alpha(power, alpha_each)
    method = _check_method(method)
    check_daily(daily, traffic_share)
    treatment = treatment_rate_for(baseline, mde, relative)
    h = cohens_h(treatment, baseline)
    if method == "statsmodels":
        guess = normal_guess(abs(h), alpha_each, alternative, power, ratio)
        n_exact = refine_sample_size(
            lambda n: _rate_power(baseline, treatment, n, alpha_each, alternative, ratio, method),
            power, float(guess), minimum=1e-6,
        )
    else:
        z_sum = _z_alpha(alpha_each, alternative) + normal_ppf(power)
        variance = baseline * (1 - baseline) + treatment * (1 - treatment) / ratio
        squared = (treatment - baseline) ** 2
        if squared == 0.0:  # the difference underflows: no finite sample detects it
            raise PowerInputError("mde is too small: the sample size would exceed 1e15 per arm.")
        n_exact = z_sum**2 * variance / squared
    sizes = arm_sizes(n_exact, arms, ratio)
    total = sum(sizes)
    return RatePlan(
        baseline=float(baseline),
        treatment_rate=treatment,
        mde_absolute=treatment - baseline,
        mde_relative=(treatment - baseline) / baseline,
        effect_size=h,
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


def solve_rate_power(
    baseline: float,
    mde: float,
    n_per_arm: int,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: RateMethod = "statsmodels",
    correction: Correction = "bonferroni",
) -> float:
    """Power of each treatment-versus-control comparison with ``n_per_arm`` in the control arm.

    Parameters are those of :func:`solve_rate_sample_size`; ``n_per_arm`` is the control-arm size
    (treatments have ``ratio`` times it). Returns the power, a float in (0, 1).

    Examples
    --------
    >>> round(solve_rate_power(0.03, 0.10, 53182, relative=True), 4)
    0.8
    """
    return evaluate_rate_power(
        baseline, mde, n_per_arm, relative=relative, alpha=alpha, alternative=alternative, arms=arms,
        ratio=ratio, method=method, correction=correction,
    ).power


def evaluate_rate_power(
    baseline: float,
    mde: float,
    n_per_arm: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: RateMethod = "statsmodels",
    correction: Correction = "bonferroni",
) -> RatePower:
    """:func:`solve_rate_power` with the effect, the settings and the convention that produced it.

    Parameters are those of :func:`solve_rate_power`.

    Returns
    -------
    RatePower

    Examples
    --------
    >>> result = evaluate_rate_power(0.03, 0.10, 53182, relative=True)
    >>> round(result.power, 4), round(result.treatment_rate, 4)
    (0.8, 0.033)
    """
    alpha_each = check_plan_options(alpha, 0.5, alternative, arms, ratio, correction)
    method = _check_method(method)
    n = check_n_per_arm(n_per_arm)
    treatment = treatment_rate_for(baseline, mde, relative)
    power = _rate_power(baseline, treatment, n, alpha_each, alternative, ratio, method)
    return RatePower(
        power=power,
        baseline=float(baseline),
        treatment_rate=treatment,
        mde_absolute=treatment - baseline,
        mde_relative=(treatment - baseline) / baseline,
        effect_size=cohens_h(treatment, baseline),
        n_per_arm=n,
        alpha=float(alpha),
        alpha_per_comparison=alpha_each,
        alternative=alternative,
        arms=int(arms),
        ratio=float(ratio),
        convention=method,
        method=_describe(method, alternative, describe_correction(arms, correction, alpha, alpha_each)),
    )


def solve_rate_mde(
    baseline: float,
    n_per_arm: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: RateMethod = "statsmodels",
    correction: Correction = "bonferroni",
    direction: Direction = "increase",
) -> RateMde:
    """The smallest change of the rate that ``n_per_arm`` recipients per arm detect with ``power``.

    Parameters are those of :func:`solve_rate_sample_size`; ``direction`` says whether the effect is
    an increase or a decrease of the rate.

    Returns
    -------
    RateMde
        Raises :class:`PowerInputError` when no rate in (0, 1) is detectable at that size.

    Examples
    --------
    >>> round(solve_rate_mde(0.03, 53182).mde_relative, 4)
    0.1
    """
    alpha_each = check_plan_options(alpha, power, alternative, arms, ratio, correction)
    check_power_above_alpha(power, alpha_each)
    method = _check_method(method)
    baseline = check_open_unit("baseline", baseline)
    n = check_n_per_arm(check_count("n_per_arm", n_per_arm, 2), at_least=2)
    check_choice("direction", direction, ("increase", "decrease"))
    sign = 1.0 if direction == "increase" else -1.0
    room = 1.0 - baseline if sign > 0 else baseline
    undetectable = PowerInputError(
        f"n_per_arm {n_per_arm} is too small: no {direction} of the rate within (0, 1) "
        f"reaches power {power:g}."
    )
    if method == "statsmodels":
        def power_gap(h: float) -> float:
            return normal_ind_power(h, n, alpha_each, ratio, alternative) - power

        if power_gap(math.pi) < 0:
            raise undetectable
        if power_gap(1e-12) >= 0:
            raise below_resolution(power, alpha_each, 1e-12)
        h = bisect_root(power_gap, 1e-12, math.pi, xtol=1e-15, rtol=1e-13)
        angle = math.asin(math.sqrt(baseline)) + sign * h / 2.0
        if not 0.0 < angle < math.pi / 2:
            raise undetectable
        treatment = math.sin(angle) ** 2
    else:
        def gap(delta: float) -> float:
            treatment = baseline + sign * delta
            return _rate_power(baseline, treatment, n, alpha_each, alternative, ratio, method) - power

        upper = room * (1.0 - 1e-12)
        if gap(upper) < 0:
            raise undetectable
        if gap(room * 1e-12) >= 0:
            raise below_resolution(power, alpha_each, room * 1e-12)
        delta = bisect_root(gap, room * 1e-12, upper, xtol=1e-14, rtol=1e-12)
        treatment = baseline + sign * delta
    return RateMde(
        baseline=baseline,
        treatment_rate=treatment,
        mde_absolute=treatment - baseline,
        mde_relative=(treatment - baseline) / baseline,
        effect_size=cohens_h(treatment, baseline),
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
