"""Frequency caps: at most ``max_sends`` per ``per_days`` across the experiments of a channel, counted
from SendLab's own log, and held across concurrent batches, workers and processes on both databases."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from experiments.errors import SpecError
from experiments.frequency import Frequency, check_cap
from experiments.group_commit import GroupCommitError
from experiments.sends import write_decisions
from experiments.service import ExperimentService
from experiments.service import assignment as assignment_module
from experiments.store import decisions_table, make_engine
from experiments.store.tables import frequency_table
from tests.experiments.conftest import Clock, make_spec

CAP = {"max_sends": 2, "per_days": 7}


def sent_per_recipient(engine: Engine) -> Counter[str]:
    d = decisions_table
    with engine.connect() as conn:
        rows = conn.execute(
            select(d.c.recipient_id, func.count())
            .where(d.c.reason != "frequency_cap")
            .group_by(d.c.recipient_id)
        )
        return Counter({rid: n for rid, n in rows})


def test_a_cap_counts_across_the_experiments_of_a_channel(service: ExperimentService, clock: Clock) -> None:
    service.create(make_spec(key="a", channel="news", frequency=CAP))
    service.create(make_spec(key="b", channel="news", frequency=CAP))
    service.create(make_spec(key="other", channel="promo", frequency=CAP))
    assert service.assign("a", "r", {}).reason != "frequency_cap"
    clock.advance(days=1)
    assert service.assign("b", "r", {}).reason != "frequency_cap"
    clock.advance(days=1)
    capped = service.assign("a", "r", {})
    assert (capped.reason, capped.variants, capped.send_at) == ("frequency_cap", {}, None)
    assert service.assign("other", "r", {}).reason != "frequency_cap"  # another channel
    assert service.assign("a", "s", {}).reason != "frequency_cap"  # another recipient
    clock.advance(days=5, minutes=1)  # the first send is 7 days old
    assert service.assign("b", "r", {}).reason != "frequency_cap"
    summary = service.summarize("a")
    assert summary.fallbacks == {"frequency_cap": 1}  # logged, never learned from or compared


def test_without_a_channel_the_cap_is_the_experiments_own(service: ExperimentService) -> None:
    service.create(make_spec(key="a", frequency={"max_sends": 1, "per_days": 1}))
    service.create(make_spec(key="b", frequency={"max_sends": 1, "per_days": 1}))
    assert [d.reason for d in service.assign_batch("a", [("r", {}), ("r", {})])][1] == "frequency_cap"
    assert service.assign("b", "r", {}).reason != "frequency_cap"


def test_a_retried_send_is_not_counted_again(service: ExperimentService) -> None:
    service.create(make_spec(key="a", frequency={"max_sends": 1, "per_days": 1}))
    first = service.assign_batch("a", [("r", {}), ("s", {})], send_id="monday")
    again = service.assign_batch("a", [("r", {}), ("s", {}), ("r", {})], send_id="monday")
    r, s = first[0].decision_id, first[1].decision_id
    assert [d.decision_id for d in again] == [r, s, r]
    assert {d.reason for d in again} != {"frequency_cap"}
    assert service.assign_batch("a", [("r", {})], send_id="tuesday")[0].reason == "frequency_cap"


def test_scheduled_sends_count_on_either_side(service: ExperimentService) -> None:
    send_time = {"hours": [9], "timezone_attr": "tz", "default_timezone": "UTC"}
    slots = {"subject": {"variants": [{"id": "plain", "content": "Hi"}]}}
    service.create(make_spec(key="t", slots=slots, design={"type": "ab"}, send_time=send_time,
                             frequency={"max_sends": 1, "per_days": 2}))
    assert service.assign("t", "r", {}, send_date=date(2026, 3, 10)).send_at is not None
    # a send scheduled a day earlier would put two sends within 2 days
    assert service.assign("t", "r", {}, send_date=date(2026, 3, 9)).reason == "frequency_cap"
    assert service.assign("t", "r", {}, send_date=date(2026, 3, 13)).reason != "frequency_cap"


def test_the_spec_checks_the_cap() -> None:
    for bad, path in [({"max_sends": 0, "per_days": 1}, "frequency.max_sends"),
                      ({"max_sends": 1, "per_days": 0}, "frequency.per_days"),
                      ({"max_sends": 1}, "frequency.per_days")]:
        with pytest.raises(SpecError) as info:
            make_spec(key="a", frequency=bad)
        assert any(p.path == path for p in info.value.problems), info.value.problems
    with pytest.raises(SpecError):
        make_spec(key="a", channel="news", program="welcome")


def test_check_cap_matches_a_count_of_every_window() -> None:
    """Against brute force: after a sequence of attempted sends (in any order), no window of
    ``per_days`` holds more than ``max_sends`` allowed sends."""
    import numpy as np

    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1)
    for _ in range(200):
        cap = Frequency(max_sends=int(rng.integers(1, 4)), per_days=float(rng.integers(1, 5)))
        sends: list[datetime] = []
        for hours in rng.integers(0, 24 * 20, size=15):
            at = start + timedelta(hours=int(hours))
            check = check_cap(sends, at, cap)
            sends = check.sends
        for s in sends:  # every window starting at a send (the fullest windows start at one)
            assert sum(1 for t in sends if s <= t < s + timedelta(days=cap.per_days)) <= cap.max_sends


def _hammer(service: ExperimentService, worker: int, rounds: int) -> None:
    for r in range(rounds):
        key = "a" if (worker + r) % 2 else "b"
        recipients = [(f"r{(worker * 7 + r * 3 + i) % 40}", {}) for i in range(25)]
        service.assign_batch(key, recipients)


def in_threads(n: int, work: Callable[[int], None], on_error: Callable[[], None] = lambda: None) -> None:
    """Run ``work(0)`` ... ``work(n - 1)`` in threads, wait for all, and fail with their errors if any
    raised (``on_error`` is called in the thread that raised, to release the others)."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # reported below
            errors.append(exc)
            on_error()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_caps_hold_across_concurrent_workers(engine: Engine, db_url: str, clock: Clock) -> None:
    setup = ExperimentService(engine, clock=clock, seed=1)
    cap = {"max_sends": 3, "per_days": 1}
    setup.create(make_spec(key="a", channel="news", frequency=cap))
    setup.create(make_spec(key="b", channel="news", frequency=cap))
    workers = [ExperimentService(make_engine(db_url), clock=clock, seed=i) for i in range(6)]
    in_threads(len(workers), lambda i: _hammer(workers[i], i, 6))
    sent = sent_per_recipient(engine)
    assert sent and max(sent.values()) == 3  # every recipient was tried far more than 3 times
    assert set(sent.values()) == {3}
    for w in workers:
        w.engine.dispose()


def _process_worker(db_url: str, worker: int) -> None:  # pragma: no cover - runs in a child process
    engine = make_engine(db_url)
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    _hammer(ExperimentService(engine, clock=clock, seed=worker), worker, 4)
    engine.dispose()


def test_caps_hold_across_processes(engine: Engine, db_url: str, clock: Clock) -> None:
    setup = ExperimentService(engine, clock=clock, seed=1)
    cap = {"max_sends": 2, "per_days": 1}
    setup.create(make_spec(key="a", channel="news", frequency=cap))
    setup.create(make_spec(key="b", channel="news", frequency=cap))
    context = multiprocessing.get_context("fork")  # the child builds its own engine
    processes = [context.Process(target=_process_worker, args=(db_url, i)) for i in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=300)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    sent = sent_per_recipient(engine)
    assert sent and set(sent.values()) == {2}



def recorded_sends(engine: Engine, scope: str) -> dict[str, int]:
    """The sends ``frequency_counts`` holds per recipient of ``scope``."""
    with engine.connect() as conn:
        rows = conn.execute(select(frequency_table.c.recipient_id, frequency_table.c.sends)
                            .where(frequency_table.c.scope == scope))
        return {rid: len(sends) for rid, sends in rows}


def test_racing_retries_of_a_send_count_once(engine: Engine, db_url: str, clock: Clock) -> None:
    ExperimentService(engine, clock=clock, seed=1).create(
        make_spec(key="a", frequency={"max_sends": 50, "per_days": 1})
    )
    workers = [ExperimentService(make_engine(db_url), clock=clock, seed=i) for i in range(2)]
    rounds = 12
    start = threading.Barrier(len(workers))
    answers: list[list[list[str]]] = [[] for _ in workers]

    def run(i: int) -> None:
        for n in range(rounds):
            start.wait(timeout=60)  # both post send n at once: each may find nothing stored yet
            batch = workers[i].assign_batch("a", [("r", {}), (f"s{n}", {})], send_id=f"send-{n}")
            answers[i].append([d.decision_id for d in batch])

    in_threads(len(workers), run, on_error=start.abort)
    assert answers[0] == answers[1]  # both retries answered with the one stored decision
    assert recorded_sends(engine, "experiment:a") == {"r": rounds} | {f"s{n}": 1 for n in range(rounds)}
    assert sent_per_recipient(engine)["r"] == rounds
    for w in workers:
        w.engine.dispose()


def test_a_failed_write_leaves_no_count(
    service: ExperimentService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.create(make_spec(key="a", frequency={"max_sends": 1, "per_days": 1}))

    def write_then_fail(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        write_decisions(conn, rows)  # the decisions and the counts are in the transaction, then it fails
        raise OSError("the disk is full")

    monkeypatch.setattr(assignment_module, "write_decisions", write_then_fail)
    for send_id in (None, "monday"):
        with pytest.raises(GroupCommitError, match="the disk is full"):
            service.assign_batch("a", [("r", {}), ("s", {})], send_id=send_id)
    assert sent_per_recipient(engine) == Counter()
    assert set(recorded_sends(engine, "experiment:a").values()) <= {0}
    monkeypatch.undo()
    assert {d.reason for d in service.assign_batch("a", [("r", {})], send_id="monday")} != {"frequency_cap"}
    assert recorded_sends(engine, "experiment:a")["r"] == 1
