"""A results answer is one consistent snapshot of the log: decisions and outcomes committed while it
is being read are in none of its numbers (the summary, the adaptive analysis and the drift monitor's
days alike), on SQLite and on PostgreSQL.

The write is put between two of the answer's own queries (an engine event runs it, from another
thread, right after the answer's first query over the decisions), so the test does not depend on
timing: read without one snapshot, the later queries would count the new decisions and clicks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from experiments.models import OutcomeEvent
from experiments.result_analysis import ExperimentResults
from experiments.service import ExperimentService
from tests.experiments.conftest import Clock, make_spec
from tests.experiments.test_learning import thompson_spec

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


@contextmanager
def write_between_queries(engine: Engine, writes: Callable[[], None]) -> Iterator[dict[str, Any]]:
    """Within the block, run ``writes`` (committed, from another thread) right after the first query
    over the decisions that this thread executes; the state says whether it ran and what it raised."""
    reader = threading.current_thread()
    state: dict[str, Any] = {"written": False, "error": None}

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if state["written"] or threading.current_thread() is not reader or "FROM decisions" not in statement:
            return
        state["written"] = True

        def write() -> None:
            try:
                writes()
            except Exception as exc:  # reported by the caller: the test must not pass without the write
                state["error"] = exc

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=60)

    event.listen(engine, "after_cursor_execute", hook)
    try:
        yield state
    finally:
        event.remove(engine, "after_cursor_execute", hook)


def test_a_results_answer_reads_one_snapshot_while_decisions_and_outcomes_are_written(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(make_spec())
    send(service, "a")
    with write_between_queries(engine, lambda: send(service, "b")) as state:
        during = service.results("spring")
    assert state["written"] and state["error"] is None, state
    # the answer holds the first batch only, in every one of its sums
    assert totals(during) == (BATCH, BATCH, BATCH, BATCH)
    # the second batch was committed: the next answer counts it
    assert totals(service.results("spring")) == (2 * BATCH, 2 * BATCH, 2 * BATCH, 2 * BATCH)


def test_the_adaptive_and_drift_blocks_read_the_same_snapshot_as_the_summary(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    """A bandit: a first send learned, a second send chosen by the learned policy whose reward window
    has closed (so the drift monitor judges its day). The writer adds clicks to that second send and a
    third send; the answer read meanwhile counts neither, in any block."""
    service.create(thompson_spec("bandit"))

    def assign(prefix: str) -> list[Any]:
        return service.assign_batch("bandit", [(f"{prefix}{i}", {}) for i in range(BATCH)])

    def click(decisions: list[Any], prefix: str) -> None:
        at = clock.now + timedelta(hours=1)
        service.record_outcomes([OutcomeEvent(f"{prefix}{d.decision_id}", d.decision_id, "click", None, at)
                                 for d in decisions])

    first = assign("a")
    click(first[: BATCH // 2], "c1-")
    clock.advance(hours=25)
    service.learn("bandit")
    second = assign("b")
    sent_second = clock.now
    click(second[: BATCH // 4], "c2-")
    clock.advance(hours=49)  # the second send's day and window are over: its day is judged

    def writes() -> None:
        at = sent_second + timedelta(hours=2)
        late = [OutcomeEvent(f"c3-{d.decision_id}", d.decision_id, "click", None, at)
                for d in second[BATCH // 4 :]]
        service.record_outcomes(late)
        click(assign("c"), "c4-")

    def blocks(results: ExperimentResults) -> tuple[int, int, list[tuple[int, float]]]:
        assert results.adaptive is not None and results.drift is not None
        return (totals(results)[0], results.adaptive.decisions,
                [(p.decisions, p.observed) for p in results.drift.total.points])

    before = blocks(service.results("bandit", blocks=True))
    assert before == (2 * BATCH, 2 * BATCH, [(BATCH, BATCH // 4)])
    with write_between_queries(engine, writes) as state:
        during = service.results("bandit", blocks=True)
    assert state["written"] and state["error"] is None, state
    assert blocks(during) == before
    # committed: the next answer counts the third send and the second send's late clicks
    assert blocks(service.results("bandit", blocks=True)) == (3 * BATCH, 3 * BATCH, [(BATCH, BATCH)])
