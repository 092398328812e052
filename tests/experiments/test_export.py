"""The decision log exported in chunks: the same decisions and rewards as the one-piece export."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from tests.experiments.conftest import Clock, make_spec


@pytest.mark.parametrize("chunk_rows", [1, 7, 250, 5000])
def test_chunks_hold_the_one_piece_export(service: ExperimentService, clock: Clock, chunk_rows: int) -> None:
    service.create(make_spec(design={"type": "bandit", "policy": "thompson"}, holdout=0.1,
                             reward={"events": {"click": 1.0}}))
    rng = np.random.default_rng(5)
    decisions = []
    for wave in range(3):  # several sends, a clock tick apart: the export is in time order
        decisions += service.assign_batch("spring", [(f"r{wave}-{i}", {}) for i in range(80)])
        clock.advance(minutes=5)
    clicked = [d for d in decisions if d.reason == "policy" and rng.random() < 0.3]
    service.record_outcomes([OutcomeEvent(f"e{i}", d.decision_id, "click", None, clock.now)
                             for i, d in enumerate(clicked)])
    whole = service.export_log("spring")
    chunks = list(service.export_log_chunks("spring", chunk_rows))
    assert all(0 < len(c) <= chunk_rows for c in chunks)
    assert [e for c in chunks for e in c] == whole
    summary = service.export_log_summary("spring")
    assert summary.rows == len(whole) == sum(d.reason == "policy" for d in decisions)
    assert summary.arms == [{"subject": s, "cta": c} for s in ("plain", "urgent") for c in ("shop", "see")]
    assert {e.decision_id for e in whole if e.reward == 1.0} == {d.decision_id for d in clicked}
    assert all(summary.arms[e.arm] == e.variants for e in whole)
