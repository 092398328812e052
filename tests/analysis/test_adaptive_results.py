"""analyze_adaptive: one call gives the values, comparisons, policy value and warnings, JSON-ready."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.adaptive import AS_ALLOCATED_NOTE, estimate_arm_values, slot_targets
from analysis.adaptive_aipw import estimate_arm_values_aipw, log_from_rows
from analysis.adaptive_results import analyze_adaptive
from analysis.errors import AnalysisInputError
from tests.analysis.bandit_simulations import simulate_contextual_thompson, simulate_thompson
from tests.analysis.test_adaptive_calibration import CONTEXTUAL_RATES, SEGMENT_SHARES


def test_everything_an_analyst_reads_comes_out_json_ready() -> None:
    sim = simulate_thompson([0.05, 0.07, 0.10], runs=1, batches=8, batch_size=3_000, seed=8)
    result = analyze_adaptive(sim.log(0), "0", defaults={"0": 1.0}, ddof=0, floor=0.01)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert [v["label"] for v in data["values"]] == ["0", "1", "2"]
    assert all(v["as_allocated_note"] == AS_ALLOCATED_NOTE for v in data["values"])
    assert [c["variant"] for c in data["comparisons"]] == ["1", "2"]
    assert all(c["always_valid"]["decisions"] == 24_000 for c in data["comparisons"])
    assert data["policy_value"]["defaults"]["estimate"] == data["values"][0]["estimate"]
    assert {w["kind"] for w in data["warnings"]} >= {"propensity_floor"}
    best = result.comparison("2")
    assert best.p_value < 0.05 and best.prob_beat_control > 0.975 and best.absolute_ci[0] > 0


def test_slots_of_a_multi_slot_design_are_compared_through_their_combinations() -> None:
    sim = simulate_thompson([0.05, 0.06, 0.07, 0.08], runs=1, batches=5, batch_size=4_000, seed=9)
    combos = {"0": {"subject": "plain", "cta": "shop"}, "1": {"subject": "plain", "cta": "see"},
              "2": {"subject": "urgent", "cta": "shop"}, "3": {"subject": "urgent", "cta": "see"}}
    result = analyze_adaptive(sim.log(0), "plain", targets=slot_targets(combos, "subject"), ddof=0)
    assert [v.label for v in result.values] == ["plain", "urgent"]
    (comparison,) = result.comparisons
    q = estimate_arm_values(sim.log(0), ddof=0).estimates
    assert comparison.absolute_lift == pytest.approx((q[2] + q[3]) / 2 - (q[0] + q[1]) / 2, rel=1e-12)


def test_other_estimates_of_the_same_log_can_be_passed() -> None:
    sim = simulate_contextual_thompson(CONTEXTUAL_RATES, SEGMENT_SHARES, runs=1, batches=4, batch_size=2_000,
                                       seed=10)
    rows = sim.rows(0, np.random.default_rng(0))
    log = log_from_rows(rows)
    aipw = estimate_arm_values_aipw(rows)
    result = analyze_adaptive(log, "0", estimates=aipw, ddof=0)
    assert result.method == aipw.method
    assert result.values[1].estimate == aipw.estimates[1]


def test_unknown_control_is_refused() -> None:
    sim = simulate_thompson([0.1, 0.1], runs=1, batches=2, batch_size=500, seed=1)
    with pytest.raises(AnalysisInputError, match="control: 'x' is not one of"):
        analyze_adaptive(sim.log(0), "x")
