"""Sequential inflation: group-sequential constants against Jennison & Turnbull, and seeded calibration."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from analysis.power import PowerInputError, sequential_inflation
from analysis.power.sequential import fixed_drift


@pytest.mark.parametrize(
    ("design", "looks", "critical", "inflation"),
    # Jennison & Turnbull (2000), ch. 2, two-sided alpha 0.05, power 0.8 (beta 0.2):
    # Pocock C_P(2) = 2.178, C_P(5) = 2.413, R_P = 1.110, 1.229;
    # O'Brien-Fleming C_B(2) = 1.977, C_B(5) = 2.040, R_B = 1.008, 1.028.
    [("pocock", 2, 2.178, 1.110), ("pocock", 5, 2.413, 1.229),
     ("obrien_fleming", 2, 1.977, 1.008), ("obrien_fleming", 5, 2.040, 1.028)],
)
def test_group_sequential_matches_published_tables(design, looks, critical, inflation):
    result = sequential_inflation(design, looks=looks, rng=np.random.default_rng(0), fixed_n=1000)
    assert result.critical_value == pytest.approx(critical, abs=1.5e-3)
    assert result.inflation == pytest.approx(inflation, abs=1.5e-3)
    assert result.sequential_n == math.ceil(result.inflation * 1000)
    assert result.computed_by == "numerical integration"


def _brownian_scores(rng, reps, times, drift):
    """S(t) = W(t) + drift t at the given increasing times, shape (reps, len(times))."""
    steps = np.diff(np.concatenate([[0.0], times]))
    increments = drift * steps + np.sqrt(steps) * rng.standard_normal((reps, times.size))
    return np.cumsum(increments, axis=1)


@pytest.mark.parametrize("design", ["pocock", "obrien_fleming"])
def test_group_sequential_seeded_calibration(design):
    # 20,000 simulated trials with 5 looks: type I error within 0.5 point of 5 % (se 0.15 point), power
    # within 1 point of 80 % (se 0.3 point), expected sample within 1 % of the fixed sample.
    result = sequential_inflation(design, looks=5, rng=np.random.default_rng(1))
    looks = np.arange(1, 6)
    times = result.inflation * looks / 5
    bounds = result.critical_value * (np.ones(5) if design == "pocock" else np.sqrt(5 / looks))
    rng = np.random.default_rng(2)
    for drift, target in ((0.0, 0.05), (fixed_drift(0.05, 0.8), 0.8)):
        z = _brownian_scores(rng, 20_000, times, drift) / np.sqrt(times)
        crossed = np.abs(z) >= bounds
        assert abs(crossed.any(axis=1).mean() - target) < (0.005 if drift == 0 else 0.01)
    stop = np.where(crossed.any(axis=1), crossed.argmax(axis=1), 4)
    assert abs(times[stop].mean() - result.expected_sample_ratio) < 0.01


def test_fixed_drift_gives_the_power_of_the_fixed_test():
    theta = fixed_drift(0.05, 0.8)
    # one tail: z_{0.975} + z_{0.8} = 2.8016; the far tail adds a hair
    assert theta == pytest.approx(stats.norm.isf(0.025) + stats.norm.ppf(0.8), abs=1e-4)
    assert stats.norm.cdf(theta - 1.959964) + stats.norm.cdf(-theta - 1.959964) == pytest.approx(0.8)


def test_msprt_seeded_calibration():
    result = sequential_inflation("msprt", rng=np.random.default_rng(3), fixed_n=5000)
    assert result.computed_by == "seeded simulation" and result.critical_value is None
    assert 1.0 < result.inflation < 3.0
    assert result.sequential_n == math.ceil(result.inflation * 5000)
    # Independent paths (another seed), checked 100 times per fixed sample up to the reported inflation:
    # the mixture likelihood ratio crosses 1/alpha for 80 % of them (within 1.5 points; se 0.3 point).
    theta, tau2 = fixed_drift(0.05, 0.8), fixed_drift(0.05, 0.8) ** 2
    times = np.arange(1, int(round(result.inflation * 100)) + 1) / 100
    rng = np.random.default_rng(4)
    for drift, check in ((theta, lambda p: abs(p - 0.8) < 0.015), (0.0, lambda p: p <= 0.05)):
        s = _brownian_scores(rng, 20_000, times, drift)
        log_lr = -0.5 * np.log1p(tau2 * times) + tau2 * s**2 / (2 * (1 + tau2 * times))
        assert check((log_lr >= math.log(20)).any(axis=1).mean())


def test_msprt_is_reproducible_and_costs_more_than_group_sequential():
    first = sequential_inflation("msprt", rng=np.random.default_rng(5), replications=5000)
    again = sequential_inflation("msprt", rng=np.random.default_rng(5), replications=5000)
    assert first == again
    assert first.inflation > sequential_inflation("pocock", rng=np.random.default_rng(0)).inflation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"design": "wald"}, "design must be one of 'msprt', 'pocock', 'obrien_fleming'; got 'wald'."),
     ({"rng": 7}, "rng must be a numpy.random.Generator, for example np.random.default_rng(7)."),
     ({"design": "pocock", "looks": 11}, "looks must be at most 10 for a group-sequential design; got 11."),
     ({"alpha": 0.0}, "alpha must be strictly between 0 and 1; got 0.0."),
     ({"power": 1.0}, "power must be below 1 (a power of 1 needs an infinite sample); got 1.0."),
     ({"mixing_ratio": 0.0}, "mixing_ratio must be greater than 0; got 0.0."),
     ({"fixed_n": 0}, "fixed_n must be at least 1; got 0.")],
)
def test_bad_input(kwargs, message):
    kwargs = {"rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(PowerInputError) as caught:
        sequential_inflation(**kwargs)
    assert str(caught.value) == message


def test_a_seed_gives_the_answer_of_its_generator_and_is_returned():
    by_seed = sequential_inflation("pocock", looks=3, seed=4)
    by_rng = sequential_inflation("pocock", looks=3, rng=np.random.default_rng(4))
    assert by_seed.seed == 4 and by_rng.seed is None
    assert dataclasses.replace(by_rng, seed=4) == by_seed
    with pytest.raises(PowerInputError, match="^rng and seed were both given; give one of them.$"):
        sequential_inflation("pocock", seed=4, rng=np.random.default_rng(4))
    with pytest.raises(PowerInputError, match="^seed must be at least 0; got -1.$"):
        sequential_inflation("pocock", seed=-1)
