"""The summary statistics the store fills are the analysis's own types and merge with ``+``: the
statistics of two groups of decisions added up equal those of the decisions pooled (checked against
numpy on the raw values)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.stats import RegressionStats, SampleStats
from experiments.store.segments import CovariateStats
from experiments.store.summaries import GroupStats

rewards = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=0, max_size=30)
TYPES = ("click", "conversion")


def group_of(values: list[float], clicks: int, explored: int) -> GroupStats:
    y = np.asarray(values, dtype=float)
    reward = SampleStats(len(y), float(y.sum()), float(y @ y), float(np.sum(y**3)))
    return GroupStats(reward, {"click": clicks, "conversion": 0}, explored)


@given(rewards, rewards, st.integers(0, 30), st.integers(0, 30))
def test_group_stats_of_two_groups_add_up_to_those_of_the_pooled_decisions(
    a: list[float], b: list[float], clicks_a: int, clicks_b: int
) -> None:
    merged = group_of(a, clicks_a, 1) + group_of(b, clicks_b, 2)
    pooled = np.asarray(a + b, dtype=float)
    assert merged.decisions == len(pooled)
    assert merged.reward.sum == pytest.approx(pooled.sum(), abs=1e-6)
    assert merged.reward.sum_squares == pytest.approx(pooled @ pooled, rel=1e-9, abs=1e-6)
    assert merged.reward.sum_cubes == pytest.approx(np.sum(pooled**3), rel=1e-9, abs=1e-3)
    assert merged.event_counts == {"click": clicks_a + clicks_b, "conversion": 0}
    assert merged.explored == 3
    assert GroupStats.empty(TYPES) + merged == merged


@given(rewards, rewards, st.integers(0, 5), st.integers(0, 5))
def test_covariate_stats_add_up_to_those_of_the_pooled_decisions(
    y_a: list[float], y_b: list[float], missing_a: int, missing_b: int
) -> None:
    x_a, x_b = [v / 2 + 1 for v in y_a], [v / 3 - 1 for v in y_b]
    a = CovariateStats(len(y_a) + missing_a, RegressionStats.from_values(x_a, y_a))
    b = CovariateStats(len(y_b) + missing_b, RegressionStats.from_values(x_b, y_b))
    merged = a + b
    pooled = RegressionStats.from_values(x_a + x_b, y_a + y_b)
    assert merged.decisions == len(y_a) + len(y_b) + missing_a + missing_b
    assert merged.xy.n == pooled.n
    for name in ("sum_x", "sum_y", "sum_x_squares", "sum_y_squares", "sum_xy"):
        assert getattr(merged.xy, name) == pytest.approx(getattr(pooled, name), rel=1e-9, abs=1e-6)
