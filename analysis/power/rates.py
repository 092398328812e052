"""One solver for conversion rates (opens, clicks, purchases): the sample size, the minimum detectable
effect or the power, whichever is left unknown (:func:`solve_rate`, answering a :class:`RateAnswer`).

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
from dataclasses import dataclass
from typing import Literal

from analysis.power.inputs import (
    Alternative,
    Correction,
    PowerInputError,
    check_choice,
    check_nonzero,
    check_open_unit,
)
from analysis.power.normal import normal_cdf, normal_ppf, normal_sf
from analysis.power.solver import (
    Direction,
    QuestionSettings,
    TestAnswer,
    check_settings,
    check_size,
    solve_effect,
    z_alpha,
)

RateMethod = Literal["statsmodels", "unpooled"]


@dataclass(frozen=True, kw_only=True)
class RateAnswer(TestAnswer):
    """A rate test: the effect, the size and the power, one of them solved for.

    Attributes
    ----------
    baseline, treatment_rate : float
        Control rate and the treatment rate (given through ``mde``, or the smallest detectable one).
    mde_absolute, mde_relative : float
        The effect as a difference of rates and as a share of the baseline (signed).
    effect_size : float
        Cohen's h of the two rates (signed).
    convention : {"statsmodels", "unpooled"}
        Which formula solved it.
    Other attributes
        As in :class:`analysis.power.solver.TestAnswer`.
    """

    baseline: float
    treatment_rate: float
    mde_absolute: float
    mde_relative: float
    convention: RateMethod


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
    crit = z_alpha(alpha_each, alternative)
    power = normal_sf(crit - shift)
    if alternative == "two-sided":
        power += normal_cdf(-crit - shift)
    return power


def _formula(method: RateMethod, alternative: Alternative) -> str:
    if method == "statsmodels":
        return ("statsmodels NormalIndPower on Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))"
                + (" (both tails counted)" if alternative == "two-sided" else ""))
    return ("the classic unpooled-variance normal formula n0 = (z_alpha + z_beta)^2 "
            "(p0 q0 + p1 q1 / ratio) / (p1 - p0)^2")


def _rate_power(baseline: float, treatment_rate: float, n_control: float, settings: QuestionSettings,
                method: RateMethod) -> float:
    if method == "statsmodels":
        return normal_ind_power(abs(cohens_h(treatment_rate, baseline)), n_control, settings.alpha_each,
                                settings.ratio, settings.alternative)
    n_treatment = settings.ratio * n_control
    variance = baseline * (1 - baseline) / n_control + treatment_rate * (1 - treatment_rate) / n_treatment
    return normal_cdf(abs(treatment_rate - baseline) / math.sqrt(variance) - settings.z_alpha())


def _sample_size(baseline: float, treatment: float, settings: QuestionSettings, method: RateMethod) -> float:
    if method == "statsmodels":
        return settings.exact_size(cohens_h(treatment, baseline),
                                   lambda n: _rate_power(baseline, treatment, n, settings, method),
                                   minimum=1e-6)
    z_sum = settings.z_alpha() + normal_ppf(settings.power)
    variance = baseline * (1 - baseline) + treatment * (1 - treatment) / settings.ratio
    squared = (treatment - baseline) ** 2
    if squared == 0.0:  # the difference underflows: no finite sample detects it
        raise PowerInputError("mde is too small: the sample size would exceed 1e15 per arm.")
    return z_sum**2 * variance / squared


def _detectable_rate(baseline: float, n: float, settings: QuestionSettings, method: RateMethod,
                     direction: Direction) -> float:
    sign = 1.0 if direction == "increase" else -1.0
    too_small = PowerInputError(f"n_per_arm {int(n)} is too small: no {direction} of the rate within (0, 1) "
                                f"reaches power {settings.power:g}.")
    if method == "statsmodels":
        def h_gap(h: float) -> float:
            return normal_ind_power(h, n, settings.alpha_each, settings.ratio, settings.alternative) \
                - settings.power

        h = solve_effect(h_gap, 1e-12, math.pi, settings, too_small, xtol=1e-15, rtol=1e-13)
        angle = math.asin(math.sqrt(baseline)) + sign * h / 2.0
        if not 0.0 < angle < math.pi / 2:
            raise too_small
        return math.sin(angle) ** 2
    room = 1.0 - baseline if sign > 0 else baseline

    def gap(delta: float) -> float:
        return _rate_power(baseline, baseline + sign * delta, n, settings, method) - settings.power

    delta = solve_effect(gap, room * 1e-12, room * (1.0 - 1e-12), settings, too_small, xtol=1e-14, rtol=1e-12)
    return baseline + sign * delta


def solve_rate(
    baseline: float,
    *,
    mde: float | None = None,
    n_per_arm: float | None = None,
    power: float | None = 0.8,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    daily: int | None = None,
    traffic_share: float = 1.0,
    method: RateMethod = "statsmodels",
    correction: Correction = "bonferroni",
    direction: Direction = "increase",
) -> RateAnswer:
    """The sample size, minimum detectable effect or power of a test of a rate: leave one of ``mde``,
    ``n_per_arm`` and ``power`` as None and it is solved for.

    Parameters
    ----------
    baseline : float
        Control rate, in (0, 1).
    mde : float or None
        Minimum detectable effect: a difference of rates, or with ``relative=True`` a share of the
        baseline (``0.10`` is +10 %). Negative values plan for a decrease.
    n_per_arm : float or None
        Recipients in the control arm (treatments have ``ratio`` times it); whole, at least 2, when the
        effect is solved for.
    power : float or None, default 0.8
        Probability of detecting the effect, in (0, 1); pass None to solve for it.
    relative : bool, default False
        Read ``mde`` as relative to the baseline.
    alpha : float, default 0.05
        Family-wise significance level.
    alternative : {"two-sided", "one-sided"}
        One-sided tests in the direction of the effect.
    arms : int, default 2
        Number of arms, the control included; each treatment is compared with the control.
    ratio : float, default 1.0
        Size of each treatment arm relative to the control arm.
    daily : int, optional
        Emails sent per day; gives ``sizes.days`` when the size is solved for.
    traffic_share : float, default 1.0
        Share of the daily volume in the test.
    method : {"statsmodels", "unpooled"}
        Which formula (see the module notes).
    correction : {"bonferroni", "none"}
        How the per-comparison alpha is set when ``arms > 2``.
    direction : {"increase", "decrease"}
        The direction of the effect solved for (the sign of ``mde`` gives it otherwise).

    Returns
    -------
    RateAnswer
        With ``sizes`` (every arm, the total, the days) when ``n_per_arm`` was solved for.

    Examples
    --------
    >>> plan = solve_rate(0.03, mde=0.10, relative=True)
    >>> plan.n_per_arm, plan.sizes.total
    (53182, 106364)
    >>> round(solve_rate(0.03, n_per_arm=53182).mde_relative, 4)
    0.1
    >>> round(solve_rate(0.03, mde=0.10, relative=True, n_per_arm=53182, power=None).power, 4)
    0.8
    """
    settings = check_settings(mde, n_per_arm, power, alpha=alpha, alternative=alternative, arms=arms,
                              ratio=ratio, correction=correction, daily=daily, traffic_share=traffic_share,
                              direction=direction)
    method = check_choice("method", method, ("statsmodels", "unpooled"))  # type: ignore[assignment]
    sizes = None
    if settings.question == "mde":
        baseline = check_open_unit("baseline", baseline)
        n = check_size(n_per_arm, "mde", None)  # type: ignore[arg-type]
        treatment = _detectable_rate(baseline, n, settings, method, direction)
        n_answer: int | float = int(n)
    elif settings.question == "power":
        n_answer = check_size(n_per_arm, "power", None)  # type: ignore[arg-type]
        treatment = treatment_rate_for(baseline, mde, relative)  # type: ignore[arg-type]
        power = _rate_power(baseline, treatment, n_answer, settings, method)
    else:
        treatment = treatment_rate_for(baseline, mde, relative)  # type: ignore[arg-type]
        sizes = settings.sizes(_sample_size(baseline, treatment, settings, method))
        n_answer = sizes.per_arm
    return RateAnswer(
        baseline=float(baseline), treatment_rate=treatment, mde_absolute=treatment - baseline,
        mde_relative=(treatment - baseline) / baseline, effect_size=cohens_h(treatment, baseline),
        n_per_arm=n_answer, power=float(power), convention=method,  # type: ignore[arg-type]
        method=settings.describe(_formula(method, alternative)), sizes=sizes, **settings.common_fields(),
    )
