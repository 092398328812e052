"""The inverse-propensity sums: from rows, from a constant propensity, merged; bad sums refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.adaptive_log import ArmBatchSums, PolicyBatch, log_arrays
from analysis.errors import AnalysisInputError

FIELDS = ("n", "reward_sum", "reward_sum_squares", "w_sum", "w_reward_sum", "w2_sum", "w2_reward_sum",
          "w2_reward_squares_sum", "min_propensity")

rows = st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(0.01, 1.0)), min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(rows, rows)
def test_merged_sums_are_the_sums_of_merged_rows(first, second) -> None:
    def sums(data):
        return ArmBatchSums.from_values([r for r, _ in data], [p for _, p in data])

    merged, whole = sums(first) + sums(second), sums(first + second)
    for name in FIELDS:
        assert getattr(merged, name) == pytest.approx(getattr(whole, name), rel=1e-9, abs=1e-6)


def test_constant_propensity_equals_the_row_sums() -> None:
    rewards = np.array([0.0, 1.0, 3.5, 0.0, 2.0])
    a = ArmBatchSums.from_constant_propensity(5, float(rewards.sum()), float(rewards @ rewards), 0.2)
    b = ArmBatchSums.from_values(rewards, np.full(5, 0.2))
    for name in FIELDS:
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12)


def test_log_arrays_lay_out_batches_and_arms() -> None:
    log = [PolicyBatch(3, {"b": ArmBatchSums.from_values([1.0], [0.5])}),
           PolicyBatch(4, {"a": ArmBatchSums.from_values([0.0, 2.0], [0.25, 0.5])})]
    data = log_arrays(log)
    assert data.arms == ("b", "a") and data.versions == (3, 4)
    assert data.n.tolist() == [[1, 0], [0, 2]]
    assert data.w_sum.tolist() == [[2.0, 0.0], [0.0, 6.0]]
    assert data.min_propensity.tolist() == [[0.5, 1.0], [1.0, 0.25]]
    assert data.batch_n.tolist() == [1, 2]


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(n=-1), "n: must be a non-negative whole number"),
    (dict(n=1.5), "n: must be a non-negative whole number"),
    (dict(n=True), "n: must be a non-negative whole number"),
    (dict(reward_sum=math.nan), "reward_sum: must be a finite number"),
    (dict(w2_reward_squares_sum=-1.0), "w2_reward_squares_sum: must be >= 0"),
    (dict(min_propensity=0.0), r"min_propensity: must be in \(0, 1\]"),
    (dict(w_sum=1.0), "not sums of 1/p"),
    (dict(w2_sum=2.0), "not sums of 1/p"),
])
def test_bad_sums_are_refused(kwargs: dict, message: str) -> None:
    good = dict(n=2, reward_sum=1.0, reward_sum_squares=1.0, w_sum=4.0, w_reward_sum=2.0, w2_sum=8.0,
                w2_reward_sum=4.0, w2_reward_squares_sum=4.0, min_propensity=0.5)
    ArmBatchSums(**good)
    with pytest.raises(AnalysisInputError, match=message):
        ArmBatchSums(**{**good, **kwargs})


def test_empty_sums_must_be_zero_and_propensities_in_range() -> None:
    with pytest.raises(AnalysisInputError, match="n is 0 but some sums are not"):
        ArmBatchSums(0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(AnalysisInputError, match="propensity"):
        ArmBatchSums.from_constant_propensity(3, 1.0, 1.0, 1.5)
    with pytest.raises(AnalysisInputError, match="propensities must be in"):
        ArmBatchSums.from_values([1.0], [0.0])
    with pytest.raises(AnalysisInputError, match="2 rewards but 1 propensities"):
        ArmBatchSums.from_values([1.0, 2.0], [0.5])
