"""The verdict's reason says what the data still allow: the leader's confidence sequence, not a constant."""

from __future__ import annotations

import re

import pytest

from analysis.results import ArmData, analyze_slot
from analysis.stats import SampleStats


def two_arms(n: int, clicks_a: int, clicks_b: int) -> list[ArmData]:
    return [ArmData(name, n, {"click": x}, SampleStats(n, float(x), float(x)), 0.5)
            for name, x in (("plain", clicks_a), ("urgent", clicks_b))]


@pytest.mark.parametrize(("n", "clicks_a", "clicks_b"), [(5_000, 500, 520), (40_000, 4_000, 4_090)])
def test_keep_running_states_the_leaders_confidence_sequence(n: int, clicks_a: int, clicks_b: int) -> None:
    r = analyze_slot("subject", two_arms(n, clicks_a, clicks_b), "plain", metrics=["click"],
                     value_metric=None, draws=1000, min_lift=0.02)
    assert r.decision.verdict == "keep running", r.decision.reason
    lead = r.comparison("urgent", "click")
    low, high = (end / lead.control_mean for end in lead.sequential.ci)
    assert f"from {low:+.1%} to {high:+.1%}" in r.decision.reason
    assert "95% confidence sequence" in r.decision.reason
    assert "2.0% cannot be ruled out" not in r.decision.reason


def test_the_range_narrows_as_data_accumulate() -> None:
    def widths(n: int, a: int, b: int) -> float:
        reason = analyze_slot("s", two_arms(n, a, b), "plain", metrics=["click"], value_metric=None,
                              draws=500).decision.reason
        low, high = (float(x) for x in re.findall(r"([+-]\d+\.\d)%", reason.split("allows")[1]))
        return high - low

    assert widths(40_000, 4_000, 4_090) < widths(5_000, 500, 520) / 2
