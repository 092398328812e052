"""Segments: per-segment results with one correction across all of them, and the warning."""

from __future__ import annotations

import pytest
from statsmodels.stats.multitest import multipletests

from analysis.errors import AnalysisInputError
from analysis.results import ArmData
from analysis.segments import analyze_segments
from analysis.stats import SampleStats


def _arms(x_a: int, x_b: int, n: int = 5000) -> list[ArmData]:
    return [ArmData(v, n, {"click": x, "open": 2 * x}, SampleStats(n, float(x), float(x)), 0.5)
            for v, x in (("plain", x_a), ("urgent", x_b))]


def test_segments_are_corrected_across_all_comparisons() -> None:
    seg = {"mobile": _arms(400, 470), "desktop": _arms(410, 405), "tablet": _arms(390, 420)}
    r = analyze_segments("subject", "device", seg, "plain", metrics=["open", "click"], value_metric=None,
                         correction="bh", draws=500)
    assert set(r.segments) == {"mobile", "desktop", "tablet"} and len(r.rows) == 6
    ref = multipletests([row.p_value for row in r.rows], method="fdr_bh")[1]
    assert [row.p_value_adjusted for row in r.rows] == pytest.approx(ref, abs=1e-12)
    assert r.segments["mobile"].comparison("urgent", "click").p_value == r.rows[1].p_value
    assert "3 segments" in r.warning and "6 tests" in r.warning
    assert r.to_dict()["rows"][0]["segment"] == "mobile"


def test_no_segments() -> None:
    with pytest.raises(AnalysisInputError, match="segment_to_arms"):
        analyze_segments("s", "device", {}, "plain", metrics=["click"])
