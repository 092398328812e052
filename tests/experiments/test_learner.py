"""The learner runs off the request path: assign and outcome posting never learn and never wait for a
learning run; the scheduled learner learns what the spec's ``design.update`` says, and only that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import experiments.learning
import experiments.service
from experiments.learner import LearnerThread, ScheduledLearner
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from tests.experiments.conftest import Clock, make_spec
from tests.experiments.test_learning import thompson_spec

ROOT = Path(__file__).resolve().parents[2]
HELD_SECONDS = 30.0  # how long a held learner waits at most (a request that waited on it fails the test)
REQUEST_SECONDS = 10.0  # how long a request may take while the learner is held


@contextmanager
def held_learning(monkeypatch: pytest.MonkeyPatch, dialect: str) -> Iterator[threading.Event]:
    """Hold every learning run until the context ends; yields the event set once a run is held.

    On PostgreSQL the run is held inside its batch transaction, after it took the experiment's learning
    lock (a row lock on the experiment) and read the snapshot. On SQLite a batch transaction holds the
    database's single write lock (``BEGIN IMMEDIATE``), which every writer waits for, so the run is held
    just before its batch transaction begins.
    """
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        assert release.wait(HELD_SECONDS), "the held learner was never released"

    if dialect == "postgresql":
        real_load = experiments.learning.load_policy

        def load_and_hold(state: bytes) -> Any:
            hold()
            return real_load(state)

        monkeypatch.setattr(experiments.learning, "load_policy", load_and_hold)
    else:
        real_batch = experiments.service.learn_one_batch

        def hold_then_batch(*args: Any) -> Any:
            hold()
            return real_batch(*args)

        monkeypatch.setattr(experiments.service, "learn_one_batch", hold_then_batch)
    try:
        yield held
    finally:
        release.set()


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()`` run in a thread; fails if it has not returned within ``seconds``."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call did not return within {seconds} s"
    assert box, "the call raised"
    return box[0]


def test_assign_and_outcomes_return_while_a_learning_run_is_held(
    service: ExperimentService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every_outcomes 1: on every call, an inline scheduler would be due and wait for the held run
    service.create(thompson_spec(update={"every_outcomes": 1, "delay_hours": 0}))
    first = within(
        REQUEST_SECONDS, lambda: service.assign_batch("subject-test", [(f"u{i}", {}) for i in range(20)])
    )
    learner = ScheduledLearner(service)
    dialect = service.engine.dialect.name
    with held_learning(monkeypatch, dialect) as held:
        within(
            REQUEST_SECONDS,
            lambda: service.record_outcomes([OutcomeEvent("c0", first[0].decision_id, "click")]),
        )
        learning = threading.Thread(target=learner.check_all, daemon=True)
        learning.start()
        assert held.wait(REQUEST_SECONDS), "the learner did not start"
        d = within(REQUEST_SECONDS, lambda: service.assign("subject-test", "during", {}))
        batch = within(
            REQUEST_SECONDS, lambda: service.assign_batch("subject-test", [("b1", {}), ("b2", {})])
        )
        counts = within(
            REQUEST_SECONDS,
            lambda: service.record_outcomes(
                [
                    OutcomeEvent("c1", d.decision_id, "click"),
                    OutcomeEvent("c2", batch[0].decision_id, "click"),
                ]
            ),
        )
        assert d.policy_version == 1 and counts.accepted == 2
        assert learning.is_alive()  # still held
    learning.join(HELD_SECONDS)
    assert not learning.is_alive()
    assert service.policy_state("subject-test")[0] == 2  # the held run went on and learned


def test_assign_and_outcomes_never_learn(service: ExperimentService, clock: Clock) -> None:
    service.create(thompson_spec(update={"every_outcomes": 1, "every_seconds": 1, "delay_hours": 0}))
    decisions = service.assign_batch("subject-test", [(f"u{i}", {}) for i in range(50)])
    clock.advance(seconds=5)
    service.record_outcomes([OutcomeEvent(f"c{i}", d.decision_id, "click") for i, d in enumerate(decisions)])
    service.assign("subject-test", "late", {})
    assert service.policy_state("subject-test")[0] == 1
    assert len(service.policy_history("subject-test")) == 1


def test_the_learner_follows_the_schedule_and_leaves_the_rest(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(thompson_spec("scheduled", update={"every_seconds": 60, "delay_hours": 0}))
    service.create(thompson_spec("on-demand", update={"delay_hours": 0}))  # no trigger: learns when asked
    service.create(thompson_spec("paused", update={"every_seconds": 60, "delay_hours": 0}))
    service.create(make_spec(key="ab"))
    for key in ("scheduled", "on-demand", "paused"):
        service.assign_batch(key, [(f"u{i}", {}) for i in range(10)])
    service.set_status("paused", "paused")
    learner = ScheduledLearner(service)
    assert learner.check_all() == []  # the snapshots are new: not due
    clock.advance(seconds=61)
    runs = learner.check_all()
    assert [(r.key, r.version_before, r.version, r.decisions) for r in runs] == [("scheduled", 1, 2, 10)]
    assert runs[0].at == clock.now
    assert learner.check_all() == []  # the run is 0 s old
    assert {k: service.policy_state(k)[0] for k in ("on-demand", "paused")} == {"on-demand": 1, "paused": 1}
    clock.advance(seconds=61)
    again = learner.check_all()  # due, nothing new: the version stays
    assert [(r.version_before, r.version, r.decisions) for r in again] == [(2, 2, 0)]


def test_a_failing_experiment_does_not_stop_the_others(
    service: ExperimentService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("broken", "fine"):
        service.create(thompson_spec(key, update={"every_seconds": 1, "delay_hours": 0}))
        service.assign_batch(key, [("u1", {})])
    clock.advance(seconds=2)
    learn = service.learn

    def failing(key: str, **options: Any) -> int:
        if key == "broken":
            raise RuntimeError("boom")
        return learn(key, **options)

    monkeypatch.setattr(service, "learn", failing)
    assert [r.key for r in ScheduledLearner(service).check_all()] == ["fine"]


def test_the_learner_thread_checks_until_stopped() -> None:
    ticks = threading.Semaphore(0)
    calls: list[int] = []

    def tick() -> None:
        calls.append(1)
        ticks.release()
        if len(calls) == 2:
            raise RuntimeError("a failing check is logged; the thread goes on")

    thread = LearnerThread(tick, 0.01)
    thread.start()
    for _ in range(4):
        assert ticks.acquire(timeout=10)
    thread.stop(10)
    assert not thread.alive and len(calls) >= 4


HOLD_IN_ANOTHER_PROCESS = """
    import sys, time
    from pathlib import Path
    import experiments.learning
    from experiments.service import ExperimentService
    from experiments.store import make_engine
    real_load = experiments.learning.load_policy
    def load_and_hold(state):
        print("held", flush=True)  # inside the batch transaction, the learning lock taken
        while not Path(sys.argv[3]).exists():
            time.sleep(0.02)
        return real_load(state)
    experiments.learning.load_policy = load_and_hold
    print(ExperimentService(make_engine(sys.argv[1])).learn(sys.argv[2]), flush=True)
"""


@pytest.mark.postgres
def test_assign_and_outcomes_return_while_another_process_holds_a_learning_run(
    pg_url: str, tmp_path: Path
) -> None:
    from experiments.store import create_tables, make_engine

    engine = make_engine(pg_url)
    create_tables(engine)
    service = ExperimentService(engine, seed=3)
    service.create(thompson_spec(update={"every_outcomes": 1, "delay_hours": 0}))
    first = service.assign_batch("subject-test", [(f"u{i}", {}) for i in range(20)])
    service.record_outcomes([OutcomeEvent("c0", first[0].decision_id, "click")])
    release = tmp_path / "release"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(HOLD_IN_ANOTHER_PROCESS),
            pg_url,
            "subject-test",
            str(release),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        d = within(REQUEST_SECONDS, lambda: service.assign("subject-test", "during", {}))
        counts = within(
            REQUEST_SECONDS, lambda: service.record_outcomes([OutcomeEvent("c1", d.decision_id, "click")])
        )
        assert counts.accepted == 1 and proc.poll() is None  # the other process is still held
        release.touch()
        assert proc.stdout.readline().strip() == "2" and proc.wait(HELD_SECONDS) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        engine.dispose()
    assert service.policy_state("subject-test")[0] == 2
