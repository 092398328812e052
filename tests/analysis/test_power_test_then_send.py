"""Test-then-send: the optimal test share against Feit & Berman's closed form and a seeded simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from analysis.power import PowerInputError, plan_test_then_send, solve_rate
from analysis.power.test_then_send import expected_max_of_normals, win_probabilities


@pytest.mark.parametrize(("n", "mu", "sigma"), [(100_000, 0.1, 0.02), (1_000_000, 0.03, 0.005),
                                                (20_000, 0.5, 0.05), (5_000, 0.2, 0.01)])
def test_prior_optimum_matches_feit_berman_closed_form(n, mu, sigma):
    # Feit & Berman (2019), symmetric normal prior, two arms:
    # n* = sqrt(N s^2 / (4 sigma^2) + (3 s^2 / (4 sigma^2))^2) - 3 s^2 / (4 sigma^2), s^2 = mu (1 - mu)
    r = mu * (1 - mu) / sigma**2
    closed = math.sqrt(n * r / 4 + (0.75 * r) ** 2) - 0.75 * r
    plan = plan_test_then_send(n, mu, prior_sd=sigma)
    assert plan.per_arm in (math.floor(closed), math.ceil(closed))
    assert plan.test_size == 2 * plan.per_arm and plan.send_size == n - 2 * plan.per_arm
    # chance of the right winner: corr(observed, true difference) = sigma / sqrt(sigma^2 + s^2/n)
    rho = sigma / math.sqrt(sigma**2 + mu * (1 - mu) / plan.per_arm)
    assert plan.prob_correct_winner == pytest.approx(0.5 + math.asin(rho) / math.pi)
    assert plan.expected_conversions_without_test < plan.expected_conversions
    assert plan.expected_conversions < plan.expected_conversions_perfect


@pytest.mark.parametrize(
    ("k", "reference"),
    # Expected maximum of k standard normals: 1/sqrt(pi), 3/(2 sqrt(pi)); k = 4, 5 from Harter (1961)
    # tables of expected normal order statistics: 1.02938, 1.16296.
    [(2, 1 / math.sqrt(math.pi)), (3, 1.5 / math.sqrt(math.pi)), (4, 1.02938), (5, 1.16296)],
)
def test_expected_maximum_of_normals(k, reference):
    assert expected_max_of_normals(k) == pytest.approx(reference, abs=1e-5)


def test_win_probabilities_quadrature_agrees_with_the_two_arm_closed_form():
    rates, n = np.array([0.03, 0.036]), np.array([1000, 5000, 20_000])
    two = win_probabilities(rates, n)
    # a third arm that never wins turns the quadrature path on without changing the answer
    three = win_probabilities(np.array([0.03, 0.036, 1e-6]), n)
    np.testing.assert_allclose(three[:, :2], two, atol=1e-7)
    sd2 = (0.03 * 0.97 + 0.036 * 0.964) / n
    np.testing.assert_allclose(two[:, 1], stats.norm.cdf(0.006 / np.sqrt(sd2)))
    equal = win_probabilities(np.array([0.05, 0.05, 0.05]), np.array([500]))
    np.testing.assert_allclose(equal, 1 / 3, atol=1e-9)


@pytest.mark.parametrize("rates", [[0.03, 0.036], [0.1, 0.09], [0.03, 0.033, 0.036, 0.03]])
def test_known_rates_optimum_is_a_maximum(rates):
    list_size = 200_000
    plan = plan_test_then_send(list_size, rates=rates)
    p, k = np.array(rates), len(rates)

    def expected(n):
        return n * p.sum() + (list_size - k * n) * float(win_probabilities(p, np.array([n]))[0] @ p)

    n = plan.per_arm
    assert plan.expected_conversions == pytest.approx(expected(n))
    assert expected(n) >= expected(n - 1) and expected(n) >= expected(n + 1)
    assert max(plan.expected_by_share) <= plan.expected_conversions + 1e-9
    best_treatment = 1 + int(np.argmax(np.abs(p[1:] - p[0])))
    assert plan.power == pytest.approx(solve_rate(p[0], mde=p[best_treatment] - p[0], n_per_arm=n,
            power=None, arms=k).power)


def test_lift_is_the_two_rate_case():
    by_lift = plan_test_then_send(50_000, 0.04, lift=0.25)
    by_rates = plan_test_then_send(50_000, rates=[0.04, 0.05])
    assert by_lift.per_arm == by_rates.per_arm
    assert plan_test_then_send(50_000, 0.04, lift=0.01, relative=False).per_arm == by_rates.per_arm


@pytest.mark.parametrize("rates", [[0.03, 0.036], [0.05, 0.055, 0.06]])
def test_seeded_simulation_of_the_campaign(rates):
    # Run the campaign 20,000 times at the planned size: binomial counts per arm, send the arm with the
    # highest observed rate. The chance of the right winner agrees within 1 point (MC se ~0.15 point),
    # and the mean total conversions within 4 Monte Carlo standard errors.
    list_size = 100_000
    plan = plan_test_then_send(list_size, rates=rates)
    p, n, reps = np.array(rates), plan.per_arm, 20_000
    rng = np.random.default_rng(2024)
    counts = rng.binomial(n, p, size=(reps, p.size))
    winner = np.argmax(counts, axis=1)
    assert abs(np.mean(winner == np.argmax(p)) - plan.prob_correct_winner) < 0.01
    rest = rng.binomial(plan.send_size, p[winner])
    totals = counts.sum(axis=1) + rest
    se = totals.std(ddof=1) / math.sqrt(reps)
    assert abs(totals.mean() - plan.expected_conversions) < 4 * se


def test_to_dict_is_json_ready():
    plan = plan_test_then_send(10_000, rates=[0.1, 0.12])
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["per_arm"] == plan.per_arm and data["rates"] == [0.1, 0.12]
    assert len(data["shares"]) == len(data["expected_by_share"])


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [((1000, 0.1), {}, "give exactly one of rates, lift (with baseline) or prior_sd (with baseline)."),
     ((1000, 0.1), {"lift": 0.1, "prior_sd": 0.01},
      "give exactly one of rates, lift (with baseline) or prior_sd (with baseline)."),
     ((1000,), {"lift": 0.1}, "baseline is missing; lift is relative to the control rate."),
     ((1000, 0.1), {"rates": [0.1, 0.2]},
      "baseline and rates were both given; the first rate is the control."),
     ((1000, 0.6), {"lift": 1.0}, "lift gives a treatment rate of 1.2, outside (0, 1)."),
     ((1000, 0.1), {"lift": 0.0}, "lift must not be zero: a zero effect cannot be detected."),
     ((1000,), {"rates": [0.1, 0.1]}, "rates are all equal, so there is no winner to find."),
     ((1000,), {"rates": [0.1, 1.1]}, "rates must all be strictly between 0 and 1."),
     ((1000,), {"rates": [0.1]}, "rates must be a flat sequence of at least 2 rates, control first."),
     ((3,), {"rates": [0.1, 0.2]}, "list_size must be at least 4; got 3."),
     ((1000, 0.1), {"prior_sd": -0.1}, "prior_sd must be greater than 0; got -0.1."),
     ((10, 0.1), {"prior_sd": 0.1, "arms": 6}, "list_size must be at least 12 to test 6 arms; got 10."),
     ((1000, 1.5), {"prior_sd": 0.1}, "baseline must be strictly between 0 and 1; got 1.5.")],
)
def test_bad_input(args, kwargs, message):
    with pytest.raises(PowerInputError) as caught:
        plan_test_then_send(*args, **kwargs)
    assert str(caught.value) == message
