"""Sample size, power and minimum detectable effect for means, against Cohen's table and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.power import solve_mean


@pytest.mark.parametrize(
    ("d", "exact", "per_arm", "cohen_printed"),
    # Cohen (1988), Table 2.4.1, alpha 0.05 two-sided, power 0.80: 393, 64, 26 per group.
    # R: pwr::pwr.t.test(d = 0.2, power = 0.8) -> n = 393.4057; d = 0.5 -> 63.76561; d = 0.8 -> 25.52457.
    [(0.2, 393.4057, 394, 393), (0.5, 63.76561, 64, 64), (0.8, 25.52457, 26, 26)],
)
def test_cohens_two_sample_table(d, exact, per_arm, cohen_printed):
    plan = solve_mean(1.0, mde=d)
    assert plan.sizes.n_exact == pytest.approx(exact, abs=5e-4)
    assert plan.n_per_arm == per_arm
    # Cohen rounds to the nearest; SendLab rounds up, and says so
    assert round(plan.sizes.n_exact) == cohen_printed
    assert "rounded up" in plan.method and "TTestIndPower" in plan.method


def test_effect_scales_with_sd():
    assert solve_mean(4.0, mde=2.0).n_per_arm == solve_mean(1.0, mde=0.5).n_per_arm == 64


@pytest.mark.parametrize(("alternative", "ratio", "arms"), [("two-sided", 1.0, 2), ("one-sided", 2.0, 2),
                                                            ("two-sided", 1.0, 3)])
def test_normal_convention_matches_the_closed_form(alternative, ratio, arms):
    sd, mde = 12.0, 1.5
    alpha_each = 0.05 / (arms - 1)
    z_a = stats.norm.ppf(1 - alpha_each / 2) if alternative == "two-sided" else stats.norm.ppf(1 - alpha_each)
    n0 = (z_a + stats.norm.ppf(0.8)) ** 2 * sd**2 * (1 + 1 / ratio) / mde**2
    plan = solve_mean(sd, mde=mde, alternative=alternative, ratio=ratio, arms=arms, method="normal")
    assert plan.n_per_arm == math.ceil(n0)
    assert plan.sizes.per_arm_sizes[-1] == math.ceil(ratio * n0)


def test_t_test_needs_slightly_more_than_the_normal_approximation():
    t_plan = solve_mean(1.0, mde=0.5)
    z_plan = solve_mean(1.0, mde=0.5, method="normal")
    # normal: (1.95996 + 0.84162)^2 * 2 / 0.25 = 62.79; the t-test adds about one recipient
    assert z_plan.sizes.n_exact == pytest.approx(62.79, abs=0.01)
    assert t_plan.sizes.n_exact - z_plan.sizes.n_exact == pytest.approx(0.97, abs=0.02)


def test_sd_and_baseline_from_a_sample():
    sample = np.random.default_rng(3).gamma(0.5, 40.0, size=400)
    plan = solve_mean(None, mde=0.05, sample=sample, relative=True)
    assert plan.sd == pytest.approx(np.std(sample, ddof=1)) and plan.sd_source == "sample"
    assert plan.baseline_mean == pytest.approx(sample.mean())
    assert plan.mde_absolute == pytest.approx(0.05 * sample.mean())
    same = solve_mean(plan.sd, mde=plan.mde_absolute)
    assert same.n_per_arm == plan.n_per_arm


@pytest.mark.parametrize("method", ["statsmodels", "normal"])
@pytest.mark.parametrize("options", [{}, {"alternative": "one-sided"}, {"ratio": 0.5}, {"arms": 4}])
def test_round_trip(method, options):
    plan = solve_mean(3.0, mde=0.4, method=method, **options)
    assert solve_mean(3.0, mde=0.4, n_per_arm=plan.sizes.n_exact, power=None, method=method,
            **options).power == pytest.approx(0.8, abs=1e-8)
    assert solve_mean(3.0, mde=0.4, n_per_arm=plan.n_per_arm, power=None, method=method,
            **options).power >= 0.8
    found = solve_mean(3.0, n_per_arm=plan.n_per_arm, method=method, **options)
    assert found.mde_absolute <= 0.4
    assert solve_mean(3.0, n_per_arm=plan.n_per_arm - 1, method=method, **options).mde_absolute > 0.4
    assert found.mde_absolute == pytest.approx(0.4, rel=5e-3)
    assert solve_mean(3.0, n_per_arm=plan.n_per_arm, method=method, direction="decrease",
            **options).mde_absolute \
        == pytest.approx(-found.mde_absolute)


@pytest.mark.parametrize(
    ("d", "options"), [(0.5, {}), (0.2, {"alternative": "one-sided"}), (0.3, {"arms": 3})]
)
def test_seeded_simulation_of_the_t_test_reaches_the_power(d, options):
    # Draw the sufficient statistics of normal samples directly: the mean is N(mu, 1/n) and
    # (n - 1) s^2 is chi-square(n - 1); then the pooled two-sample t-test, 20,000 repetitions.
    plan = solve_mean(1.0, mde=d, **options)
    n0, n1 = plan.sizes.per_arm_sizes[0], plan.sizes.per_arm_sizes[1]
    rng = np.random.default_rng(5)
    reps = 20_000
    m0, m1 = rng.normal(0.0, 1 / math.sqrt(n0), reps), rng.normal(d, 1 / math.sqrt(n1), reps)
    ss0, ss1 = rng.chisquare(n0 - 1, reps), rng.chisquare(n1 - 1, reps)
    pooled = (ss0 + ss1) / (n0 + n1 - 2)
    t = (m1 - m0) / np.sqrt(pooled * (1 / n0 + 1 / n1))
    df, a = n0 + n1 - 2, plan.alpha_per_comparison
    if plan.alternative == "two-sided":
        rejected = np.abs(t) > stats.t.isf(a / 2, df)
    else:
        rejected = t > stats.t.isf(a, df)
    assert abs(rejected.mean() - 0.8) < 0.02
