"""Planning functions at the edges: huge sizes, tiny effects, solvers that fail. A clear sentence or a
correct number, never NaN, a stray warning or another exception."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.power import (
    PowerInputError,
    plan_bandit,
    plan_test_then_send,
    power_curve,
    sequential_inflation,
    solve_mean,
    solve_rate,
)
from analysis.stats import SampleStats


def t_power_by_integration(d: float, n: float, alpha: float) -> float:
    """Two-sided pooled t-test power with n per arm, integrated over the chi-square of the variance.

    T = (Z + delta) / sqrt(V / df) with V ~ chi2(df): P(|T| > c) = E_V[Phi(delta - c s) + Phi(-delta - c s)],
    s = sqrt(V / df). Independent of scipy's noncentral t.
    """
    df, delta = 2 * n - 2, d * math.sqrt(n / 2)
    c = stats.t.isf(alpha / 2, df)
    low, high = stats.chi2.ppf([1e-13, 1 - 1e-13], df)

    def integrand(v: float) -> float:
        s = math.sqrt(v / df)
        return (stats.norm.cdf(delta - c * s) + stats.norm.cdf(-delta - c * s)) * stats.chi2.pdf(v, df)

    return integrate.quad(integrand, low, high, points=[df], limit=400, epsabs=1e-13)[0]


@pytest.mark.parametrize(("d", "n", "alpha"),
                         [(0.05, 20_000, 1e-6), (0.05, 20_000, 1e-4), (0.05, 26_000, 1e-8)])
def test_t_power_where_statsmodels_gives_nan(d, n, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha))  # the case covered
    assert solve_mean(1.0, mde=d, n_per_arm=n, power=None,
            alpha=alpha).power == pytest.approx(t_power_by_integration(d, n, alpha),
                                                                     abs=1e-9)


def test_mde_where_scipy_fails_at_few_degrees_of_freedom():
    # 3 per arm, alpha 1e-6, power 0.99: the power is reached at 73.6 sd (by the integral above)
    found = solve_mean(1.0, n_per_arm=3, power=0.99, alpha=1e-6)
    assert found.effect_size == pytest.approx(73.618383, rel=1e-6)
    assert t_power_by_integration(found.effect_size, 3, 1e-6) == pytest.approx(0.99, abs=1e-9)


def test_sample_size_and_mde_at_a_small_alpha_round_trip():
    plan = solve_mean(1.0, mde=0.05, alpha=1e-6)
    assert solve_mean(1.0, mde=0.05, n_per_arm=plan.sizes.n_exact, power=None,
            alpha=1e-6).power == pytest.approx(0.8, abs=1e-7)
    assert solve_mean(1.0, n_per_arm=20_000, alpha=1e-6).effect_size == pytest.approx(
        solve_mean(1.0, n_per_arm=20_000, alpha=1e-6, method="normal").effect_size, rel=1e-3)


def test_a_failed_statsmodels_solver_neither_warns_nor_leaks():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PowerInputError, match="^mde is too small: the sample size would exceed 1e15"):
            solve_rate(0.03, mde=1e-12)
        with pytest.raises(PowerInputError, match="^mde 1e-200 is too small to move the baseline"):
            solve_rate(0.5, mde=1e-200)  # the rate stays 0.5 (statsmodels would warn)
        plan = solve_rate(0.03, mde=0.01, alpha=1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = proportion_effectsize(0.04, 0.03)
        # statsmodels' own solver fails here (NaN with a ConvergenceWarning); the refined size is right
        assert math.isnan(NormalIndPower().solve_power(h, alpha=1e-300, power=0.8))
    assert NormalIndPower().power(h, nobs1=plan.sizes.n_exact, alpha=1e-300) == pytest.approx(0.8)


BAD = [
    (solve_rate, (0.03,), {"mde": 0.01, "n_per_arm": 10**18, "power": None},
            "n_per_arm must be at most 1e15; got 1000000000000000000."),
    (solve_rate, (0.03,), {"n_per_arm": 10**30}, f"n_per_arm must be at most 1e15; got {10**30}."),
    (solve_mean, (1.0,), {"mde": 0.1, "n_per_arm": 1e300, "power": None},
            "n_per_arm must be at most 1e15; got 1e+300."),
    (solve_mean, (1.0,), {"n_per_arm": 10**18}, "n_per_arm must be at most 1e15; got 1000000000000000000."),
    (solve_rate, (0.03,), {"n_per_arm": 1000, "power": 0.01},
     "power must be greater than the alpha of each comparison (0.05), which a test reaches with no effect "
     "at all; got 0.01."),
    (solve_mean, (1.0,), {"mde": 0.1, "power": 0.02, "arms": 3},
     "power must be greater than the alpha of each comparison (0.025), which a test reaches with no effect "
     "at all; got 0.02."),
    (solve_rate, (0.03,), {"mde": 0.01, "arms": 1001}, "arms must be at most 1,000; got 1001."),
    (solve_rate, (0.5,), {"mde": 1e-200, "method": "unpooled"},
     "mde 1e-200 is too small to move the baseline in floating point: a zero effect cannot be detected."),
    (solve_rate, (0.5,), {"mde": 1e-12, "method": "unpooled"},
     "mde is too small: the sample size would exceed 1e15 per arm."),
    (solve_rate, (1e-300,), {"n_per_arm": 2, "power": 0.0500001, "method": "unpooled",
            "alternative": "one-sided"},
     "power 0.0500001 is reached by an effect below 1e-12, too close to the alpha of each comparison (0.05) "
     "to solve for; ask for a higher power."),
    (solve_mean, (1e308,), {"mde": 1e-308},
     "mde is too small next to sd: mde / sd is 0 in floating point (1e-308 / 1e+308)."),
    (solve_mean, (1e-300,), {"mde": 1e300, "n_per_arm": 100, "power": None},
     "mde is too large next to sd: mde / sd overflows (1e+300 / 1e-300)."),
    (solve_mean, (None,), {"mde": 1.0, "sample": [1e308, -1e308]},
     "sample values are too large: their mean or standard deviation overflows."),
    # sums real values can have (sum_squares >= sum^2/n) whose sum^2 overflows
    (solve_mean, (None,), {"mde": 1.0, "sample": SampleStats(10**10, 1e159, 1.5e308)},
     "sample values are too large: their mean or standard deviation overflows."),
    (solve_mean, (None,), {"mde": 1.0, "sample": SampleStats(2, 1e300, 1e300)},
     "sample.sum_squares is less than sum^2/n (1e+300 < inf): not the sums of real values."),
    (solve_mean, (None,), {"mde": 1.0, "sample": SampleStats(1, 3.0, 9.0)},
     "sample must summarise at least 2 values."),
    (solve_mean, (None,), {"mde": 1.0, "sample": SampleStats(3, 6.0, 12.0)},
     "sample has no spread (all values equal), so its standard deviation is 0."),
    (plan_test_then_send, (1000, 0.03), {"prior_sd": 0.6},
     "prior_sd must be at most 0.5 (rates lie in (0, 1)); got 0.6."),
    (plan_test_then_send, (10**6,), {"rates": [0.01 + 0.001 * i for i in range(11)]},
     "rates must hold at most 10 arms; got 11."),
    (plan_test_then_send, (5,), {"rates": [0.1, 0.2, 0.3]},
     "list_size must be at least 6 to test 3 arms; got 5."),
    (plan_test_then_send, (1000,), {"rates": ["a", 0.2]},
     "rates must be a flat sequence of numbers, control first."),
    (plan_bandit, ([0.1, "b"], 100), {"rng": np.random.default_rng(0)},
     "rates must be a flat sequence of numbers, control first."),
    (sequential_inflation, ("pocock",), {"alpha": 1e-4, "rng": np.random.default_rng(0)},
     "alpha must be at least 0.001 for a group-sequential design (its boundary is integrated to about "
     "1e-5); got 0.0001."),
    (sequential_inflation, ("obrien_fleming",), {"power": 0.9999, "rng": np.random.default_rng(0)},
     "power must be at most 0.999 for a group-sequential design (its boundary is integrated to about "
     "1e-5); got 0.9999."),
    (sequential_inflation, ("msprt",), {"power": 0.04, "rng": np.random.default_rng(0)},
     "power must be greater than alpha (0.05), which a test reaches with no effect at all; got 0.04."),
    (sequential_inflation, ("msprt",), {"mixing_ratio": 1e300, "rng": np.random.default_rng(0)},
     "mixing_ratio must be at most 1e6; got 1e+300."),
    (power_curve, ("rate",), {"baseline": 0.1, "mde": 0.01, "points": 1001},
     "points must be at most 1,000; got 1001."),
]


@pytest.mark.parametrize(("function", "args", "kwargs", "message"), BAD)
def test_edge_input_gets_one_sentence(function, args, kwargs, message):
    with pytest.raises(PowerInputError) as caught:
        function(*args, **kwargs)
    assert str(caught.value) == message


def test_rate_power_answer_holds_its_settings():
    result = solve_rate(0.03, mde=0.10, n_per_arm=20_000, power=None, relative=True, arms=3)
    # statsmodels NormalIndPower at Bonferroni alpha 0.05 / 2 on Cohen's h of 0.033 vs 0.03
    h = proportion_effectsize(0.033, 0.03)
    assert result.power == pytest.approx(NormalIndPower().power(h, nobs1=20_000, alpha=0.025))
    assert result.treatment_rate == pytest.approx(0.033) and result.alpha_per_comparison == 0.025
    assert "Bonferroni" in result.method


def test_mean_power_from_summary_statistics_equals_from_values():
    values = np.random.default_rng(3).gamma(0.5, 40.0, 2_000)
    from_values = solve_mean(None, mde=0.1, n_per_arm=5_000, power=None, sample=values, relative=True)
    summary = SampleStats.from_values(values)
    from_summary = solve_mean(None, mde=0.1, n_per_arm=5_000, power=None, sample=summary, relative=True)
    assert from_summary.sd == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    assert from_summary.baseline_mean == pytest.approx(values.mean(), rel=1e-12)
    assert from_summary.power == pytest.approx(from_values.power, rel=1e-9)
    d = 0.1 * values.mean() / np.std(values, ddof=1)
    assert from_values.power == pytest.approx(TTestIndPower().power(d, nobs1=5_000, alpha=0.05))
    assert from_values.sd_source == "sample"


def test_test_then_send_on_a_huge_list_is_a_maximum():
    # two arms: E(n) = n (p0 + p1) + (N - 2n) (p0 (1 - w) + p1 w), w = Phi((p1 - p0) / sqrt(v0/n + v1/n))
    big, p0, p1 = 10**15, 0.03, 0.03 * (1 + 1e-6)
    plan = plan_test_then_send(big, p0, lift=1e-6)

    def expected(n: float) -> float:
        w = stats.norm.cdf((p1 - p0) / math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n))
        return n * (p0 + p1) + (big - 2 * n) * (p0 * (1 - w) + p1 * w)

    # near the optimum E moves by ~3e-8 a unit of n; 0.05 conversions covers rounding at E ~ 3e13,
    # so a plan 0.1% off either way fails
    best = expected(plan.per_arm)
    for n in (plan.per_arm * 0.999, plan.per_arm * 1.001, plan.per_arm - 10**6, plan.per_arm + 10**6):
        assert best >= expected(n) - 0.05


def test_mean_curve_from_a_sample_equals_the_curve_from_its_sd():
    values = np.random.default_rng(5).normal(10.0, 3.0, 500)
    by_sample = power_curve("mean", mde=0.5, sample=values, points=6)
    by_sd = power_curve("mean", mde=0.5, sd=float(np.std(values, ddof=1)), points=6)
    assert by_sample.x == by_sd.x
    np.testing.assert_allclose(by_sample.power, by_sd.power, rtol=1e-12)


def test_bandit_reports_progress_once_per_campaign():
    seen: list[int] = []
    plan_bandit([0.04, 0.05], 2_000, rng=np.random.default_rng(1), replications=5, batches=4,
                on_progress=seen.append)
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("horizon", "batches"), [(5, 4), (101, 20), (7, 7)])
def test_bandit_batches_split_any_horizon(horizon, batches):
    # 5 sends in 4 batches used to give a last batch of -1
    plan = plan_bandit([0.3, 0.5], horizon, batches=batches, replications=3, rng=np.random.default_rng(2))
    assert plan.batch_size == -(-horizon // batches) and len(plan.losing_share_by_batch) == batches
    assert all(0.0 <= share <= 1.0 for share in plan.losing_share_by_batch)
