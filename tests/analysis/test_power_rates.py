"""Sample size, power and minimum detectable effect for rates, against independent references."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats
from statsmodels.stats.proportion import proportion_effectsize

from analysis.power import solve_rate


def _hand_unpooled(p0: float, p1: float, alpha: float, power: float, ratio: float, two_sided: bool) -> int:
    """Chow, Shao & Wang (2008) eq. 4.2.2, written out: n0 = (z_a + z_b)^2 (p0 q0 + p1 q1 / r) / d^2."""
    z_a = stats.norm.ppf(1 - alpha / 2) if two_sided else stats.norm.ppf(1 - alpha)
    z_b = stats.norm.ppf(power)
    n0 = (z_a + z_b) ** 2 * (p0 * (1 - p0) + p1 * (1 - p1) / ratio) / (p1 - p0) ** 2
    return math.ceil(n0)


def _hand_arcsine(p0: float, p1: float, alpha: float, power: float, ratio: float) -> float:
    """Two-sided power of the arcsine z-test, both tails, solved for n0 by root finding.

    power(n) = Phi(|h| s - z) + Phi(-|h| s - z), s = sqrt(n / (1 + 1/r)), h = 2 asin sqrt p1 - 2 asin sqrt p0.
    """
    h = abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0)))
    z = stats.norm.ppf(1 - alpha / 2)

    def gap(n: float) -> float:
        s = math.sqrt(n / (1 + 1 / ratio))
        return stats.norm.cdf(h * s - z) + stats.norm.cdf(-h * s - z) - power

    return optimize.brentq(gap, 1.0, 1e9, xtol=1e-10)


@pytest.mark.parametrize(
    ("p0", "p1", "alpha", "power", "ratio", "arms"),
    [
        (0.03, 0.033, 0.05, 0.8, 1.0, 2),
        (0.10, 0.12, 0.05, 0.9, 1.0, 2),
        (0.50, 0.45, 0.01, 0.8, 1.0, 2),
        (0.10, 0.12, 0.05, 0.8, 2.0, 2),
        (0.05, 0.06, 0.05, 0.8, 1.0, 4),
    ],
)
def test_unpooled_matches_the_closed_form_to_the_recipient(p0, p1, alpha, power, ratio, arms):
    plan = solve_rate(p0, mde=p1 - p0, alpha=alpha, power=power, ratio=ratio, arms=arms, method="unpooled")
    alpha_each = alpha / (arms - 1)
    assert plan.n_per_arm == _hand_unpooled(p0, p1, alpha_each, power, ratio, two_sided=True)
    assert plan.alpha_per_comparison == pytest.approx(alpha_each)
    assert plan.convention == "unpooled"
    assert "unpooled" in plan.method


def test_unpooled_one_sided_matches_the_closed_form():
    plan = solve_rate(0.2, mde=-0.03, alternative="one-sided", method="unpooled")
    assert plan.n_per_arm == _hand_unpooled(0.2, 0.17, 0.05, 0.8, 1.0, two_sided=False)


@pytest.mark.parametrize(
    ("p0", "p1", "power", "ratio"),
    [(0.03, 0.033, 0.8, 1.0), (0.10, 0.12, 0.9, 1.0), (0.5, 0.45, 0.8, 3.0), (0.01, 0.02, 0.8, 0.5)],
)
def test_statsmodels_convention_matches_the_arcsine_power_equation(p0, p1, power, ratio):
    plan = solve_rate(p0, mde=p1 - p0, power=power, ratio=ratio)
    n_exact = _hand_arcsine(p0, p1, 0.05, power, ratio)
    assert plan.sizes.n_exact == pytest.approx(n_exact, rel=1e-7)
    assert plan.n_per_arm == math.ceil(n_exact)
    assert plan.sizes.per_arm_sizes[1] == math.ceil(ratio * n_exact)
    # statsmodels' own effect size for two proportions (signed: treatment minus control)
    assert plan.effect_size == pytest.approx(proportion_effectsize(p1, p0), rel=1e-12)


def test_statsmodels_reference_values_for_proportions():
    # statsmodels 0.14/0.15:
    # NormalIndPower().solve_power(proportion_effectsize(0.033, 0.03), alpha=0.05, power=0.8) = 53181.79
    # and for (0.12, 0.10) at power 0.9: 4936.43, hand-checked with _hand_arcsine above.
    assert solve_rate(0.03, mde=0.10, relative=True).sizes.n_exact == pytest.approx(53181.79, abs=0.01)
    assert solve_rate(0.10, mde=0.02, power=0.9).n_per_arm == math.ceil(
        _hand_arcsine(0.10, 0.12, 0.05, 0.9, 1.0))


def test_relative_and_absolute_mde_agree():
    relative = solve_rate(0.04, mde=0.25, relative=True)
    absolute = solve_rate(0.04, mde=0.01)
    assert relative.n_per_arm == absolute.n_per_arm
    assert relative.mde_relative == pytest.approx(0.25)
    assert absolute.treatment_rate == pytest.approx(0.05)


def test_totals_days_and_sizes_for_several_arms():
    plan = solve_rate(0.03, mde=0.10, relative=True, arms=3, ratio=1.5, daily=20_000, traffic_share=0.5)
    control, t1, t2 = plan.sizes.per_arm_sizes
    assert control == plan.n_per_arm and t1 == t2 == math.ceil(1.5 * plan.sizes.n_exact)
    assert plan.sizes.total == control + t1 + t2
    assert plan.sizes.days == math.ceil(plan.sizes.total / 10_000)
    assert "Bonferroni" in plan.method and "0.05/2" in plan.method


def test_bonferroni_can_be_switched_off():
    corrected = solve_rate(0.1, mde=0.02, arms=3)
    uncorrected = solve_rate(0.1, mde=0.02, arms=3, correction="none")
    two_arms = solve_rate(0.1, mde=0.02)
    assert uncorrected.n_per_arm == two_arms.n_per_arm < corrected.n_per_arm
    assert uncorrected.alpha_per_comparison == 0.05 and "no correction" in uncorrected.method


def test_to_dict_is_json_ready():
    plan = solve_rate(0.03, mde=0.10, relative=True, daily=200_000)
    data = json.loads(json.dumps(plan.to_dict()))
    sizes = data["sizes"]
    assert data["n_per_arm"] == sizes["per_arm"] == plan.n_per_arm and sizes["total"] == plan.sizes.total
    assert sizes["days"] == 1 and sizes["per_arm_sizes"] == list(plan.sizes.per_arm_sizes)
    assert isinstance(data["method"], str)


@pytest.mark.parametrize("method", ["statsmodels", "unpooled"])
@pytest.mark.parametrize(
    ("baseline", "mde", "options"),
    [(0.03, 0.1, {"relative": True}), (0.2, -0.03, {"alternative": "one-sided"}),
     (0.1, 0.02, {"ratio": 2.0}), (0.05, 0.01, {"arms": 3})],
)
def test_round_trip_power_and_mde(method, baseline, mde, options):
    plan = solve_rate(baseline, mde=mde, method=method, **options)
    relative = options.get("relative", False)
    kwargs = {k: v for k, v in options.items() if k != "relative"}
    power = solve_rate(baseline, mde=mde, n_per_arm=plan.sizes.n_exact, power=None, relative=relative,
            method=method, **kwargs).power
    assert power == pytest.approx(0.8, abs=1e-8)
    direction = "increase" if mde > 0 else "decrease"
    found = solve_rate(baseline, n_per_arm=plan.n_per_arm, method=method, direction=direction, **kwargs)
    # at the rounded-up size the detectable effect is at most the requested one; one recipient fewer, more
    assert abs(found.mde_absolute) <= abs(plan.mde_absolute)
    fewer = solve_rate(baseline, n_per_arm=plan.n_per_arm - 1, method=method, direction=direction, **kwargs)
    if kwargs.get("ratio", 1.0) == 1.0:
        assert abs(fewer.mde_absolute) > abs(plan.mde_absolute)
    assert found.mde_absolute == pytest.approx(plan.mde_absolute, rel=2e-3)
    back = solve_rate(baseline, mde=found.mde_absolute, method=method, **kwargs)
    assert back.sizes.n_exact == pytest.approx(plan.n_per_arm, rel=1e-6)


def test_power_grows_with_n_and_effect():
    powers = [solve_rate(0.05, mde=0.01, n_per_arm=n, power=None).power for n in (1000, 3000, 9000)]
    assert powers[0] < powers[1] < powers[2]
    assert solve_rate(0.05, mde=0.005, n_per_arm=3000, power=None).power < solve_rate(0.05, mde=0.01,
            n_per_arm=3000, power=None).power


def test_mde_too_small_a_sample_is_reported():
    with pytest.raises(ValueError, match="n_per_arm 2 is too small"):
        solve_rate(0.9, n_per_arm=2, power=0.99, alpha=0.001)


def _simulated_power(plan, rng, repetitions=20_000):
    """Share of seeded tests at the plan's sizes that reject, using the test each convention models.

    statsmodels convention: the arcsine z-test; unpooled convention: the unpooled Wald z-test.
    Counts are drawn directly from the binomial distribution, one pair per repetition.
    """
    n0, n1 = plan.sizes.per_arm_sizes[0], plan.sizes.per_arm_sizes[1]
    x0 = rng.binomial(n0, plan.baseline, repetitions) / n0
    x1 = rng.binomial(n1, plan.treatment_rate, repetitions) / n1
    if plan.convention == "statsmodels":
        z = (2 * np.arcsin(np.sqrt(x1)) - 2 * np.arcsin(np.sqrt(x0))) / np.sqrt(1 / n0 + 1 / n1)
    else:
        z = (x1 - x0) / np.sqrt(x0 * (1 - x0) / n0 + x1 * (1 - x1) / n1)
    a = plan.alpha_per_comparison
    if plan.alternative == "two-sided":
        return float(np.mean(np.abs(z) > stats.norm.isf(a / 2)))
    return float(np.mean(np.sign(plan.mde_absolute) * z > stats.norm.isf(a)))


@pytest.mark.parametrize("method", ["statsmodels", "unpooled"])
@pytest.mark.parametrize(
    ("baseline", "mde", "options"),
    [(0.03, 0.1, {"relative": True}), (0.2, -0.03, {"alternative": "one-sided", "power": 0.9}),
     (0.1, 0.02, {"ratio": 2.0}), (0.05, 0.01, {"arms": 3})],
)
def test_seeded_simulation_reaches_the_requested_power(method, baseline, mde, options):
    # 20,000 repetitions: the Monte Carlo standard error is 0.3 points, the tolerance 2 points.
    plan = solve_rate(baseline, mde=mde, method=method, **options)
    simulated = _simulated_power(plan, np.random.default_rng(9))
    assert abs(simulated - plan.power) < 0.02


def test_pooled_z_test_also_reaches_the_power_with_equal_arms():
    # The test most analysts run afterwards: statsmodels' proportions_ztest (pooled variance).
    plan = solve_rate(0.1, mde=0.02)
    rng = np.random.default_rng(11)
    n = plan.n_per_arm
    x0, x1 = rng.binomial(n, 0.1, 20_000), rng.binomial(n, 0.12, 20_000)
    pooled = (x0 + x1) / (2 * n)
    z = (x1 - x0) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert abs(np.mean(np.abs(z) > stats.norm.isf(0.025)) - 0.8) < 0.02


@settings(max_examples=40, deadline=None)
@given(
    baseline=st.floats(0.01, 0.6),
    relative_mde=st.floats(0.03, 0.5),
    sign=st.sampled_from([1.0, -1.0]),
    ratio=st.floats(0.5, 3.0),
    power=st.floats(0.5, 0.95),
    method=st.sampled_from(["statsmodels", "unpooled"]),
    alternative=st.sampled_from(["two-sided", "one-sided"]),
)
def test_properties_round_trip_and_monotone(baseline, relative_mde, sign, ratio, power, method, alternative):
    options = {"ratio": ratio, "method": method, "alternative": alternative}
    mde = sign * relative_mde
    plan = solve_rate(baseline, mde=mde, relative=True, power=power, **options)
    back = solve_rate(baseline, mde=mde, n_per_arm=plan.sizes.n_exact, power=None, relative=True,
            **options).power
    assert back == pytest.approx(power, abs=1e-7)
    assert plan.n_per_arm >= plan.sizes.n_exact and plan.n_per_arm - plan.sizes.n_exact < 1
    more_power = solve_rate(baseline, mde=mde, relative=True, power=power + 0.04, **options)
    bigger_effect = solve_rate(baseline, mde=1.2 * mde, relative=True, power=power, **options)
    assert more_power.sizes.n_exact > plan.sizes.n_exact > bigger_effect.sizes.n_exact
