"""Tests on rates and values against scipy / statsmodels / closed forms on fixed data."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.proportion import proportions_ztest

from analysis.errors import AnalysisInputError
from analysis.significance import (
    chi_square_test,
    compare_rates,
    fisher_exact_test,
    needs_exact_test,
    skewness_note,
    two_proportion_ztest,
    welch_test,
)
from analysis.stats import ProportionStats, SampleStats


def test_ztest_matches_statsmodels() -> None:
    a, b = ProportionStats(5000, 410), ProportionStats(4900, 468)
    # statsmodels proportions_ztest pools the variance under the null; order (b, a) gives b - a
    z_ref, p_ref = proportions_ztest([468, 410], [4900, 5000])
    r = two_proportion_ztest(a, b)
    assert r.statistic == pytest.approx(z_ref, abs=1e-9)
    assert r.p_value == pytest.approx(p_ref, abs=1e-9)


def test_chi_square_matches_scipy_contingency() -> None:
    arms = [ProportionStats(1000, 120), ProportionStats(1100, 150), ProportionStats(950, 98)]
    table = [[a.successes, a.failures] for a in arms]
    ref = sps.chi2_contingency(table, correction=False)
    r = chi_square_test(arms)
    assert r.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert r.df == ref.dof


def test_chi_square_of_two_arms_is_z_squared() -> None:
    a, b = ProportionStats(700, 60), ProportionStats(720, 81)
    assert chi_square_test([a, b]).statistic == pytest.approx(two_proportion_ztest(a, b).statistic ** 2)
    assert chi_square_test([a, b]).p_value == pytest.approx(two_proportion_ztest(a, b).p_value)


def _fisher_by_hypergeometric_sum(x_b: int, n_b: int, x_a: int, n_a: int) -> float:
    # Two-sided Fisher p-value: the sum of the probabilities of all tables with fixed margins that are no
    # more likely than the observed one (the definition, computed with exact integer binomials).
    total_x, total_n = x_a + x_b, n_a + n_b
    def prob(k: int) -> float:
        return comb(n_b, k) * comb(n_a, total_x - k) / comb(total_n, total_x)
    observed = prob(x_b)
    support = range(max(0, total_x - n_a), min(n_b, total_x) + 1)
    return sum(prob(k) for k in support if prob(k) <= observed * (1 + 1e-7))


def test_fisher_matches_the_hypergeometric_sum_and_a_published_value() -> None:
    r = fisher_exact_test(ProportionStats(30, 2), ProportionStats(25, 8))
    assert r.p_value == pytest.approx(_fisher_by_hypergeometric_sum(8, 25, 2, 30), abs=1e-9)
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: R fisher.test gives p-value = 0.4857
    tea = fisher_exact_test(ProportionStats(4, 1), ProportionStats(4, 3))
    assert tea.p_value == pytest.approx(0.4857142857, abs=1e-9)


def test_compare_rates_uses_fisher_only_for_small_counts() -> None:
    small = (ProportionStats(40, 1), ProportionStats(40, 6))
    large = (ProportionStats(4000, 100), ProportionStats(4000, 130))
    assert needs_exact_test(*small) and compare_rates(*small).method == "Fisher exact test"
    assert not needs_exact_test(*large) and compare_rates(*large).method == "two-proportion z-test"


def test_welch_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(7)
    xa, xb = rng.gamma(2.0, 3.0, 400), rng.gamma(2.2, 3.0, 300)
    ref = sps.ttest_ind(xb, xa, equal_var=False)
    r = welch_test(SampleStats.from_values(xa), SampleStats.from_values(xb))
    assert r.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert r.df == pytest.approx(ref.df, abs=1e-6)


def test_welch_without_spread_in_either_arm_is_exact() -> None:
    # every control value 0, every variant value 1: the difference is exact, t infinite, p = 0 ...
    control, variant = SampleStats.from_values(np.zeros(30)), SampleStats.from_values(np.ones(28))
    r = welch_test(control, variant)
    assert (r.statistic, r.p_value) == (np.inf, 0.0)
    assert welch_test(variant, control).statistic == -np.inf
    # ... the limit of scipy's test on the same data with the least spread: p below 1e-100
    low, high = np.zeros(30), np.ones(28)
    low[0], high[0] = 1e-3, 1 - 1e-3
    assert sps.ttest_ind(high, low, equal_var=False).pvalue < 1e-100
    # equal constants: no difference at all
    same = welch_test(SampleStats.from_values(np.full(10, 2.0)), SampleStats.from_values(np.full(12, 2.0)))
    assert (same.statistic, same.p_value) == (0.0, 1.0)


def test_skewness_note_follows_the_355_gamma_squared_rule() -> None:
    heavy = np.random.default_rng(8).lognormal(0, 2.0, 2000)
    note = skewness_note(SampleStats.from_values(heavy), "b")
    assert note is not None and "skewed" in note
    mild = np.random.default_rng(8).normal(10, 1, 2000)
    assert skewness_note(SampleStats.from_values(mild), "a") is None
    assert skewness_note(SampleStats(2000, 1.0, 5.0), "no cubes") is None


counts = st.integers(1, 400).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@given(counts, counts)
def test_p_values_in_unit_interval_and_flipping_flips_sign(a: tuple[int, int], b: tuple[int, int]) -> None:
    pa, pb = ProportionStats(*a), ProportionStats(*b)
    for test in (two_proportion_ztest, fisher_exact_test, compare_rates):
        forward, backward = test(pa, pb), test(pb, pa)
        assert 0.0 <= forward.p_value <= 1.0
        assert forward.p_value == pytest.approx(backward.p_value, abs=1e-12)
    z = two_proportion_ztest(pa, pb).statistic
    assert two_proportion_ztest(pb, pa).statistic == pytest.approx(-z, abs=1e-12)


samples = st.lists(st.floats(0, 100), min_size=3, max_size=30)


@given(samples, samples)
def test_welch_flips_with_the_direction(a: list[float], b: list[float]) -> None:
    sa, sb = SampleStats.from_values(a), SampleStats.from_values(b)
    forward, backward = welch_test(sa, sb), welch_test(sb, sa)
    assert 0.0 <= forward.p_value <= 1.0
    assert backward.statistic == pytest.approx(-forward.statistic, abs=1e-9)
    assert backward.p_value == pytest.approx(forward.p_value, abs=1e-9)


def test_false_positive_rate_of_aa_tests_is_alpha() -> None:
    # 2,000 A/A tests: the z-test and Welch's test each reject about 5% of them.
    rng = np.random.default_rng(2024)
    n = 3000
    xa, xb = rng.binomial(n, 0.08, 2000), rng.binomial(n, 0.08, 2000)
    rejected = [two_proportion_ztest(ProportionStats(n, int(a)), ProportionStats(n, int(b))).p_value < 0.05
                for a, b in zip(xa, xb, strict=True)]
    assert 0.035 <= np.mean(rejected) <= 0.065
    values = rng.exponential(2.0, (2, 2000, 200))
    sums, squares = values.sum(axis=2), (values**2).sum(axis=2)
    arms = [[SampleStats(200, sums[k, i], squares[k, i]) for i in range(2000)] for k in (0, 1)]
    welch = [welch_test(a, b).p_value < 0.05 for a, b in zip(*arms, strict=True)]
    assert 0.035 <= np.mean(welch) <= 0.065


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: two_proportion_ztest(ProportionStats(0, 0), ProportionStats(5, 1)), "control: n is 0"),
        (lambda: chi_square_test([ProportionStats(5, 1)]), "arms: need at least 2"),
        (lambda: welch_test(SampleStats(1, 1.0, 1.0), SampleStats(5, 1.0, 1.0)), "control: Welch"),
    ],
)
def test_bad_inputs(call, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        call()
