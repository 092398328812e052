"""Confidence intervals for the lift of a variant over control: absolute and relative.

:func:`absolute_lift` and :func:`relative_lift` take the two arms' means and squared standard errors
(``mean``, ``variance_of_mean``), so they serve any estimate, values in particular. The relative lift
:math:`\\theta = m_B / m_A - 1` gets Fieller's interval when it is bounded and the delta method otherwise.

Rates get score intervals instead (:func:`rate_difference_score`, :func:`rate_ratio_score`): they invert
the pooled two-proportion z-test, so they stay inside the parameter space (a difference in [-1, 1], a
rate ratio >= 0), keep their width when an arm has no events, and exclude "no difference" exactly when
that z-test rejects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from scipy import optimize, special

from analysis.errors import AnalysisInputError
from analysis.stats import ProportionStats


class MeanEstimate(Protocol):
    """Anything with a mean and its squared standard error (SampleStats, ProportionStats)."""

    @property
    def mean(self) -> float: ...

    @property
    def variance_of_mean(self) -> float: ...


@dataclass(frozen=True)
class LiftInterval:
    """A lift estimate and its two-sided interval; NaN entries when it is undefined (control mean 0)."""

    estimate: float
    ci: tuple[float, float]
    method: Literal["wald", "welch", "delta", "fieller", "score", "undefined"]


def critical_value(alpha: float, df: float | None = None) -> float:
    """Two-sided critical value: the normal's, or Student's t with ``df`` degrees of freedom."""
    check_alpha(alpha)
    if df is None:
        return float(-special.ndtri(alpha / 2))
    return float(-special.stdtrit(df, alpha / 2))


#: The smallest significance level analysed: below about 1e-16, ``1 - alpha`` rounds to 1 (no interval
#: exists), and below about 1e-13 the tails of the intervals and posteriors overflow.
MIN_ALPHA = 1e-12


def check_alpha(alpha: float) -> None:
    """Refuse a significance level outside ``[MIN_ALPHA, 1)`` (:data:`MIN_ALPHA`)."""
    if not MIN_ALPHA <= alpha < 1:
        raise AnalysisInputError(f"alpha: must be at least {MIN_ALPHA:g} and below 1, got {alpha!r}")


def absolute_lift(
    control: MeanEstimate, variant: MeanEstimate, alpha: float = 0.05, df: float | None = None,
    covariance: float = 0.0,
) -> LiftInterval:
    """Difference ``variant.mean - control.mean`` with the unpooled (Wald / Welch) interval.

    .. math:: (m_B - m_A) \\pm c \\sqrt{v_A + v_B - 2 c_{AB}}

    ``c`` is the normal critical value, or Student's t with ``df`` (Welch) when given; ``covariance``
    is :math:`c_{AB}`, the covariance of the two means (0 for independent arms).
    """
    c = critical_value(alpha, df)
    diff = variant.mean - control.mean
    half = c * math.sqrt(max(control.variance_of_mean + variant.variance_of_mean - 2 * covariance, 0.0))
    return LiftInterval(diff, (diff - half, diff + half), "wald" if df is None else "welch")


def relative_lift_delta(
    control: MeanEstimate, variant: MeanEstimate, alpha: float = 0.05, covariance: float = 0.0
) -> LiftInterval:
    """Relative lift with the delta-method interval.

    .. math:: \\mathrm{Var}(m_B/m_A) \\approx \\frac{v_B}{m_A^2} + \\frac{m_B^2 v_A}{m_A^4}
              - \\frac{2 m_B c_{AB}}{m_A^3} = \\frac{v_B + \\rho^2 v_A - 2 \\rho c_{AB}}{m_A^2},
              \\quad \\rho = m_B / m_A

    ``covariance`` is :math:`c_{AB}` (0 for independent arms). The right-hand form is computed: it has no
    fourth power of :math:`m_A`, which would overflow (or underflow) far sooner.
    """
    c = critical_value(alpha)
    ma, mb = control.mean, variant.mean
    if ma * ma == 0:  # zero, or so small that the variance formula underflows
        return LiftInterval(math.nan, (math.nan, math.nan), "undefined")
    ratio = mb / ma
    lift = ratio - 1
    variance = (variant.variance_of_mean + ratio * ratio * control.variance_of_mean
                - 2 * ratio * covariance) / (ma * ma)
    half = c * math.sqrt(max(variance, 0.0))
    return LiftInterval(lift, (lift - half, lift + half), "delta")


def relative_lift_fieller(
    control: MeanEstimate, variant: MeanEstimate, alpha: float = 0.05, covariance: float = 0.0
) -> LiftInterval | None:
    """Relative lift with Fieller's interval, or None when that interval is unbounded.

    The interval for :math:`\\rho = \\mu_B/\\mu_A` is the set of :math:`\\rho` with
    :math:`(m_B - \\rho m_A)^2 \\le c^2 (v_B - 2 \\rho c_{AB} + \\rho^2 v_A)`; it is a bounded interval
    exactly when :math:`m_A^2 > c^2 v_A` (the control mean is itself significantly away from zero).
    ``covariance`` is :math:`c_{AB}` (0 for independent arms). Fieller (1954), *J. R. Stat. Soc. B*
    16:175-185.
    """
    c = critical_value(alpha)
    ma, mb = control.mean, variant.mean
    va, vb = control.variance_of_mean, variant.variance_of_mean
    a = ma**2 - c**2 * va
    if ma == 0 or a <= 0:
        return None
    b = ma * mb - c**2 * covariance
    discriminant = ma**2 * vb + mb**2 * va - c**2 * va * vb - 2 * ma * mb * covariance + c**2 * covariance**2
    root = c * math.sqrt(max(discriminant, 0.0))
    low, high = (b - root) / a - 1, (b + root) / a - 1
    return LiftInterval(mb / ma - 1, (low, high), "fieller")


def relative_lift(
    control: MeanEstimate, variant: MeanEstimate, alpha: float = 0.05, covariance: float = 0.0
) -> LiftInterval:
    """Fieller's interval when it is bounded, else the delta method (undefined when control mean is 0).

    ``covariance`` is the covariance of the two means (0 for independent arms).
    """
    fieller = relative_lift_fieller(control, variant, alpha, covariance)
    return fieller if fieller is not None else relative_lift_delta(control, variant, alpha, covariance)


def rate_difference_score(
    control: ProportionStats, variant: ProportionStats, alpha: float = 0.05
) -> LiftInterval:
    """Difference of two rates ``p_B - p_A`` with the score interval (Mee, 1984).

    The set of :math:`\\delta` that the score test of :math:`p_B - p_A = \\delta` does not reject:

    .. math:: \\frac{(\\hat p_B - \\hat p_A - \\delta)^2}
              {\\tilde p_B (1 - \\tilde p_B)/n_B + \\tilde p_A (1 - \\tilde p_A)/n_A} \\le c^2

    with :math:`\\tilde p` the maximum-likelihood rates under :math:`p_B = p_A + \\delta` (closed form,
    Farrington and Manning, 1990, *Stat. Med.* 9:1447-1454). At :math:`\\delta = 0` the statistic is the
    pooled z-test's, so the interval excludes 0 exactly when that test rejects at ``alpha``. It lies in
    [-1, 1] and keeps its width when an arm has no events. Miettinen and Nurminen's version multiplies
    the variance by N/(N - 1); this one does not, to agree with the z-test.
    """
    c = critical_value(alpha)
    estimate = variant.mean - control.mean

    def z(delta: float) -> float:
        pa, pb = _restricted_rates_difference(control, variant, delta)
        return _score_z(variant.mean - control.mean - delta,
                        pb * (1 - pb) / variant.n + pa * (1 - pa) / control.n)

    low = -1.0 if estimate == -1 else optimize.brentq(lambda d: z(d) - c, -1.0, estimate, xtol=1e-14)
    high = 1.0 if estimate == 1 else optimize.brentq(lambda d: z(d) + c, estimate, 1.0, xtol=1e-14)
    return LiftInterval(estimate, (low, high), "score")


def rate_ratio_score(control: ProportionStats, variant: ProportionStats, alpha: float = 0.05) -> LiftInterval:
    """Relative lift of two rates ``p_B / p_A - 1`` with the score interval of the ratio (Koopman, 1984).

    The set of :math:`\\phi = p_B / p_A` that the score test of that ratio does not reject, minus 1:

    .. math:: \\frac{(\\hat p_B - \\phi \\hat p_A)^2}
              {\\tilde p_B (1 - \\tilde p_B)/n_B + \\phi^2 \\tilde p_A (1 - \\tilde p_A)/n_A} \\le c^2

    with :math:`\\tilde p` the maximum-likelihood rates under :math:`p_B = \\phi p_A` (a quadratic's
    root, Miettinen and Nurminen, 1985, *Stat. Med.* 4:213-226). At :math:`\\phi = 1` the statistic is
    the pooled z-test's. The lift is never below -100% and its interval reaches -100% only when the
    variant has no events; undefined (NaN) when the control has none.
    """
    c = critical_value(alpha)
    if control.successes == 0:
        return LiftInterval(math.nan, (math.nan, math.nan), "undefined")
    ratio = variant.mean / control.mean

    def z(log_phi: float) -> float:
        phi = math.exp(log_phi)
        pa = _restricted_rate_ratio(control, variant, phi)
        pb = phi * pa
        return _score_z(variant.mean - phi * control.mean,
                        pb * (1 - pb) / variant.n + phi**2 * pa * (1 - pa) / control.n)

    low = 0.0 if variant.successes == 0 else math.exp(_root_beside(lambda t: z(t) - c, math.log(ratio), -1))
    high = math.exp(_root_beside(lambda t: z(t) + c, math.log(max(ratio, 1e-300)), +1))
    return LiftInterval(ratio - 1, (low - 1, high - 1), "score")


def _score_z(numerator: float, variance: float) -> float:
    """A score statistic, capped at +-1e300 so that root finders see finite values (0/0 is 0)."""
    if variance <= 0:
        return 0.0 if numerator == 0 else math.copysign(1e300, numerator)
    return max(min(numerator / math.sqrt(variance), 1e300), -1e300)


def _root_beside(f: Callable[[float], float], start: float, step: float) -> float:
    """The root of ``f`` found by stepping from ``start`` in the direction of ``step`` (doubling the step)
    until the sign of ``f`` changes, then Brent's method between the last two points."""
    inner = start
    outer = start + step
    while f(outer) * f(inner) > 0:
        inner, step = outer, step * 2
        outer = inner + step
    a, b = sorted((inner, outer))
    return optimize.brentq(f, a, b, xtol=1e-13)


def _restricted_rates_difference(
    control: ProportionStats, variant: ProportionStats, delta: float
) -> tuple[float, float]:
    """Maximum-likelihood rates ``(p_A, p_B)`` under :math:`p_B - p_A = \\delta`, the root of a cubic in
    its trigonometric form (Farrington and Manning, 1990; Miettinen and Nurminen, 1985)."""
    theta = control.n / variant.n
    p1, p2 = variant.mean, control.mean
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta**2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (27 * a**3) - b * c / (6 * a**2) + d / (2 * a)
    u = math.copysign(math.sqrt(max(b**2 / (9 * a**2) - c / (3 * a), 0.0)), v)
    cosine = 0.0 if u == 0 else max(-1.0, min(1.0, v / u**3))
    pb = 2 * u * math.cos((math.pi + math.acos(cosine)) / 3) - b / (3 * a)
    pb = min(max(pb, max(delta, 0.0)), min(1.0, 1.0 + delta))  # inside the feasible range
    return pb - delta, pb


def _restricted_rate_ratio(control: ProportionStats, variant: ProportionStats, phi: float) -> float:
    """Maximum-likelihood control rate :math:`p_A` under :math:`p_B = \\phi p_A`: the smaller root of
    :math:`N\\phi\\,p^2 - (n_B\\phi + x_B + n_A + x_A\\phi)\\,p + x_B + x_A = 0`."""
    a = (control.n + variant.n) * phi
    b = -(variant.n * phi + variant.successes + control.n + control.successes * phi)
    c = variant.successes + control.successes
    root = math.sqrt(max(b * b - 4 * a * c, 0.0))
    pa = 2 * c / (-b + root)  # (-b - root) / (2a), written without cancellation
    return min(pa, 1.0, 1.0 / phi)
