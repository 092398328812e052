r"""What the rate and the mean solvers share: the question, the settings, the arm sizes, the answer.

A test of a metric ties four quantities together: the effect (``mde``), the control-arm size
(``n_per_arm``), the power and alpha. As in statsmodels' ``solve_power``, alpha is always given and
exactly one of the other three is left ``None``; the solver answers that one and returns every
quantity in one answer type per metric (:class:`analysis.power.rates.RateAnswer`,
:class:`analysis.power.means.MeanAnswer`), whose common part is :class:`TestAnswer`. When the size is
the unknown, the answer also holds every arm's size, the total and the days (:class:`ArmSizes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from analysis.power.answer import Answer
from analysis.power.duration import solve_duration
from analysis.power.inputs import (
    Alternative,
    Correction,
    PowerInputError,
    arm_sizes,
    check_count,
    check_daily,
    check_n_per_arm,
    check_plan_options,
    check_power_above_alpha,
    describe_correction,
)
from analysis.power.normal import bisect_root, normal_isf, normal_ppf

#: The unknown a solver answers: the control-arm size, the minimum detectable effect, or the power.
Question = Literal["n_per_arm", "mde", "power"]
Direction = Literal["increase", "decrease"]


@dataclass(frozen=True)
class ArmSizes(Answer):
    """Every arm's size when the control-arm size was the unknown.

    Attributes
    ----------
    n_exact : float
        The solved control-arm size before rounding.
    per_arm : int
        Control-arm size, rounded up to whole recipients.
    per_arm_sizes : tuple of int, length arms
        The control, then each treatment (``ratio`` times the control, rounded up).
    total : int
        Sum of ``per_arm_sizes``.
    daily : int or None
        Emails sent per day, when given.
    traffic_share : float
        Share of the daily volume in the test.
    days : int or None
        Days to reach ``total`` at ``daily`` sends and ``traffic_share``; None without ``daily``.
    """

    n_exact: float
    per_arm: int
    per_arm_sizes: tuple[int, ...]
    total: int
    daily: int | None
    traffic_share: float
    days: int | None


@dataclass(frozen=True, kw_only=True)
class TestAnswer(Answer):
    """The fields every metric's answer holds.

    Attributes
    ----------
    effect_size : float
        The standardised effect (Cohen's h for rates, Cohen's d for means), signed.
    n_per_arm : int or float
        Control-arm size (treatments have ``ratio`` times it): the rounded-up solution when it was
        the unknown, whole when the effect was, as given when the power was.
    power : float
        Power of each treatment-versus-control comparison: the solution, or as requested.
    alpha, alpha_per_comparison : float
        Family-wise alpha and the alpha of each treatment-versus-control test.
    alternative, arms, ratio
        As given.
    convention : str
        Which formula solved it.
    method : str
        A sentence stating the formula, the rounding and the multiple-arm correction.
    sizes : ArmSizes or None
        Every arm's size, the total and the days, when the size was the unknown.
    """

    __test__ = False  # not a pytest class despite the name

    effect_size: float
    n_per_arm: int | float
    alpha: float
    alpha_per_comparison: float
    power: float
    alternative: Alternative
    arms: int
    ratio: float
    method: str
    sizes: ArmSizes | None = None


@dataclass(frozen=True)
class QuestionSettings:
    """The checked options of one question, and the unknown it asks for (``power`` is NaN when it is
    the unknown)."""

    question: Question
    alpha: float
    alpha_each: float
    power: float
    alternative: Alternative
    arms: int
    ratio: float
    correction: Correction
    daily: int | None
    traffic_share: float

    def common_fields(self) -> dict[str, object]:
        """The answer fields every metric fills from the settings alone."""
        return {"alpha": self.alpha, "alpha_per_comparison": self.alpha_each, "alternative": self.alternative,
                "arms": self.arms, "ratio": self.ratio}

    def describe(self, formula: str) -> str:
        """The ``method`` sentence: the formula, the alternative, the correction and the rounding."""
        correction = describe_correction(self.arms, self.correction, self.alpha, self.alpha_each)
        return f"{formula}, {self.alternative}; {correction}; sizes rounded up to whole recipients."

    def sizes(self, n_exact: float) -> ArmSizes:
        """Every arm's whole size from the solved control-arm size, the total and the days."""
        sizes = arm_sizes(n_exact, self.arms, self.ratio)
        total = sum(sizes)
        days = None if self.daily is None else solve_duration(total, self.daily, self.traffic_share)
        return ArmSizes(n_exact=n_exact, per_arm=sizes[0], per_arm_sizes=sizes, total=total, daily=self.daily,
                        traffic_share=self.traffic_share, days=days)

    def z_alpha(self) -> float:
        """The critical value :math:`z_{1-\\alpha'}` of each comparison (``alpha'`` halved when two-sided)."""
        return z_alpha(self.alpha_each, self.alternative)

    def exact_size(self, effect: float, power_at: Callable[[float], float], minimum: float) -> float:
        """The control-arm size above ``minimum`` at which ``power_at`` (the exact power against the size)
        reaches the requested power: the normal approximation for the standardised ``effect``
        (:func:`normal_guess`), refined on ``power_at`` (:func:`refine_sample_size`)."""
        guess = normal_guess(abs(effect), self.alpha_each, self.alternative, self.power, self.ratio)
        return refine_sample_size(power_at, self.power, guess, minimum=minimum)


def check_settings(
    mde: float | None,
    n_per_arm: float | None,
    power: float | None,
    *,
    alpha: float,
    alternative: Alternative,
    arms: int,
    ratio: float,
    correction: Correction,
    daily: int | None,
    traffic_share: float,
    direction: Direction,
) -> QuestionSettings:
    """Which quantity is unknown (exactly one of ``mde``, ``n_per_arm``, ``power`` is None) and the
    checked options; ``daily`` belongs to the size question, ``direction`` to the effect question."""
    unknown = [name for name, value in (("mde", mde), ("n_per_arm", n_per_arm), ("power", power))
               if value is None]
    if len(unknown) != 1:
        raise PowerInputError(
            "leave exactly one of mde, n_per_arm and power as None: it is the one solved for"
            + (f"; {' and '.join(unknown)} are missing." if unknown else
               "; to solve for the power, pass power=None."), field="")
    question: Question = unknown[0]  # type: ignore[assignment]
    alpha_each = check_plan_options(alpha, 0.5 if power is None else power, alternative, arms, ratio,
                                    correction)
    if power is not None:
        check_power_above_alpha(power, alpha_each)
    if daily is not None and question != "n_per_arm":
        raise PowerInputError("daily gives the days of a sample size: only when n_per_arm is the unknown.")
    check_daily(daily, traffic_share)
    if direction not in ("increase", "decrease"):
        raise PowerInputError(f"direction must be one of 'increase', 'decrease'; got {direction!r}.")
    return QuestionSettings(question=question, alpha=float(alpha), alpha_each=alpha_each,
                    power=math.nan if power is None else float(power), alternative=alternative,
                    arms=int(arms), ratio=float(ratio), correction=correction, daily=daily,
                    traffic_share=float(traffic_share))


def check_size(n_per_arm: float, question: Question, at_least: float | None) -> float:
    """The given control-arm size: whole and at least 2 when the effect is solved for, else a size
    above 0 (or ``at_least``)."""
    if question == "mde":
        return check_n_per_arm(check_count("n_per_arm", n_per_arm, 2), at_least=2)  # type: ignore[arg-type]
    return check_n_per_arm(n_per_arm, at_least=at_least)


def z_alpha(alpha_each: float, alternative: Alternative) -> float:
    """:math:`z_{1-\\alpha/2}` two-sided, :math:`z_{1-\\alpha}` one-sided."""
    return normal_isf(alpha_each / 2.0 if alternative == "two-sided" else alpha_each)


def normal_guess(effect: float, alpha_each: float, alternative: Alternative, power: float,
                 ratio: float) -> float:
    """The control-arm size at which a z-test of a standardised ``effect`` has ``power`` (far tail ignored).

    .. math:: n_0 = \\left(\\frac{z_{1-\\alpha'} + z_{1-\\beta}}{\\text{effect}}\\right)^2 (1 + 1/r)

    The starting point of :func:`refine_sample_size` (statsmodels' own ``solve_power`` warns and
    returns NaN where its root finder fails); ``inf`` for a zero effect.
    """
    z_sum = z_alpha(alpha_each, alternative) + normal_ppf(power)
    try:
        return z_sum**2 * (1.0 + 1.0 / ratio) / effect**2
    except (ZeroDivisionError, OverflowError):
        return math.inf


def refine_sample_size(
    power_at: Callable[[float], float], power: float, n_guess: float, minimum: float
) -> float:
    """Return ``n_guess`` when it gives ``power``; otherwise solve ``power_at(n) = power`` by bracketing.

    The guess (:func:`normal_guess`) is accepted when it reproduces the requested power to 1e-12;
    otherwise the exact power function is solved by bracketing to 1e-12. A power function that gives
    NaN is reported as bad input, not passed to the solver.
    """
    power_at = finite_power(power_at)
    valid = math.isfinite(n_guess) and n_guess > minimum
    if valid and abs(power_at(n_guess) - power) < 1e-12:
        return float(n_guess)
    start = n_guess if valid else 10.0 + minimum
    upper = start
    while not power_at(upper) >= power:
        upper *= 4.0
        if upper > 1e15:
            raise PowerInputError("mde is too small: the sample size would exceed 1e15 per arm.")
    lower = start
    while power_at(lower) >= power:
        lower = minimum + (lower - minimum) / 4.0
        if lower - minimum < 1e-9:
            return lower
    return bisect_root(lambda n: power_at(n) - power, lower, upper, xtol=1e-12, rtol=1e-13)


def solve_effect(power_gap: Callable[[float], float], low: float, high: float, settings: QuestionSettings,
                 too_small: PowerInputError, *, xtol: float, rtol: float) -> float:
    """The effect in ``[low, high]`` where ``power_gap`` (power minus the requested power) is zero.

    ``too_small`` is raised when even ``high`` falls short; an effect below ``low`` that already
    reaches the power is below what the solver resolves.
    """
    if power_gap(high) < 0:
        raise too_small
    if power_gap(low) >= 0:
        raise below_resolution(settings.power, settings.alpha_each, low)
    return bisect_root(power_gap, low, high, xtol=xtol, rtol=rtol)


def below_resolution(power: float, alpha_each: float, smallest: float) -> PowerInputError:
    """The error when even the smallest effect a solver tries (``smallest``) already reaches ``power``."""
    return PowerInputError(
        f"power {power:g} is reached by an effect below {smallest:.3g}, too close to the alpha of each "
        f"comparison ({alpha_each:.4g}) to solve for; ask for a higher power.", field="power",
    )


def finite_power(power_at: Callable[[float], float]) -> Callable[[float], float]:
    """``power_at`` that raises :class:`PowerInputError` instead of returning NaN to a solver."""

    def checked(n: float) -> float:
        value = power_at(n)
        if not math.isfinite(value):
            raise PowerInputError(
                f"alpha, effect and sample size are beyond the precision of the power function: it gave "
                f"no number at {n:.6g} per arm."
            )
        return value

    return checked
