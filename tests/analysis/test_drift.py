"""Drift monitoring: predictive residuals and a CUSUM calibrated to its false alarm rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.drift import (
    DriftDay,
    average_run_length,
    calibrate_cusum_threshold,
    cusum,
    monitor_drift,
    one_sided_alarm_probability,
    predict_reward,
    predict_rewards,
)
from analysis.errors import AnalysisInputError


@pytest.mark.parametrize(("threshold", "two_sided_arl"), [(4.0, 168.0), (5.0, 465.0)])
def test_average_run_length_matches_the_published_table(threshold, two_sided_arl):
    # Montgomery, Introduction to Statistical Quality Control, table 9.3 (k = 1/2, no shift): the
    # two-sided tabular CUSUM's ARL; by symmetry each side's is twice it (1/ARL = 1/ARL+ + 1/ARL-)
    assert average_run_length(threshold, 0.5) == pytest.approx(2 * two_sided_arl, rel=0.02)


def test_alarm_probability_matches_a_seeded_simulation():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((100_000, 30))
    upper, _ = cusum(z, 0.5)
    simulated = float((upper.max(axis=1) > 3.0).mean())
    exact = one_sided_alarm_probability(3.0, 0.5, 30)
    assert abs(simulated - exact) < 4 * np.sqrt(exact * (1 - exact) / 100_000)


@pytest.mark.parametrize("horizon", [14, 30, 90])
def test_calibrated_threshold_holds_the_false_alarm_rate(horizon):
    h = calibrate_cusum_threshold(horizon, 0.05, 0.5)
    assert one_sided_alarm_probability(h, 0.5, horizon) == pytest.approx(0.025, abs=1e-5)
    rng = np.random.default_rng(horizon)
    upper, lower = cusum(rng.standard_normal((40_000, horizon)), 0.5)
    rate = float(((upper > h) | (lower > h)).any(axis=1).mean())
    # the union bound: at most 5%, and not far below (the two sides rarely alarm together)
    assert 0.04 < rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 40_000)


def test_cusum_recursion_written_out():
    upper, lower = cusum(np.array([1.0, 2.0, -3.0, 0.5]), 0.5)
    np.testing.assert_allclose(upper, [0.5, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(lower, [0.0, 0.0, 2.5, 1.5])


def test_predictive_moments_are_beta_binomial():
    # one arm, all events in: the sum is Beta-Binomial(n, alpha, beta) (scipy.stats.betabinom)
    mean, var = predict_reward(np.array([3.0]), np.array([40.0]), np.array([250]))
    assert mean == pytest.approx(stats.betabinom.mean(250, 3, 40))
    assert var == pytest.approx(stats.betabinom.var(250, 3, 40))


def test_predictive_moments_with_partial_arrival_match_a_simulation():
    rng = np.random.default_rng(1)
    alpha, beta, sends, arrival = np.array([5.0, 2.0]), np.array([50.0, 30.0]), np.array([300, 100]), 0.6
    theta = rng.beta(alpha, beta, size=(200_000, 2))
    y = rng.binomial(sends, arrival * theta).sum(axis=1)
    mean, var = predict_reward(alpha, beta, sends, arrival)
    assert mean == pytest.approx(y.mean(), rel=0.01)
    assert var == pytest.approx(y.var(), rel=0.02)


def _fixed_split_days(rng, seeds, days, sends, rates, change_day=None, new_rates=None):
    """Residuals of a fixed three-way split judged by its Beta(1, 1) posterior of the days before,
    vectorised over seeds: shape (seeds, days - 1), from the second day (the first has no data to be
    judged by)."""
    rates = np.asarray(rates)
    successes = np.zeros((seeds, rates.size))
    trials = np.zeros((seeds, rates.size))
    z = np.empty((seeds, days))
    for d in range(days):
        truth = rates if change_day is None or d < change_day else np.asarray(new_rates)
        y = rng.binomial(sends, truth, size=(seeds, rates.size))
        a, b = 1 + successes, 1 + trials - successes
        mean = a / (a + b)
        v = a * b / ((a + b) ** 2 * (a + b + 1))
        predicted = (sends * mean).sum(axis=1)
        variance = (sends * mean * (1 - mean) + sends * (sends - 1) * v).sum(axis=1)
        z[:, d] = (y.sum(axis=1) - predicted) / np.sqrt(variance)
        successes += y
        trials += sends
    return z[:, 1:]


@pytest.mark.parametrize("rates", [[0.05, 0.04, 0.06], [0.3, 0.2, 0.25]])
def test_prequential_residuals_of_a_stationary_split_stay_near_the_false_alarm_rate(rates):
    # 4,000 seeded experiments judged on 30 days: binomial residuals are close enough to normal that
    # the rate stays within sampling error (3 sd) of the calibrated 5%
    z = _fixed_split_days(np.random.default_rng(2), 4000, 31, 1000, rates)
    h = calibrate_cusum_threshold(30)
    upper, lower = cusum(z)
    rate = float(((upper > h) | (lower > h)).any(axis=1).mean())
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 4000)


def test_a_change_of_the_rates_is_detected_within_two_days():
    # every rate falls by about a third on day 10 (column 9 of the residuals, which start on day 1)
    z = _fixed_split_days(np.random.default_rng(3), 200, 21, 1000, [0.05, 0.04, 0.06], 10, [0.03, 0.03, 0.04])
    h = calibrate_cusum_threshold(20)
    upper, lower = cusum(z)
    alarm = (upper > h) | (lower > h)
    assert alarm[:, :9].any(axis=1).mean() <= 0.05
    assert alarm[:, 9:11].any(axis=1).mean() >= 0.95


def test_monitor_reports_points_and_the_first_alarm():
    days = [DriftDay(d, 1, 1000, 50.0, 49.0, 50.0 + (0 if d < 5 else -50)) for d in range(8)]
    report = monitor_drift(days, horizon=30)
    assert report.alert and report.first_alarm_day == 5
    assert [p.alarm for p in report.points] == [False] * 5 + [True] * 3
    assert report.points[5].residual == pytest.approx(-50 / 7)
    assert report.threshold == pytest.approx(calibrate_cusum_threshold(30))
    out = report.to_dict()
    assert out["alert"] is True and len(out["points"]) == 8 and out["detector"].startswith("two-sided CUSUM")
    quiet = monitor_drift(days[:5], horizon=30)
    assert not quiet.alert and quiet.first_alarm_day is None


@pytest.mark.parametrize(("call", "message"), [
    (lambda: monitor_drift([DriftDay(0, 1, 10, 1.0, 0.0, 1.0)]), r"days\[0\].variance: must be positive"),
    (lambda: monitor_drift([DriftDay(0, 1, 10, np.nan, 1.0, 1.0)]), r"days\[0\]: predicted and observed"),
    (lambda: calibrate_cusum_threshold(0), "horizon: expected a whole number"),
    (lambda: calibrate_cusum_threshold(10, 1.5), "false_alarm_rate: must lie in"),
    (lambda: predict_reward(np.array([1.0]), np.array([0.0]), np.array([3])), "alpha and beta > 0"),
    (lambda: predict_reward(np.array([1.0]), np.array([1.0]), np.array([3]), 1.5), "arrival: must lie"),
])
def test_bad_input(call, message):
    with pytest.raises(AnalysisInputError, match=message):
        call()


def test_thompson_allocated_days_stay_near_the_false_alarm_rate():
    # adaptive allocation: each day's 1,000 sends are split by each arm's Thompson probability (64
    # posterior draws per experiment), vectorised over 2,000 seeded experiments of 31 days; the
    # prediction of a day is conditional on its allocation, so the residuals stay standardised
    rng = np.random.default_rng(4)
    seeds, days, sends, rates = 2000, 31, 1000, np.array([0.05, 0.04, 0.06])
    successes, trials = np.zeros((seeds, 3)), np.zeros((seeds, 3))
    z = np.empty((seeds, days - 1))
    for d in range(days):
        a, b = 1 + successes, 1 + trials - successes
        draws = rng.beta(a[:, None, :], b[:, None, :], size=(seeds, 64, 3))
        share = np.stack([(draws.argmax(axis=2) == j).mean(axis=1) for j in range(3)], axis=1)
        share = 0.01 + 0.97 * share  # a floor, as the policies keep
        first = rng.binomial(sends, share[:, 0])  # a multinomial split, one arm at a time
        second = rng.binomial(sends - first, share[:, 1] / (1 - share[:, 0]))
        n = np.stack([first, second, sends - first - second], axis=1)
        y = rng.binomial(n, rates)
        if d > 0:
            mean = a / (a + b)
            v = a * b / ((a + b) ** 2 * (a + b + 1))
            predicted = (n * mean).sum(axis=1)
            variance = (n * mean * (1 - mean) + n * (n - 1) * v).sum(axis=1)
            z[:, d - 1] = (y.sum(axis=1) - predicted) / np.sqrt(variance)
        successes += y
        trials += n
    h = calibrate_cusum_threshold(30)
    upper, lower = cusum(z)
    rate = float(((upper > h) | (lower > h)).any(axis=1).mean())
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / seeds)


def test_many_days_are_predicted_as_each_day_alone() -> None:
    rng = np.random.default_rng(11)
    alpha, beta = rng.uniform(0.5, 50, (40, 3)), rng.uniform(0.5, 500, (40, 3))
    sends = rng.integers(0, 300, (40, 3)).astype(float)
    means, variances = predict_rewards(alpha, beta, sends)
    for day in range(40):
        assert (means[day], variances[day]) == predict_reward(alpha[day], beta[day], sends[day])
    with pytest.raises(AnalysisInputError, match="alpha and beta > 0"):
        predict_rewards(alpha, -beta, sends)


def _alarm_probability_step_by_step(threshold, reference, horizon):
    """The Brook & Evans chain written out: every step a product with the matrix built cell by cell."""
    m = 400
    delta = threshold / (m - 0.5)
    centres = np.arange(m) * delta
    edges = (np.arange(m + 1) - 0.5) * delta
    cdf = stats.norm.cdf(edges[None, :] - centres[:, None] + reference)
    transition = np.diff(cdf, axis=1)
    transition[:, 0] = cdf[:, 1]
    state = np.zeros(m)
    state[0] = 1.0
    for _ in range(horizon):
        state = state @ transition
    return 1.0 - state.sum()


@pytest.mark.parametrize("threshold", [0.3, 2.0, 4.0, 9.4, 12.0])
def test_alarm_probability_equals_the_chain_written_out(threshold):
    # the chain is stepped until its surviving mass shrinks by a settled factor, then extrapolated
    for horizon in (1, 5, 30, 90, 500, 2000, 5000):
        assert one_sided_alarm_probability(threshold, 0.5, horizon) == pytest.approx(
            _alarm_probability_step_by_step(threshold, 0.5, horizon), abs=1e-9, rel=0)


@pytest.mark.parametrize(("horizon", "rate"),
                         [(1, 0.05), (3, 0.05 / 6), (30, 0.05), (90, 0.05 / 6), (400, 0.05)])
def test_calibrated_threshold_is_the_point_plain_bisection_ends_on(horizon, rate):
    def alarm(h):
        return one_sided_alarm_probability(h, 0.5, horizon)

    low, high = 0.0, 1.0
    while alarm(high) > rate / 2:
        low, high = high, 2 * high
    while high - low > 1e-6:
        middle = (low + high) / 2
        low, high = (middle, high) if alarm(middle) > rate / 2 else (low, middle)
    assert calibrate_cusum_threshold.__wrapped__(horizon, rate, 0.5) == high


def test_one_path_equals_a_row_of_many():
    # a single path is stepped on Python floats, many paths by numpy: the same recursion, the same values
    z = np.random.default_rng(4).standard_normal((3, 500)) * 2
    upper, lower = cusum(z, 0.5)
    for row in range(3):
        one_up, one_down = cusum(z[row], 0.5)
        np.testing.assert_array_equal(one_up, upper[row])
        np.testing.assert_array_equal(one_down, lower[row])
