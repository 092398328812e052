"""CUPED from summary statistics against the same adjustment on raw data (numpy, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from analysis.cuped import adjust_arms, cuped_compare, cuped_theta, fill_missing_covariate
from analysis.errors import AnalysisInputError
from analysis.stats import RegressionStats, SampleStats


def _data(seed: int, n: int = 3000, effect: float = 0.0, rho: float = 0.7):
    rng = np.random.default_rng(seed)
    x = rng.poisson(3.0, (2, n)).astype(float)  # e.g. clicks in the previous 30 days
    noise = rng.normal(size=(2, n))
    z = (x - 3.0) / np.sqrt(3.0)
    y = 5 + 2 * (rho * z + np.sqrt(1 - rho**2) * noise)
    y[1] += effect
    return x, y


def test_adjusted_arms_equal_the_adjustment_on_raw_data() -> None:
    x, y = _data(1)
    arms = [RegressionStats.from_values(x[k], y[k]) for k in (0, 1)]
    xs, ys = x.ravel(), y.ravel()
    theta = np.cov(xs, ys, ddof=1)[0, 1] / np.var(xs, ddof=1)
    assert cuped_theta(arms) == pytest.approx(theta, rel=1e-10)
    adjusted = adjust_arms(arms)
    for k in (0, 1):
        raw = y[k] - theta * (x[k] - xs.mean())
        assert adjusted[k].mean == pytest.approx(raw.mean(), rel=1e-10)
        assert adjusted[k].variance == pytest.approx(np.var(raw, ddof=1), rel=1e-8)


def test_comparison_matches_welch_on_the_adjusted_raw_data() -> None:
    x, y = _data(2, effect=0.1)
    r = cuped_compare(RegressionStats.from_values(x[0], y[0]), RegressionStats.from_values(x[1], y[1]))
    xs = x.ravel()
    raw = y - r.theta * (x - xs.mean())
    ref = sps.ttest_ind(raw[1], raw[0], equal_var=False)
    assert r.test.statistic == pytest.approx(ref.statistic, abs=1e-8)
    assert r.test.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    ci = ref.confidence_interval(0.95)
    assert r.difference.ci == pytest.approx((ci.low, ci.high), abs=1e-9)
    unadjusted = sps.ttest_ind(y[1], y[0], equal_var=False).confidence_interval(0.95)
    assert r.raw_difference.ci == pytest.approx((unadjusted.low, unadjusted.high), abs=1e-9)


def test_variance_reduction_is_about_rho_squared() -> None:
    x, y = _data(3, n=20_000, rho=0.7)
    r = cuped_compare(RegressionStats.from_values(x[0], y[0]), RegressionStats.from_values(x[1], y[1]))
    assert r.variance_reduction == pytest.approx(0.49, abs=0.02)
    width = r.difference.ci[1] - r.difference.ci[0]
    raw_width = r.raw_difference.ci[1] - r.raw_difference.ci[0]
    assert width / raw_width == pytest.approx(np.sqrt(1 - r.variance_reduction), rel=1e-3)


def test_uncorrelated_covariate_changes_little() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2, 5000)), rng.normal(size=(2, 5000))
    r = cuped_compare(RegressionStats.from_values(x[0], y[0]), RegressionStats.from_values(x[1], y[1]))
    assert abs(r.variance_reduction) < 0.01


def test_aa_false_positive_rate_with_cuped() -> None:
    rng = np.random.default_rng(5)
    runs, n = 2000, 200
    x = rng.poisson(3.0, (runs, 2, n)).astype(float)
    y = 0.8 * x + rng.normal(size=(runs, 2, n))
    sums = [x.sum(2), y.sum(2), (x * x).sum(2), (y * y).sum(2), (x * y).sum(2)]
    rejected = []
    for i in range(runs):
        arms = [RegressionStats(n, *(float(s[i, k]) for s in sums)) for k in (0, 1)]
        rejected.append(cuped_compare(*arms).test.p_value < 0.05)
    assert 0.035 <= np.mean(rejected) <= 0.065


def test_missing_covariates_filled_with_the_observed_mean_match_numpy() -> None:
    x, y = _data(6, n=500)
    known = np.random.default_rng(6).random((2, 500)) < 0.8  # 20% of units lack the covariate
    observed = [RegressionStats.from_values(x[k][known[k]], y[k][known[k]]) for k in (0, 1)]
    totals = [SampleStats.from_values(y[k]) for k in (0, 1)]
    filled = fill_missing_covariate(observed, totals)
    fill = x[known].mean()
    x_filled = np.where(known, x, fill)
    for k in (0, 1):
        ref = RegressionStats.from_values(x_filled[k], y[k])
        for name in ("n", "sum_x", "sum_y", "sum_x_squares", "sum_y_squares", "sum_xy"):
            assert getattr(filled[k], name) == pytest.approx(getattr(ref, name), rel=1e-12)
    # theta is that of the observed units alone; the units without a covariate keep their y
    xs, ys = x[known], y[known]
    assert cuped_theta(filled) == pytest.approx(np.cov(xs, ys)[0, 1] / np.var(xs, ddof=1), rel=1e-10)
    theta = cuped_theta(filled)
    for k, adjusted in enumerate(adjust_arms(filled)):
        raw = np.where(known[k], y[k] - theta * (x[k] - fill), y[k])
        assert adjusted.mean == pytest.approx(raw.mean(), rel=1e-10)
        assert adjusted.variance == pytest.approx(np.var(raw, ddof=1), rel=1e-8)
    with pytest.raises(AnalysisInputError, match=r"observed\[0\].n: \d+ is more than the arm's n = 3"):
        fill_missing_covariate([observed[0]], [SampleStats(3, 1.0, 1.0)])


def test_bad_inputs() -> None:
    with pytest.raises(AnalysisInputError, match="control: CUPED needs n >= 2"):
        cuped_compare(RegressionStats(1, 1, 1, 1, 1, 1), RegressionStats(5, 1, 1, 1, 1, 1))
    with pytest.raises(AnalysisInputError, match="arms"):
        cuped_theta([])
