"""Summary statistics against numpy on raw data, merging, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from analysis.errors import AnalysisInputError
from analysis.stats import ProportionStats, RegressionStats, SampleStats

values = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=50)


def test_sample_stats_match_numpy() -> None:
    x = np.random.default_rng(3).lognormal(1.0, 1.2, 500)
    s = SampleStats.from_values(x)
    assert s.n == 500
    assert s.mean == pytest.approx(np.mean(x), rel=1e-12)
    assert s.variance == pytest.approx(np.var(x, ddof=1), rel=1e-9)
    assert s.variance_of_mean == pytest.approx(np.var(x, ddof=1) / 500, rel=1e-9)
    # scipy.stats.skew with bias=True is the population skewness m3 / m2**1.5
    assert s.skewness == pytest.approx(sps.skew(x, bias=True), rel=1e-8)


def test_proportion_stats_match_numpy() -> None:
    x = np.random.default_rng(4).binomial(1, 0.3, 800)
    p = ProportionStats(800, int(x.sum()))
    assert p.mean == pytest.approx(x.mean())
    assert p.variance == pytest.approx(np.var(x))  # ddof=0, the Bernoulli p(1-p)
    assert p.failures == 800 - x.sum()


def test_regression_stats_match_numpy() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    y = 2 * x + rng.normal(size=300)
    r = RegressionStats.from_values(x, y)
    assert r.covariance == pytest.approx(np.cov(x, y, ddof=1)[0, 1], rel=1e-10)
    assert r.x.variance == pytest.approx(np.var(x, ddof=1), rel=1e-10)
    assert r.y.mean == pytest.approx(y.mean(), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_merged_sample_stats_equal_stats_of_merged_data(a: list[float], b: list[float]) -> None:
    merged = SampleStats.from_values(a) + SampleStats.from_values(b)
    direct = SampleStats.from_values(a + b)
    assert merged.n == direct.n
    assert merged.mean == pytest.approx(direct.mean, rel=1e-9, abs=1e-9)
    assert merged.variance == pytest.approx(direct.variance, rel=1e-6, abs=1e-6)
    assert merged.sum_cubes == pytest.approx(direct.sum_cubes, rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_merged_regression_stats_equal_stats_of_merged_data(a: list[float], b: list[float]) -> None:
    ya, yb = [v * 0.5 + 1 for v in a], [v * -2.0 for v in b]
    merged = RegressionStats.from_values(a, ya) + RegressionStats.from_values(b, yb)
    direct = RegressionStats.from_values(a + b, ya + yb)
    assert merged.covariance == pytest.approx(direct.covariance, rel=1e-6, abs=1e-6)


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_merged_proportions(n1: int, x1: int, n2: int, x2: int) -> None:
    x1, x2 = min(x1, n1), min(x2, n2)
    merged = ProportionStats(n1, x1) + ProportionStats(n2, x2)
    assert (merged.n, merged.successes) == (n1 + n2, x1 + x2)


def test_missing_cubes_propagate_as_none() -> None:
    merged = SampleStats(2, 1.0, 1.0, 1.0) + SampleStats(2, 1.0, 1.0)
    assert merged.sum_cubes is None and merged.skewness is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SampleStats(-1, 0.0, 0.0), "SampleStats.n"),
        (lambda: SampleStats(2.5, 0.0, 0.0), "SampleStats.n"),
        (lambda: SampleStats(3, float("nan"), 1.0), "SampleStats.sum"),
        (lambda: SampleStats(3, 1.0, -1.0), "SampleStats.sum_squares"),
        (lambda: ProportionStats(10, 11), "ProportionStats.successes"),
        (lambda: ProportionStats(10, -1), "ProportionStats.successes"),
        (lambda: RegressionStats(3, 1.0, 1.0, 1.0, float("inf"), 1.0), "RegressionStats.sum_y_squares"),
    ],
)
def test_bad_inputs_name_the_field(make, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        make()
