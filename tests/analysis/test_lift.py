"""Lift intervals against statsmodels / scipy / their defining equations, and their coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep

from analysis.errors import AnalysisInputError
from analysis.lift import (
    absolute_lift,
    critical_value,
    rate_difference_score,
    rate_ratio_score,
    relative_lift,
    relative_lift_delta,
    relative_lift_fieller,
)
from analysis.significance import two_proportion_ztest, welch_df
from analysis.stats import ProportionStats, SampleStats

A, B = ProportionStats(4000, 320), ProportionStats(4100, 371)


def test_absolute_lift_of_rates_matches_statsmodels_wald() -> None:
    low, high = confint_proportions_2indep(371, 4100, 320, 4000, method="wald", compare="diff", alpha=0.05)
    r = absolute_lift(A, B, 0.05)
    assert r.estimate == pytest.approx(371 / 4100 - 320 / 4000, abs=1e-12)
    assert r.ci == pytest.approx((low, high), abs=1e-9)


def test_absolute_lift_of_values_matches_scipy_welch_interval() -> None:
    rng = np.random.default_rng(11)
    xa, xb = rng.normal(5, 2, 60), rng.normal(5.5, 3, 45)
    ref = sps.ttest_ind(xb, xa, equal_var=False).confidence_interval(0.95)
    sa, sb = SampleStats.from_values(xa), SampleStats.from_values(xb)
    r = absolute_lift(sa, sb, 0.05, df=welch_df(sa, sb))
    assert r.ci == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert r.method == "welch"


def test_fieller_endpoints_solve_the_defining_equation() -> None:
    # Fieller's set is {rho: (mB - rho mA)^2 <= c^2 (vB + rho^2 vA)}; at each endpoint equality holds.
    c = sps.norm.ppf(0.975)
    r = relative_lift_fieller(A, B, 0.05)
    assert r is not None and r.method == "fieller"
    for end in r.ci:
        rho = 1 + end
        lhs = (B.mean - rho * A.mean) ** 2
        rhs = c**2 * (B.variance_of_mean + rho**2 * A.variance_of_mean)
        assert lhs == pytest.approx(rhs, rel=1e-9)
    assert r.ci[0] < r.estimate < r.ci[1]


def test_delta_method_matches_a_numerical_gradient() -> None:
    # Var(g) ~ gA^2 vA + gB^2 vB with g = mB / mA, the gradient taken by central differences.
    h = 1e-7
    g_a = ((B.mean / (A.mean + h)) - (B.mean / (A.mean - h))) / (2 * h)
    g_b = (((B.mean + h) / A.mean) - ((B.mean - h) / A.mean)) / (2 * h)
    se = math.sqrt(g_a**2 * A.variance_of_mean + g_b**2 * B.variance_of_mean)
    r = relative_lift_delta(A, B, 0.05)
    assert r.ci[1] - r.estimate == pytest.approx(sps.norm.ppf(0.975) * se, rel=1e-6)


def test_relative_lift_falls_back_to_delta_when_fieller_is_unbounded() -> None:
    tiny = ProportionStats(10, 1)  # mA^2 = 0.01 < 1.96^2 * 0.009: Fieller's set is unbounded
    assert relative_lift_fieller(tiny, ProportionStats(10, 2)) is None
    assert relative_lift(tiny, ProportionStats(10, 2)).method == "delta"
    assert relative_lift(A, B).method == "fieller"


def test_relative_lift_is_undefined_when_control_mean_is_zero() -> None:
    r = relative_lift(ProportionStats(100, 0), ProportionStats(100, 3))
    assert r.method == "undefined" and math.isnan(r.estimate)


def test_critical_values_match_scipy() -> None:
    assert critical_value(0.05) == pytest.approx(sps.norm.ppf(0.975), abs=1e-12)
    assert critical_value(0.1, df=12.5) == pytest.approx(sps.t.ppf(0.95, 12.5), abs=1e-10)
    with pytest.raises(AnalysisInputError, match="alpha"):
        critical_value(1.5)


def test_intervals_cover_the_true_lift_95_percent_of_the_time() -> None:
    # 2,000 simulated experiments with a real +10% lift: each 95% interval covers the truth 93%-97%.
    rng = np.random.default_rng(99)
    n, pa, pb = 6000, 0.05, 0.055
    xa, xb = rng.binomial(n, pa, 2000), rng.binomial(n, pb, 2000)
    rel, absolute = [], []
    for a, b in zip(xa, xb, strict=True):
        ca, cb = ProportionStats(n, int(a)), ProportionStats(n, int(b))
        low, high = relative_lift(ca, cb).ci
        rel.append(low <= pb / pa - 1 <= high)
        low, high = absolute_lift(ca, cb).ci
        absolute.append(low <= pb - pa <= high)
    assert 0.93 <= np.mean(rel) <= 0.97
    assert 0.93 <= np.mean(absolute) <= 0.97
    values = rng.normal(10.0, 4.0, (2, 2000, 150)) * np.array([1.0, 1.05])[:, None, None]
    sums, squares = values.sum(axis=2), (values**2).sum(axis=2)
    covered = []
    for i in range(2000):
        sa, sb = SampleStats(150, sums[0, i], squares[0, i]), SampleStats(150, sums[1, i], squares[1, i])
        low, high = relative_lift(sa, sb).ci
        covered.append(low <= 0.05 <= high)
    assert 0.93 <= np.mean(covered) <= 0.97


@pytest.mark.parametrize(
    ("n", "sd", "draw"),
    [((20, 60), (1.0, 3.0), "normal"), ((60, 20), (1.0, 3.0), "normal"),
     ((400, 400), (1.0, 1.0), "lognormal")],
    ids=["small-n-high-sd", "large-n-high-sd", "skewed-revenue"],
)
def test_welch_absolute_interval_covers_the_true_difference_95_percent_of_the_time(n, sd, draw) -> None:
    # 2,000 seeded experiments per case; each 95% Welch interval (t with Welch-Satterthwaite df) of the
    # difference in means must cover the true difference in 93%-97% of them. Unequal sizes and spreads
    # are where a pooled-variance interval would miss; the third case is skewed (lognormal) revenue.
    rng = np.random.default_rng(sum(n) + int(10 * sd[1]) + len(draw))
    runs, covered = 2000, 0
    if draw == "normal":
        means = (10.0, 10.5)
        samples = [rng.normal(m, s, (runs, k)) for m, s, k in zip(means, sd, n, strict=True)]
        truth = means[1] - means[0]
    else:
        sigma = 1.0
        mus = (1.0, 1.1)
        samples = [rng.lognormal(mu, sigma, (runs, k)) for mu, k in zip(mus, n, strict=True)]
        truth = math.exp(mus[1] + sigma**2 / 2) - math.exp(mus[0] + sigma**2 / 2)
    sums = [x.sum(axis=1) for x in samples]
    squares = [(x**2).sum(axis=1) for x in samples]
    for i in range(runs):
        a = SampleStats(n[0], float(sums[0][i]), float(squares[0][i]))
        b = SampleStats(n[1], float(sums[1][i]), float(squares[1][i]))
        low, high = absolute_lift(a, b, 0.05, df=welch_df(a, b)).ci
        covered += low <= truth <= high
    assert 0.93 <= covered / runs <= 0.97


def _pair(ma: float, va: float, mb: float, vb: float):
    from types import SimpleNamespace

    return SimpleNamespace(mean=ma, variance_of_mean=va), SimpleNamespace(mean=mb, variance_of_mean=vb)


@pytest.mark.parametrize("covariance", [-2e-5, 0.0, 3e-5])
def test_fieller_with_covariance_solves_its_defining_inequality(covariance: float) -> None:
    # The interval's ends are the roots of (m_B - rho m_A)^2 = c^2 (v_B - 2 rho c_AB + rho^2 v_A),
    # found here by a root finder on the defining equation.
    from scipy import optimize

    control, variant = _pair(0.10, 4e-5, 0.12, 6e-5)
    c = critical_value(0.05)
    r = relative_lift_fieller(control, variant, 0.05, covariance=covariance)

    def gap(rho: float) -> float:
        return (0.12 - rho * 0.10) ** 2 - c**2 * (6e-5 - 2 * rho * covariance + rho**2 * 4e-5)

    low = optimize.brentq(gap, 0.0, 1.2, xtol=1e-15)
    high = optimize.brentq(gap, 1.2, 3.0, xtol=1e-15)
    assert r.ci == pytest.approx((low - 1, high - 1), rel=1e-9)


def test_covariance_enters_the_absolute_and_delta_intervals() -> None:
    control, variant = _pair(0.10, 4e-5, 0.12, 6e-5)
    cov = 1.5e-5
    c = critical_value(0.05)
    absolute = absolute_lift(control, variant, 0.05, covariance=cov)
    half = c * math.sqrt(4e-5 + 6e-5 - 2 * cov)
    assert absolute.ci[1] - absolute.estimate == pytest.approx(half, rel=1e-12)
    delta = relative_lift_delta(control, variant, 0.05, covariance=cov)
    variance = 6e-5 / 0.1**2 + 0.12**2 * 4e-5 / 0.1**4 - 2 * 0.12 * cov / 0.1**3
    assert delta.ci[1] - delta.estimate == pytest.approx(c * math.sqrt(variance), rel=1e-12)
    # without covariance the intervals are those of independent arms, bit for bit
    assert relative_lift(A, B, 0.05, covariance=0.0) == relative_lift(A, B, 0.05)


@pytest.mark.parametrize("scale", [1.0, 1e80, 1e-80])
def test_the_delta_interval_of_large_or_small_means_is_that_of_the_rescaled_means(scale: float) -> None:
    # the relative lift and its interval do not change when both means scale by s and their variances
    # by s^2; the written-out formula (v_B / m_A^2 + m_B^2 v_A / m_A^4 - ...) overflowed at m_A = 1e80
    control, variant = _pair(0.10 * scale, 4e-5 * scale**2, 0.12 * scale, 6e-5 * scale**2)
    delta = relative_lift_delta(control, variant, 0.05, covariance=1.5e-5 * scale**2)
    variance = 6e-5 / 0.1**2 + 0.12**2 * 4e-5 / 0.1**4 - 2 * 0.12 * 1.5e-5 / 0.1**3
    assert delta.estimate == pytest.approx(0.2, rel=1e-12)
    half = critical_value(0.05) * math.sqrt(variance)
    assert delta.ci[1] - delta.estimate == pytest.approx(half, rel=1e-12)


# ------------------------------------------------------------------------- score intervals of rates

def _score_z(control: ProportionStats, variant: ProportionStats, compare: str, value: float) -> float:
    """The score statistic of p_B - p_A = value (or p_B / p_A = value), its restricted maximum-likelihood
    rates found by a bounded numerical maximisation of the binomial log-likelihood (not the closed forms)."""
    from scipy import optimize

    def loglik(x: int, n: int, p: float) -> float:
        return (x * math.log(p) if x else 0.0) + ((n - x) * math.log(1 - p) if n - x else 0.0)

    def tied(pa: float) -> float:
        return pa + value if compare == "diff" else value * pa

    low, high = (max(0.0, -value), min(1.0, 1.0 - value)) if compare == "diff" else (0.0, min(1.0, 1 / value))
    def minus_loglik(pa: float) -> float:
        return -loglik(control.successes, control.n, pa) - loglik(variant.successes, variant.n, tied(pa))

    best = optimize.minimize_scalar(
        minus_loglik, bounds=(low + 1e-13, high - 1e-13), method="bounded", options={"xatol": 1e-13},
    )
    pa = best.x
    pb = tied(pa)
    scale = 1.0 if compare == "diff" else value
    gap = variant.mean - control.mean - value if compare == "diff" else variant.mean - value * control.mean
    return gap / math.sqrt(pb * (1 - pb) / variant.n + scale**2 * pa * (1 - pa) / control.n)


def test_score_intervals_match_published_values() -> None:
    # Fagerland, Lydersen and Laake (2017), Statistical Analysis of Contingency Tables, ch. 4: the
    # epinephrine trial of Perondi et al. (2004), 7/34 against 1/34. Mee's score interval of the
    # difference: 0.0284 to 0.3439; Koopman's score interval of the ratio: 1.2209 to 42.5757
    # (the same values in the R package contingencytables, Mee_asymptotic_score_CI_2x2 and
    # Koopman_asymptotic_score_CI_2x2).
    control, variant = ProportionStats(34, 1), ProportionStats(34, 7)
    difference = rate_difference_score(control, variant)
    assert difference.ci == pytest.approx((0.0284, 0.3439), abs=5e-5) and difference.method == "score"
    ratio = rate_ratio_score(control, variant)
    assert ratio.estimate == pytest.approx(6.0, abs=1e-12)
    assert (1 + ratio.ci[0], 1 + ratio.ci[1]) == pytest.approx((1.2209, 42.5757), abs=5e-5)


# (control n, x, variant n, x): a variant with no events, a few events, equal tiny counts, a 2 x 2 table
# with a full arm
SMALL = [(1000, 2, 1000, 0), (1000, 1, 1000, 5), (20, 1, 20, 1), (3, 1, 2, 2)]


@pytest.mark.parametrize(("na", "xa", "nb", "xb"), SMALL)
def test_rate_ratio_score_matches_statsmodels(na: int, xa: int, nb: int, xb: int) -> None:
    # statsmodels' score interval of the ratio without the Miettinen-Nurminen factor N/(N-1) (with it,
    # the default, 2/1000 against 0/1000 gives [0, 1.9192] instead of [0, 1.9182]). statsmodels does not
    # solve the full-arm table (it returns the point estimate as the lower end): there the ends are
    # checked against the defining equation only.
    r = rate_ratio_score(ProportionStats(na, xa), ProportionStats(nb, xb))
    assert r.ci[0] >= -1 and r.ci[0] <= r.estimate <= r.ci[1] < math.inf
    if xb < nb:
        low, high = confint_proportions_2indep(xb, nb, xa, na, compare="ratio", method="score",
                                               correction=False)
        assert r.ci == pytest.approx((low - 1, high - 1), abs=1e-7)
    c = critical_value(0.05)
    ends = [(end, sign) for end, sign in zip(r.ci, (c, -c), strict=True) if end > -1]
    for end, sign in ends:
        assert _score_z(ProportionStats(na, xa), ProportionStats(nb, xb), "ratio", 1 + end) == \
            pytest.approx(sign, abs=1e-5)
    if xb == 0:
        assert r.ci[0] == -1.0  # a variant without events: the lift reaches -100%, and only then


@pytest.mark.parametrize(("na", "xa", "nb", "xb"), SMALL)
def test_rate_difference_score_solves_its_defining_equation(na: int, xa: int, nb: int, xb: int) -> None:
    # statsmodels' score interval of the difference fails on these tables (and its ends miss the score
    # equation on unequal arms), so each end is checked against the equation itself: z(end) = +-c with the
    # restricted rates maximised numerically. Each of these differences has a Fisher p above 0.05 and
    # its interval holds 0 (the Wald interval of 3/1 vs 2/2 was [0.133, 1.200]).
    control, variant = ProportionStats(na, xa), ProportionStats(nb, xb)
    r = rate_difference_score(control, variant)
    assert -1 <= r.ci[0] < 0 < r.ci[1] <= 1
    c = critical_value(0.05)
    for end, sign in zip(r.ci, (c, -c), strict=True):
        assert _score_z(control, variant, "diff", end) == pytest.approx(sign, abs=1e-5)


def test_score_intervals_exclude_no_difference_exactly_when_the_z_test_rejects() -> None:
    # At p_B - p_A = 0 and p_B / p_A = 1 the score statistic is the pooled two-proportion z, so on every
    # table the intervals and the z-test agree; both stay inside the parameter space.
    c = critical_value(0.05)
    for na, nb in ((5, 7), (12, 12), (30, 9)):
        for xa in range(na + 1):
            for xb in range(nb + 1):
                control, variant = ProportionStats(na, xa), ProportionStats(nb, xb)
                rejects = abs(two_proportion_ztest(control, variant).statistic) > c
                low, high = rate_difference_score(control, variant).ci
                assert -1 <= low <= variant.mean - control.mean <= high <= 1
                assert (low > 0 or high < 0) == rejects, (na, xa, nb, xb)
                if xa:
                    low, high = rate_ratio_score(control, variant).ci
                    assert -1 <= low and (low > 0 or high < 0) == rejects, (na, xa, nb, xb)


def test_rate_ratio_score_is_undefined_without_control_events() -> None:
    r = rate_ratio_score(ProportionStats(500, 0), ProportionStats(500, 4))
    assert r.method == "undefined" and math.isnan(r.estimate) and all(math.isnan(e) for e in r.ci)


def test_score_intervals_are_essentially_wald_and_fieller_in_large_samples() -> None:
    wald, score = absolute_lift(A, B).ci, rate_difference_score(A, B).ci
    assert score == pytest.approx(wald, abs=0.005 * (wald[1] - wald[0]))
    fieller, score = relative_lift(A, B).ci, rate_ratio_score(A, B).ci
    assert score == pytest.approx(fieller, abs=0.01 * (fieller[1] - fieller[0]))


@pytest.mark.parametrize(("pa", "pb"), [(0.01, 0.02), (0.02, 0.03)])
def test_score_intervals_cover_at_small_n_and_low_rates(pa: float, pb: float) -> None:
    # 20,000 seeded experiments of 200 recipients per arm at 1%-3% rates (two events per arm expected
    # at 1%): each 95% score interval must cover the true difference, and the true ratio, in 93%-97% of
    # them. The ratio is undefined when the control has no events (13% of experiments at 1%): its
    # coverage is over the others. The exact coverage (summing binomial probabilities over all tables)
    # is 94.2% / 96.2% at (1%, 2%) and 94.6% / 96.0% at (2%, 3%).
    rng = np.random.default_rng(2024)
    n, runs = 200, 20_000
    tables = np.stack([rng.binomial(n, pa, runs), rng.binomial(n, pb, runs)], axis=1)
    pairs, counts = np.unique(tables, axis=0, return_counts=True)
    diff_covered = ratio_covered = ratio_runs = 0
    for (xa, xb), k in zip(pairs, counts, strict=True):
        control, variant = ProportionStats(n, int(xa)), ProportionStats(n, int(xb))
        low, high = rate_difference_score(control, variant).ci
        diff_covered += k * (low <= pb - pa <= high)
        if xa:
            low, high = rate_ratio_score(control, variant).ci
            ratio_covered += k * (low <= pb / pa - 1 <= high)
            ratio_runs += k
    assert 0.93 <= diff_covered / runs <= 0.97
    assert 0.93 <= ratio_covered / ratio_runs <= 0.97


@pytest.mark.parametrize(("rate", "low", "high"),
                         [(0.01, 0.02, 0.06), (0.03, 0.03, 0.07), (0.10, 0.03, 0.07)])
def test_score_intervals_of_aa_tests_exclude_no_difference_about_alpha_of_the_time(rate, low, high) -> None:
    # A/A: 20,000 seeded experiments of 200 recipients per arm at the same rate; a 95% interval that
    # excludes 0 is a false positive. Measured: difference 4.0% / 4.9% / 4.8%, ratio 2.6% / 4.7% / 4.8%
    # (at 1%, two events per arm expected, the intervals are conservative; the ratio over experiments
    # whose control has events).
    rng = np.random.default_rng(2025)
    n, runs = 200, 20_000
    tables = np.stack([rng.binomial(n, rate, runs), rng.binomial(n, rate, runs)], axis=1)
    pairs, counts = np.unique(tables, axis=0, return_counts=True)
    diff_false = ratio_false = ratio_runs = 0
    for (xa, xb), k in zip(pairs, counts, strict=True):
        control, variant = ProportionStats(n, int(xa)), ProportionStats(n, int(xb))
        lo, hi = rate_difference_score(control, variant).ci
        diff_false += k * (not lo <= 0 <= hi)
        if xa:
            lo, hi = rate_ratio_score(control, variant).ci
            ratio_false += k * (not lo <= 0 <= hi)
            ratio_runs += k
    assert low <= diff_false / runs <= high
    assert ratio_false / ratio_runs <= high
