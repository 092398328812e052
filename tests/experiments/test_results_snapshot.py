"""A results answer is one consistent snapshot of the log: decisions and outcomes committed while it
is being read are in none of its numbers, on SQLite and on PostgreSQL alike.

The write is put between two of the answer's own queries (an engine event runs it, from another
thread, right after the answer's first query over the decisions), so the test does not depend on
timing: read without one snapshot, the later queries would count the new decisions and clicks.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from experiments.models import OutcomeEvent
from experiments.result_analysis import ExperimentResults
from experiments.service import ExperimentService
from tests.experiments.conftest import make_spec

BATCH = 40


def send(service: ExperimentService, prefix: str) -> None:
    """Assign a batch and post a click for every decision (two commits)."""
    decisions = service.assign_batch("spring", [(f"{prefix}{i}", {}) for i in range(BATCH)])
    service.record_outcomes([OutcomeEvent(f"{d.decision_id}-c", d.decision_id, "click") for d in decisions])


def totals(results: ExperimentResults) -> tuple[int, int, int, int]:
    """Decisions and clicks of the first slot's arms, of the daily series and of the combinations."""
    summary = results.summary
    slot = next(iter(summary.slots))
    arms = [a for a in summary.arms if a.slot == slot]
    daily = [d for d in summary.daily if d.slot == slot]
    return (
        sum(a.decisions for a in arms),
        sum(a.event_counts.get("click", 0) for a in arms),
        sum(d.event_counts.get("click", 0) for d in daily),
        sum(c.event_counts.get("click", 0) for c in summary.combinations),
    )


def test_a_results_answer_reads_one_snapshot_while_decisions_and_outcomes_are_written(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(make_spec())
    send(service, "a")
    reader = threading.current_thread()
    state: dict[str, Any] = {"armed": False, "written": False, "error": None}

    def write_between_queries(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            not state["armed"]
            or state["written"]
            or threading.current_thread() is not reader
            or "FROM decisions" not in statement
        ):
            return
        state["written"] = True

        def write() -> None:
            try:
                send(service, "b")
            except Exception as exc:  # reported below: the test must not pass without the write
                state["error"] = exc

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=60)

    event.listen(engine, "after_cursor_execute", write_between_queries)
    try:
        state["armed"] = True
        during = service.results("spring")
        state["armed"] = False
    finally:
        event.remove(engine, "after_cursor_execute", write_between_queries)
    assert state["written"] and state["error"] is None, state
    # the answer holds the first batch only, in every one of its sums
    assert totals(during) == (BATCH, BATCH, BATCH, BATCH)
    # the second batch was committed: the next answer counts it
    assert totals(service.results("spring")) == (2 * BATCH, 2 * BATCH, 2 * BATCH, 2 * BATCH)
