"""The inverse-propensity sums: from rows, from a constant propensity, merged; bad sums refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.adaptive_log import ArmBatchSums, ArrayLog, LogArrays, PolicyBatch, log_arrays
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


def _random_log(rng: np.random.Generator, batches: int, arms: tuple[str, ...]) -> list[PolicyBatch]:
    log = []
    for b in range(batches):
        arm_to_sums = {}
        for arm in arms:
            n = int(rng.integers(0, 6))
            p = rng.uniform(0.05, 1.0, n)
            arm_to_sums[arm] = ArmBatchSums.from_values(rng.integers(0, 2, n).astype(float), p)
        log.append(PolicyBatch(None if b == 0 else b + 3, arm_to_sums))
    return log


@pytest.mark.parametrize("seed", range(5))
def test_an_array_log_is_the_log_of_its_batches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    arms = ("a", "b", "c")
    log = _random_log(rng, 7, arms)
    arrays = ArrayLog(log_arrays(log, arms))
    assert len(arrays) == len(log) and list(arrays) == log and arrays[-2:] == log[-2:]
    for order in (None, arms, ("c", "a", "b"), ("b", "x", "a", "c")):
        mine, ref = log_arrays(arrays, order), log_arrays(log, order)
        assert (mine.arms, mine.versions) == (ref.arms, ref.versions)
        for name in FIELDS:
            assert np.array_equal(getattr(mine, name), getattr(ref, name)), name
    with pytest.raises(AnalysisInputError, match="not among arms"):
        log_arrays(arrays, ("a", "b"))


def _arrays_with(base: LogArrays, **changes: object) -> LogArrays:
    fields = {name: getattr(base, name).copy() for name in FIELDS}
    fields.update(changes)  # type: ignore[arg-type]
    return LogArrays(arms=base.arms, versions=base.versions, **fields)  # type: ignore[arg-type]


def test_an_array_log_refuses_what_its_batches_would() -> None:
    log = [PolicyBatch(1, {"a": ArmBatchSums.from_values([1.0, 0.0], [0.5, 0.25]),
                           "b": ArmBatchSums.from_values([0.0], [0.5])})]
    base = log_arrays(log)
    bad = {
        "n: must be a non-negative whole number": {"n": base.n - 3},
        "w_sum and w2_sum": {"w_sum": base.w_sum / 10},
        "min_propensity: must be in": {"min_propensity": base.min_propensity * 0},
        "reward_sum: must be a finite number": {"reward_sum": base.reward_sum * np.nan},
        "reward_sum_squares: must be >= 0": {"reward_sum_squares": base.reward_sum_squares - 5},
        "no decisions": {name: getattr(base, name) * 0 for name in FIELDS if name != "min_propensity"},
    }
    for message, changes in bad.items():
        with pytest.raises(AnalysisInputError, match=message):
            ArrayLog(_arrays_with(base, **changes))
    with pytest.raises(AnalysisInputError, match="appears twice"):
        ArrayLog(LogArrays(arms=base.arms, versions=(1, 1), **{
            name: np.vstack([getattr(base, name)] * 2) for name in FIELDS}))
