"""Each warning fires where its weakness is, and only there."""

from __future__ import annotations

import pytest

from analysis.adaptive import estimate_arm_values
from analysis.adaptive_log import ArmBatchSums, PolicyBatch
from analysis.adaptive_warnings import check_adaptive_estimates
from analysis.errors import AnalysisInputError


def _batch(version: int, arm_to_cell: dict[str, tuple[int, float, float]]) -> PolicyBatch:
    """arm -> (decisions, reward sum, propensity); rewards binary."""
    return PolicyBatch(version, {
        arm: ArmBatchSums.from_constant_propensity(n, s, s, p) for arm, (n, s, p) in arm_to_cell.items()
    })


def _kinds(log, **kwargs) -> set[tuple[str, str]]:
    estimates = estimate_arm_values(log, arms=kwargs.pop("arms", None))
    return {(w.kind, w.arm) for w in check_adaptive_estimates(log, estimates, **kwargs)}


HEALTHY = [_batch(v, {"a": (1500, 150.0, 0.5), "b": (1500, 160.0, 0.5)}) for v in (1, 2, 3)]


def test_a_healthy_log_has_no_warning() -> None:
    assert _kinds(HEALTHY, floor=0.01) == set()


def test_an_arm_at_the_floor_that_the_policy_stopped_sending() -> None:
    log = [
        _batch(1, {"a": (1500, 150.0, 0.5), "b": (1500, 120.0, 0.5)}),
        _batch(2, {"a": (2700, 270.0, 0.9), "b": (300, 20.0, 0.1)}),
        _batch(3, {"a": (2970, 300.0, 0.99), "b": (30, 2.0, 0.01)}),
        _batch(4, {"a": (2975, 300.0, 0.99), "b": (25, 2.0, 0.01)}),
    ]
    kinds = _kinds(log, floor=0.01)
    assert ("propensity_floor", "b") in kinds
    assert ("few_decisions", "b") in kinds
    assert ("arm_stopped", "b") in kinds
    assert not {k for k in kinds if k[1] == "a"}
    message = next(w.message for w in check_adaptive_estimates(log, estimate_arm_values(log), floor=0.01)
                   if w.kind == "arm_stopped")
    assert "versions that still sent it (1, 2)" in message
    # without a known floor, the floor warning cannot be given; the others stay
    assert ("propensity_floor", "b") not in _kinds(log)


def test_small_effective_sample_size_and_an_arm_without_decisions() -> None:
    log = [_batch(1, {"a": (3000, 300.0, 0.98), "b": (60, 3.0, 0.02)})]
    kinds = _kinds(log, arms=["a", "b", "c"], min_effective_n=100)
    assert ("small_effective_n", "b") in kinds
    assert ("no_support", "c") in kinds
    assert ("small_effective_n", "a") not in kinds


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"floor": 1.5}, "floor"), ({"stopped_share": 0}, "stopped_share"),
])
def test_bad_thresholds_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        check_adaptive_estimates(HEALTHY, estimate_arm_values(HEALTHY), **kwargs)
