"""Rollups stay equal to the log under concurrent writers and when a writer is killed mid-commit
(SQLite and PostgreSQL).

Concurrent posts of outcomes for the same decisions must not each compute the change from the same
"before" (a click counted twice, a reward added twice): the writers here post overlapping events for
one small set of decisions while others assign and learn.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from experiments.store.rollup_checks import verify_experiment
from experiments.store.rollups import DECISION_LOCK_BUCKETS, decision_lock_key, lock_keys

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 6, 1, 8, tzinfo=UTC)


def _spec(key: str) -> Any:
    return parse_spec({
        "key": key,
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "gaussian_thompson"},
        "holdout": 0.1,
        "reward": {"events": {"click": 1.0, "conversion": 4.0}, "value": "revenue", "window_hours": 2,
                   "guardrails": ["unsubscribe"]},
    })


def _run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target: Any) -> None:
        barrier.wait()
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_outcomes_for_the_same_decisions_keep_the_rollups_exact(db_url: str) -> None:
    engine = make_engine(db_url)
    create_tables(engine)
    clock = {"now": START}
    service = ExperimentService(engine, seed=11, clock=lambda: clock["now"])
    service.create(_spec("busy"))
    shared = [d.decision_id for d in service.assign_batch("busy", [(f"r{i}", {}) for i in range(12)])]
    types = ["click", "conversion", "revenue", "unsubscribe", "open"]

    def poster(worker: int) -> Any:
        def post() -> None:
            for round_ in range(15):
                kinds = [types[(worker + round_ + j) % len(types)] for j in range(len(shared))]
                events = [
                    OutcomeEvent(f"w{worker}-{round_}-{j}", d, kind,
                                 2.5 + worker if kind == "revenue" else None, START + timedelta(minutes=5))
                    for j, (d, kind) in enumerate(zip(shared, kinds, strict=True))
                ]
                events.append(OutcomeEvent(f"same-{round_}", shared[round_ % len(shared)], "click", None,
                                           START + timedelta(minutes=6)))  # one event id, every worker
                service.record_outcomes(events)
        return post

    def assigner() -> None:
        for round_ in range(15):
            service.assign_batch("busy", [(f"n{round_}-{i}", {}) for i in range(8)])

    def learner() -> None:
        for _ in range(5):
            service.learn("busy")
            time.sleep(0.01)

    clock["now"] = START + timedelta(hours=3)  # the shared decisions' windows closed: the learner takes them
    errors = _run_threads([poster(w) for w in range(4)] + [assigner, learner])
    assert errors == []
    checks = verify_experiment(engine, "busy")
    assert [c.differences for c in checks] == [[]]
    assert checks[0].decisions == 12 + 15 * 8
    with engine.connect() as conn:
        accepted = conn.execute(
            text("SELECT count(*) FROM outcomes WHERE event_id LIKE 'same-%'")).scalar_one()
        learned = conn.execute(text("SELECT sum(learned) FROM rollups")).scalar_one()
    assert accepted == 15 and learned > 0
    engine.dispose()


def writer(url: str) -> None:
    """The child process of the kill test: assign and post outcomes in a loop until killed."""
    engine = make_engine(url)
    clock = {"now": START}
    service = ExperimentService(engine, seed=int(time.time() * 1000) % 2**31, clock=lambda: clock["now"])
    round_ = 0
    while True:
        decided = service.assign_batch("killed", [(f"k{os.getpid()}-{round_}-{i}", {}) for i in range(50)])
        service.record_outcomes([
            OutcomeEvent(f"{os.getpid()}-{round_}-{i}", d.decision_id,
                         ("click", "revenue", "conversion")[i % 3], 9.5 if i % 3 == 1 else None,
                         START + timedelta(minutes=1))
            for i, d in enumerate(decided)
        ])
        round_ += 1
        print(round_, flush=True)


def test_a_writer_killed_mid_commit_leaves_the_rollups_equal_to_the_log(db_url: str) -> None:
    engine = make_engine(db_url)
    create_tables(engine)
    ExperimentService(engine, seed=1, clock=lambda: START).create(_spec("killed"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys; from tests.experiments.test_rollups_concurrency import writer; writer(sys.argv[1])"
    for delay in (0.3, 0.7):
        child = subprocess.Popen([sys.executable, "-c", code, db_url], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        child.stdout.readline()  # a first round committed: the loop is running
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    checks = verify_experiment(engine, "killed")
    assert [c.differences for c in checks] == [[]]
    assert checks[0].decisions >= 2 * 50
    engine.dispose()


def test_one_post_of_outcomes_for_twenty_thousand_decisions(db_url: str) -> None:
    # PostgreSQL keeps a transaction's advisory locks in a shared table of about 6,400 entries: a lock
    # per decision failed ("out of shared memory") somewhere past 10,000 decisions in one post
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=lambda: START)
    service.create(_spec("bulk"))
    decisions = service.assign_batch("bulk", [(f"r{i}", {}) for i in range(20_000)])
    counts = service.record_outcomes(
        [OutcomeEvent(f"e{i}", d.decision_id, "click") for i, d in enumerate(decisions)])
    assert counts.accepted == 20_000
    assert all(not check.differences for check in verify_experiment(engine, "bulk"))
    engine.dispose()


def test_the_buckets_locked_are_those_of_every_decision_named() -> None:
    # hashing stops once every bucket is taken: the set is the same as hashing every id
    few = [f"d{i}" for i in range(50)]
    many = [f"decision-{i}" for i in range(20_000)]
    assert lock_keys(few) == {decision_lock_key(d) for d in few}
    assert len(lock_keys(few)) < DECISION_LOCK_BUCKETS
    assert lock_keys(many) == {decision_lock_key(d) for d in many} == set(range(DECISION_LOCK_BUCKETS))
    assert lock_keys([]) == set()
