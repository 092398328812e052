"""Frequentist tests on summary statistics: two-proportion z, chi-square across arms, Fisher, Welch.

Every function takes summary statistics (:class:`~analysis.stats.ProportionStats` for rates,
:class:`~analysis.stats.SampleStats` for values) and returns a :class:`SignificanceResult`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from analysis.errors import AnalysisInputError
from analysis.stats import ProportionStats, SampleStats

#: Smallest expected cell count for which the z and chi-square approximations are trusted
#: (Cochran's rule); below it, :func:`compare_rates` uses Fisher's exact test.
MIN_EXPECTED_COUNT = 5.0


@dataclass(frozen=True)
class SignificanceResult:
    """A test statistic, its two-sided p-value, and what produced them.

    ``df`` is the degrees of freedom where the reference distribution has them (chi-square, Welch's
    t), otherwise None. For Fisher's exact test ``statistic`` is the sample odds ratio.
    """

    statistic: float
    p_value: float
    method: str
    df: float | None = None


def two_proportion_ztest(control: ProportionStats, variant: ProportionStats) -> SignificanceResult:
    """Two-sided two-proportion z-test with the pooled variance under the null.

    .. math:: z = \\frac{\\hat p_B - \\hat p_A}{\\sqrt{\\hat p (1-\\hat p)(1/n_A + 1/n_B)}},
              \\quad \\hat p = \\frac{x_A + x_B}{n_A + n_B}

    When both arms have no events (or only events) the difference is exactly 0: z = 0, p = 1.
    """
    _require_units(control, "control")
    _require_units(variant, "variant")
    pooled = (control.successes + variant.successes) / (control.n + variant.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / variant.n))
    if se == 0:
        return SignificanceResult(0.0, 1.0, "two-proportion z-test")
    z = (variant.mean - control.mean) / se
    return SignificanceResult(z, float(2 * special.ndtr(-abs(z))), "two-proportion z-test")


def chi_square_test(arms: Sequence[ProportionStats]) -> SignificanceResult:
    """Pearson chi-square test that all arms share one rate (a 2 x k table, no continuity correction).

    .. math:: X^2 = \\sum_{i,j} (O_{ij} - E_{ij})^2 / E_{ij}, \\quad df = k - 1
    """
    if len(arms) < 2:
        raise AnalysisInputError(f"arms: need at least 2 arms for a chi-square test, got {len(arms)}")
    for i, arm in enumerate(arms):
        _require_units(arm, f"arms[{i}]")
    n = np.array([a.n for a in arms], dtype=float)
    x = np.array([a.successes for a in arms], dtype=float)
    pooled = x.sum() / n.sum()
    df = len(arms) - 1
    if pooled in (0.0, 1.0):
        return SignificanceResult(0.0, 1.0, "chi-square test", float(df))
    expected_x = n * pooled
    expected_f = n * (1 - pooled)
    chi2 = float(np.sum((x - expected_x) ** 2 / expected_x + ((n - x) - expected_f) ** 2 / expected_f))
    return SignificanceResult(chi2, float(special.chdtrc(df, chi2)), "chi-square test", float(df))


def fisher_exact_test(control: ProportionStats, variant: ProportionStats) -> SignificanceResult:
    """Fisher's exact test of the 2 x 2 table (two-sided, by summing tables no more likely)."""
    _require_units(control, "control")
    _require_units(variant, "variant")
    table = [[variant.successes, variant.failures], [control.successes, control.failures]]
    result = stats.fisher_exact(table, alternative="two-sided")
    return SignificanceResult(float(result.statistic), float(result.pvalue), "Fisher exact test")


def needs_exact_test(control: ProportionStats, variant: ProportionStats) -> bool:
    """True when an expected cell of the 2 x 2 table is below :data:`MIN_EXPECTED_COUNT`."""
    total = control.n + variant.n
    if total == 0:
        return False
    pooled = (control.successes + variant.successes) / total
    smallest = min(control.n, variant.n) * min(pooled, 1 - pooled)
    return smallest < MIN_EXPECTED_COUNT


def compare_rates(control: ProportionStats, variant: ProportionStats) -> SignificanceResult:
    """The z-test, or Fisher's exact test when an expected count is small (:func:`needs_exact_test`)."""
    if needs_exact_test(control, variant):
        return fisher_exact_test(control, variant)
    return two_proportion_ztest(control, variant)


def welch_test(control: SampleStats, variant: SampleStats) -> SignificanceResult:
    """Welch's unequal-variance t-test of ``variant.mean - control.mean``.

    .. math:: t = \\frac{\\bar x_B - \\bar x_A}{\\sqrt{v_A + v_B}}, \\quad
              \\nu = \\frac{(v_A + v_B)^2}{v_A^2/(n_A-1) + v_B^2/(n_B-1)}, \\quad v = s^2/n

    When neither arm has any spread (every value equal within each arm) the means are exact: equal
    means give t = 0 and p = 1, different means t = +-inf and p = 0 (the limit of the test as both
    variances shrink to zero).
    """
    for name, arm in (("control", control), ("variant", variant)):
        if arm.n < 2:
            raise AnalysisInputError(f"{name}: Welch's t-test needs n >= 2 per arm, got n = {arm.n}")
    va, vb = control.variance_of_mean, variant.variance_of_mean
    if va + vb == 0:  # no spread in either arm: the means are known exactly, so t is 0 or infinite
        diff = variant.mean - control.mean
        if diff == 0:
            return SignificanceResult(0.0, 1.0, "Welch t-test", float(control.n + variant.n - 2))
        return SignificanceResult(math.copysign(math.inf, diff), 0.0, "Welch t-test",
                                  float(control.n + variant.n - 2))
    t = (variant.mean - control.mean) / math.sqrt(va + vb)
    df = welch_df(control, variant)
    return SignificanceResult(t, float(2 * special.stdtr(df, -abs(t))), "Welch t-test", df)


def welch_df(control: SampleStats, variant: SampleStats) -> float:
    """Welch-Satterthwaite degrees of freedom (see :func:`welch_test`)."""
    va, vb = control.variance_of_mean, variant.variance_of_mean
    denominator = va**2 / (control.n - 1) + vb**2 / (variant.n - 1)
    if denominator == 0:
        return float(control.n + variant.n - 2)
    return (va + vb) ** 2 / denominator


def skewness_note(arm: SampleStats, label: str) -> str | None:
    """A warning when the arm is too skewed for the normal approximation of its mean, else None.

    Uses the rule of thumb :math:`n > 355\\,\\gamma^2` for the mean to be close to normal (Kohavi, Tang
    and Xu, *Trustworthy Online Controlled Experiments*, 2020, ch. 17), where :math:`\\gamma` is the
    skewness. Needs ``sum_cubes``; without it nothing can be said and None is returned.
    """
    gamma = arm.skewness
    if gamma is None:
        return None
    needed = 355 * gamma**2
    if arm.n >= needed:
        return None
    return (
        f"{label}: values are skewed (skewness {gamma:.1f}); the normal approximation of the mean needs "
        f"about {math.ceil(needed):,} units and this arm has {arm.n:,}: treat the p-value and interval as "
        "rough (consider capping outliers)"
    )


def _require_units(arm: ProportionStats, field: str) -> None:
    if arm.n == 0:
        raise AnalysisInputError(f"{field}: n is 0, there is nothing to test")
