"""Confidence intervals for the lift of a variant over control: absolute and relative.

Both take the two arms' means and squared standard errors (``mean``, ``variance_of_mean``), so they
serve rates and values alike. The relative lift :math:`\\theta = m_B / m_A - 1` gets Fieller's interval
when it is bounded and the delta method otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

from scipy import special

from analysis.errors import AnalysisInputError


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
    method: Literal["wald", "welch", "delta", "fieller", "undefined"]


def critical_value(alpha: float, df: float | None = None) -> float:
    """Two-sided critical value: the normal's, or Student's t with ``df`` degrees of freedom."""
    check_alpha(alpha)
    if df is None:
        return float(-special.ndtri(alpha / 2))
    return float(-special.stdtrit(df, alpha / 2))


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise AnalysisInputError(f"alpha: must be between 0 and 1 (exclusive), got {alpha!r}")


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
