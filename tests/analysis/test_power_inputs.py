"""Bad input gets one clear sentence naming the field; durations round up."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from analysis.power import PowerInputError, solve_duration, solve_mean, solve_rate
from analysis.power.solver import refine_sample_size
from analysis.stats import SampleStats

BAD_RATE_INPUTS = [
    ({"baseline": 0.0, "mde": 0.01}, "baseline must be strictly between 0 and 1; got 0.0."),
    ({"baseline": 1.2, "mde": 0.01}, "baseline must be strictly between 0 and 1; got 1.2."),
    ({"baseline": math.nan, "mde": 0.01}, "baseline must be a finite number; got nan."),
    ({"baseline": "3%", "mde": 0.01}, "baseline must be a number; got '3%'."),
    ({"baseline": 0.1, "mde": 0.0}, "mde must not be zero: a zero effect cannot be detected."),
    ({"baseline": 0.9, "mde": 0.2}, "mde gives a treatment rate of 1.1, which is not below 1."),
    ({"baseline": 0.5, "mde": 1.0, "relative": True},
     "mde gives a treatment rate of 1, which is not below 1."),
    ({"baseline": 0.1, "mde": -0.2}, "mde gives a treatment rate of -0.1, which is not above 0."),
    ({"baseline": 0.1, "mde": 0.01, "power": 1.0},
     "power must be below 1 (a power of 1 needs an infinite sample); got 1.0."),
    ({"baseline": 0.1, "mde": 0.01, "power": 0.0}, "power must be greater than 0; got 0.0."),
    ({"baseline": 0.1, "mde": 0.01, "alpha": 1.5}, "alpha must be strictly between 0 and 1; got 1.5."),
    ({"baseline": 0.1, "mde": 0.01, "alpha": 0}, "alpha must be strictly between 0 and 1; got 0."),
    ({"baseline": 0.1, "mde": 0.01, "arms": 1}, "arms must be at least 2; got 1."),
    ({"baseline": 0.1, "mde": 0.01, "arms": 2.5}, "arms must be a whole number; got 2.5."),
    ({"baseline": 0.1, "mde": 0.01, "ratio": -1}, "ratio must be greater than 0; got -1."),
    ({"baseline": 0.1, "mde": 0.01, "ratio": 1e300},
     "ratio must lie in [0.001, 1000] (a treatment arm at most 1,000 times the control's size, or a "
     "thousandth of it); got 1e+300."),
    ({"baseline": 0.1, "mde": 0.01, "ratio": 1e-300},
     "ratio must lie in [0.001, 1000] (a treatment arm at most 1,000 times the control's size, or a "
     "thousandth of it); got 1e-300."),
    ({"baseline": 0.1, "mde": 0.01, "alternative": "less"},
     "alternative must be one of 'two-sided', 'one-sided'; got 'less'."),
    ({"baseline": 0.1, "mde": 0.01, "method": "pooled"},
     "method must be one of 'statsmodels', 'unpooled'; got 'pooled'."),
    ({"baseline": 0.1, "mde": 0.01, "correction": "holm"},
     "correction must be one of 'bonferroni', 'none'; got 'holm'."),
    ({"baseline": 0.1, "mde": 0.01, "daily": 0}, "daily must be at least 1; got 0."),
    ({"baseline": 0.1, "mde": 0.01, "daily": 100, "traffic_share": 0},
     "traffic_share must be in (0, 1]; got 0."),
    ({"baseline": 0.1, "mde": 0.01, "daily": 100, "traffic_share": 1.5},
     "traffic_share must be in (0, 1]; got 1.5."),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_RATE_INPUTS)
def test_bad_rate_input(kwargs, message):
    with pytest.raises(PowerInputError) as caught:
        solve_rate(**kwargs)
    assert str(caught.value) == message


BAD_MEAN_INPUTS = [
    ({"sd": 0.0, "mde": 1.0}, "sd must be greater than 0; got 0.0."),
    ({"sd": None, "mde": 1.0}, "sd is missing; give sd or a sample of past values."),
    ({"sd": 1.0, "mde": 1.0, "sample": [1.0, 2.0]}, "sample and sd were both given; give one of them."),
    # real values have sum_squares >= sum^2/n: 5 < 10^2/10 cannot come from any values
    ({"sd": None, "mde": 1.0, "sample": SampleStats(10, 10.0, 5.0)},
     "sample.sum_squares is less than sum^2/n (5 < 10): not the sums of real values."),
    # equal values whose sums fell a hair below sum^2/n by rounding have no spread: not impossible sums
    ({"sd": None, "mde": 1.0, "sample": SampleStats(3, 0.1 + 0.1 + 0.1, 3 * 0.1**2)},
     "sample has no spread (all values equal), so its standard deviation is 0."),
    ({"sd": None, "mde": 1.0, "sample": [1.0]}, "sample must be a flat sequence of at least 2 values."),
    ({"sd": None, "mde": 1.0, "sample": [2.0, 2.0, 2.0]},
     "sample has no spread (all values equal), so its standard deviation is 0."),
    ({"sd": None, "mde": 1.0, "sample": [1.0, math.inf]}, "sample must contain only finite numbers."),
    ({"sd": 1.0, "mde": 0.0}, "mde must not be zero: a zero effect cannot be detected."),
    ({"sd": 1.0, "mde": 0.1, "relative": True},
     "baseline_mean is needed for a relative mde; give it or a sample."),
    ({"sd": 1.0, "mde": 0.1, "relative": True, "baseline_mean": 0.0},
     "baseline_mean is 0, so a relative mde is undefined."),
    ({"sd": 1.0, "mde": 0.1, "method": "unpooled"},
     "method must be one of 'statsmodels', 'normal'; got 'unpooled'."),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_MEAN_INPUTS)
def test_bad_mean_input(kwargs, message):
    with pytest.raises(PowerInputError) as caught:
        solve_mean(**kwargs)
    assert str(caught.value) == message


def test_inverse_questions_check_their_inputs():
    with pytest.raises(PowerInputError, match="^n_per_arm must be at least 2; got 1.$"):
        solve_rate(0.1, n_per_arm=1)
    with pytest.raises(PowerInputError, match="^n_per_arm must be greater than 0; got 0.$"):
        solve_rate(0.1, mde=0.01, n_per_arm=0, power=None)
    with pytest.raises(PowerInputError, match="^direction must be one of 'increase', 'decrease'; got 'up'.$"):
        solve_rate(0.1, n_per_arm=100, direction="up")
    with pytest.raises(PowerInputError, match="^n_per_arm must be at least 2; got 1.$"):
        solve_mean(1.0, mde=0.5, n_per_arm=1, power=None)
    # 2 per arm (2 degrees of freedom) at alpha 1e-6 would need an effect above 1,000 sd. (3 per arm used
    # to raise here only because scipy's noncentral t gave NaN; its true answer, 73.6 sd, is checked
    # in test_power_robustness.)
    too_small = "^n_per_arm 2 is too small: power 0.99 needs an effect above 1,000 standard deviations.$"
    with pytest.raises(PowerInputError, match=too_small):
        solve_mean(1.0, n_per_arm=2, power=0.99, alpha=1e-6)


def test_power_input_error_is_a_value_error():
    assert issubclass(PowerInputError, ValueError)


@pytest.mark.parametrize(
    ("total", "daily", "share", "days"),
    [(106_364, 200_000, 1.0, 1), (200_000, 200_000, 1.0, 1), (200_001, 200_000, 1.0, 2),
     (30_000, 10_000, 0.5, 6), (30_001, 10_000, 0.5, 7), (1, 1, 1.0, 1), (10, 3, 0.1, 34)],
)
def test_duration_rounds_up_to_whole_days(total, daily, share, days):
    assert solve_duration(total, daily, share) == days


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 100, 1.0), "total_sample must be at least 1; got 0."),
     ((100, 0, 1.0), "daily must be at least 1; got 0."),
     ((100, 10, 0.0), "traffic_share must be in (0, 1]; got 0.0.")],
)
def test_duration_bad_input(args, message):
    with pytest.raises(PowerInputError) as caught:
        solve_duration(*args)
    assert str(caught.value) == message


@pytest.mark.parametrize("guess", [math.nan, 5.0, 1e7, 784.9])
def test_refine_sample_size_solves_when_the_guess_is_off(guess):
    # power(n) = Phi(0.1 sqrt(n) - z_0.975) reaches 0.8 at n = ((z_0.975 + z_0.8) / 0.1)^2 = 784.89
    z = stats.norm.isf(0.025)
    exact = ((z + stats.norm.ppf(0.8)) / 0.1) ** 2
    found = refine_sample_size(lambda n: stats.norm.cdf(0.1 * math.sqrt(n) - z), 0.8, guess, minimum=0.0)
    assert found == pytest.approx(exact, rel=1e-9)


def test_refine_sample_size_gives_up_beyond_1e15():
    with pytest.raises(PowerInputError) as caught:
        refine_sample_size(lambda n: 0.0, 0.8, math.nan, minimum=0.0)
    assert str(caught.value) == "mde is too small: the sample size would exceed 1e15 per arm."


@pytest.mark.parametrize("solve", [lambda **kw: solve_rate(0.1, **kw), lambda **kw: solve_mean(1.0, **kw)])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mde": 0.02, "n_per_arm": 1000},
      "leave exactly one of mde, n_per_arm and power as None: it is the one solved for; to solve for the "
      "power, pass power=None."),
     ({"power": None},
      "leave exactly one of mde, n_per_arm and power as None: it is the one solved for; mde and n_per_arm "
      "and power are missing."),
     ({"n_per_arm": 1000, "daily": 100},
      "daily gives the days of a sample size: only when n_per_arm is the unknown.")],
)
def test_exactly_one_unknown(solve, kwargs, message):
    with pytest.raises(PowerInputError) as caught:
        solve(**kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize("solve", [lambda **kw: solve_rate(0.1, **kw), lambda **kw: solve_mean(0.5, **kw)])
def test_each_unknown_solved_gives_the_others_back(solve):
    # statsmodels-style round trip: solve for the size, then for the effect and the power at that size
    plan = solve(mde=0.02, power=0.9, alpha=0.01)
    assert plan.sizes is not None and plan.n_per_arm == plan.sizes.per_arm
    at_exact = solve(mde=0.02, n_per_arm=plan.sizes.n_exact, power=None, alpha=0.01)
    assert at_exact.power == pytest.approx(0.9, abs=1e-9) and at_exact.sizes is None
    effect = solve(n_per_arm=plan.n_per_arm, power=0.9, alpha=0.01)
    assert 0 < effect.mde_absolute <= 0.02 and effect.mde_absolute == pytest.approx(0.02, rel=1e-3)
    assert effect.effect_size == pytest.approx(plan.effect_size, rel=1e-3)
