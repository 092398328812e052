"""The learning loop: a Thompson experiment shifts traffic to the best arm; no outcome is lost or learned
twice, not by concurrent learners, not by a learner killed mid-run; accepted outcomes survive a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bandit import load_policy
from experiments.learner import ScheduledLearner
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import lock_for_learning, make_engine, snapshots_table
from tests.experiments.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]
RATES = {"a": 0.02, "b": 0.05, "c": 0.15}


def thompson_spec(key: str = "subject-test", **design: Any) -> ExperimentSpec:
    return parse_spec(
        {
            "key": key,
            "slots": {"subject": {"variants": [{"id": v, "content": f"Subject {v}"} for v in RATES]}},
            "consent": {"missing": "allow"},
            "design": {"type": "bandit", "policy": "thompson", **design},
            "reward": {"events": {"click": 1.0}, "window_hours": 24},
        }
    )


def send(
    service: ExperimentService, key: str, n: int, start: int, rng: np.random.Generator, clock: Clock
) -> tuple[list[Any], list[OutcomeEvent]]:
    decisions = service.assign_batch(key, [(f"u{start + i}", {}) for i in range(n)])
    clicks = rng.random(n) < np.array([RATES[d.variants["subject"].id] for d in decisions])
    events = [
        OutcomeEvent(f"click-{d.decision_id}", d.decision_id, "click", None, clock.now + timedelta(hours=1))
        for d, c in zip(decisions, clicks, strict=True)
        if c
    ]
    return decisions, events


def test_thompson_shifts_traffic_to_the_best_arm_after_learning(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(thompson_spec())
    rng = np.random.default_rng(11)
    first, events = send(service, "subject-test", 3000, 0, rng, clock)
    share_before = Counter(d.variants["subject"].id for d in first)
    assert all(d.reason == "policy" and d.policy_version == 1 for d in first)
    assert all(d.propensity == pytest.approx(1 / 3, abs=0.05) for d in first)  # prior: all arms alike
    service.record_outcomes(events)
    assert (
        service.learn("subject-test") == 1
    )  # outcomes not mature yet (delay = 24 h window): nothing learned
    clock.advance(hours=25)
    version = service.learn("subject-test")
    assert version == 2
    second, _ = send(service, "subject-test", 2000, 3000, rng, clock)
    share_after = Counter(d.variants["subject"].id for d in second)
    assert share_before["c"] / 3000 < 0.40
    assert share_after["c"] / 2000 > 0.90
    assert all(d.policy_version == 2 for d in second)
    # the learned state is exactly the clicks and non-clicks of the first send
    _, state = service.policy_state("subject-test")
    alpha, beta = load_policy(state).posterior()  # type: ignore[attr-defined]
    clicked = Counter(
        next(d.variants["subject"].id for d in first if d.decision_id == e.decision_id) for e in events
    )
    for j, v in enumerate(RATES):
        assert alpha[j] == 1 + clicked[v]
        assert beta[j] == 1 + share_before[v] - clicked[v]
    assert service.learn("subject-test") == 2  # nothing new: same version, nothing learned twice


def test_learning_runs_by_itself_every_n_outcomes(service: ExperimentService, clock: Clock) -> None:
    learner = ScheduledLearner(service)
    service.create(thompson_spec(update={"every_outcomes": 20, "delay_hours": 0}))
    rng = np.random.default_rng(5)
    decisions, events = send(service, "subject-test", 1000, 0, rng, clock)
    assert len(events) > 20
    service.record_outcomes(events[:10])
    assert learner.check_key("subject-test") is None
    assert service.policy_state("subject-test")[0] == 1
    service.record_outcomes(events[10:])
    assert service.policy_state("subject-test")[0] == 1  # recording outcomes never learns
    run = learner.check_key("subject-test")
    assert run is not None and (run.version_before, run.version, run.decisions) == (1, 2, 1000)
    assert run.outcomes == len(events)
    version, state = service.policy_state("subject-test")
    assert version == 2
    alpha, beta = load_policy(state).posterior()  # type: ignore[attr-defined]
    assert float(np.sum(alpha + beta - 2)) == len(decisions)


def test_policy_failure_falls_back_to_defaults(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    service.create(thompson_spec())
    with engine.begin() as conn:  # a snapshot no policy can read
        conn.execute(
            snapshots_table.insert().values(
                experiment_key="subject-test",
                version=2,
                spec_version=1,
                state=b"garbage",
                cursor=0,
                learned_decisions=0,
                created_at=clock.now.replace(tzinfo=None),
            )
        )
    decisions = service.assign_batch("subject-test", [(f"u{i}", {}) for i in range(5)])
    assert {(d.reason, d.propensity, d.variants["subject"].id) for d in decisions} == {
        ("policy_error", 1.0, "a")
    }
    assert service.summarize("subject-test").fallbacks == {"policy_error": 5}


def test_two_learners_at_once_apply_each_decision_once(db_url: str, engine: Engine, clock: Clock) -> None:
    service = ExperimentService(engine, clock=clock, seed=1, learn_batch=150)
    service.create(thompson_spec(update={"delay_hours": 0}))
    rng = np.random.default_rng(2)
    decisions, events = send(service, "subject-test", 1500, 0, rng, clock)
    service.record_outcomes(events)
    learners = [ExperimentService(make_engine(db_url), clock=clock, learn_batch=150) for _ in range(2)]
    errors: list[BaseException] = []

    def run(s: ExperimentService) -> None:
        try:
            s.learn("subject-test")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in learners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    version, state = service.policy_state("subject-test")
    alpha, beta = load_policy(state).posterior()  # type: ignore[attr-defined]
    assert float(np.sum(alpha + beta - 2)) == len(decisions)  # every decision exactly once
    assert float(np.sum(alpha - 1)) == len(events)
    assert version == 1 + 10  # 1,500 decisions in batches of 150


def expected_posterior(decisions: list[Any], events: list[OutcomeEvent]) -> list[tuple[float, float]]:
    """Beta(1 + clicked decisions, 1 + the others) per arm: each decision learned once, first click only."""
    arm_of = {d.decision_id: d.variants["subject"].id for d in decisions}
    n = Counter(arm_of.values())
    clicked = Counter(arm_of[i] for i in {e.decision_id for e in events})
    return [(1.0 + clicked[v], 1.0 + n[v] - clicked[v]) for v in RATES]


def learned_posterior(service: ExperimentService) -> list[tuple[float, float]]:
    alpha, beta = load_policy(service.policy_state("subject-test")[1]).posterior()  # type: ignore[attr-defined]
    return [(float(a), float(b)) for a, b in zip(alpha, beta, strict=True)]


def test_many_learners_take_turns_over_many_batches(db_url: str, engine: Engine, clock: Clock) -> None:
    # 4 learners in threads, each with its own engine, over 2,000 decisions in batches of 40, half of
    # whose clicks arrive after their decision was learned: none fails, none learns anything twice
    service = ExperimentService(engine, clock=clock, seed=1, learn_batch=40)
    service.create(thompson_spec(update={"delay_hours": 0}))
    rng = np.random.default_rng(21)
    first, early = send(service, "subject-test", 1000, 0, rng, clock)
    service.learn("subject-test")  # the first 1,000, without their clicks
    clock.advance(hours=1)
    second, on_time = send(service, "subject-test", 1000, 1000, rng, clock)
    repeats = [
        OutcomeEvent(f"again-{e.event_id}", e.decision_id, "click", None, e.timestamp) for e in early[::3]
    ]
    late = early + repeats
    service.record_outcomes(on_time + late)
    start = service.policy_state("subject-test")[0]
    learners = [ExperimentService(make_engine(db_url), clock=clock, learn_batch=40) for _ in range(4)]
    errors: list[BaseException] = []
    versions: list[int] = []
    barrier = threading.Barrier(len(learners))

    def run(s: ExperimentService) -> None:
        try:
            barrier.wait()
            versions.append(s.learn("subject-test"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in learners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # a single learner's end: 25 batches of 40 decisions, then the late outcomes 40 at a time
    final = start + 1000 // 40 + -(-len(late) // 40)
    assert versions == [final] * 4
    assert service.policy_state("subject-test")[0] == final
    assert learned_posterior(service) == expected_posterior(first + second, early + on_time)
    summary = service.summarize("subject-test")
    assert (summary.revised_outcomes, summary.unlearnable_outcomes) == (len(late), 0)


def test_outcomes_posted_while_learners_run_are_each_learned_once(
    db_url: str, engine: Engine, clock: Clock
) -> None:
    # two learners loop while a third thread posts the clicks (and repeats) 25 at a time: each click is
    # learned with its decision or, committed a moment too late for that, revised in after it
    service = ExperimentService(engine, clock=clock, seed=1, learn_batch=50)
    service.create(thompson_spec(update={"delay_hours": 0}))
    decisions, events = send(service, "subject-test", 1500, 0, np.random.default_rng(31), clock)
    posted = events + [
        OutcomeEvent(f"again-{e.event_id}", e.decision_id, "click", None, e.timestamp) for e in events[::4]
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def learn(s: ExperimentService) -> None:
        try:
            while not stop.is_set():
                s.learn("subject-test")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def post(s: ExperimentService) -> None:
        try:
            for i in range(0, len(posted), 25):
                s.record_outcomes(posted[i : i + 25])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    services = [ExperimentService(make_engine(db_url), clock=clock, learn_batch=50) for _ in range(3)]
    learners = [threading.Thread(target=learn, args=(s,)) for s in services[:2]]
    poster = threading.Thread(target=post, args=(services[2],))
    for t in [*learners, poster]:
        t.start()
    poster.join()
    stop.set()
    for t in learners:
        t.join()
    assert errors == []
    service.learn("subject-test")
    assert learned_posterior(service) == expected_posterior(decisions, events)
    with engine.connect() as conn:
        cursor = conn.execute(
            select(snapshots_table.c.cursor).order_by(snapshots_table.c.version.desc()).limit(1)
        ).scalar_one()
    assert cursor == len(posted)  # the running count of outcomes learned: each once


def test_a_second_learner_waits_for_the_lock_then_goes_on(db_url: str, engine: Engine, clock: Clock) -> None:
    service = ExperimentService(engine, clock=clock, seed=1)
    service.create(thompson_spec(update={"delay_hours": 0}))
    decisions, events = send(service, "subject-test", 300, 0, np.random.default_rng(3), clock)
    service.record_outcomes(events)
    learner = ExperimentService(make_engine(db_url), clock=clock)
    done: list[int] = []
    with engine.begin() as conn:  # another learner's batch holds the lock
        lock_for_learning(conn, "subject-test")
        thread = threading.Thread(target=lambda: done.append(learner.learn("subject-test")))
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive() and done == []  # waiting, not failing
    thread.join(timeout=60)
    assert done == [2]
    assert learned_posterior(service) == expected_posterior(decisions, events)


def _run(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


RECORD_THEN_WAIT = """
    import sys, time
    from datetime import datetime
    from experiments.models import OutcomeEvent
    from experiments.service import ExperimentService
    from experiments.store import make_engine
    service = ExperimentService(make_engine(sys.argv[1]))
    when = datetime.fromisoformat(sys.argv[3])
    counts = service.record_outcomes([OutcomeEvent("kill-1", sys.argv[2], "click", None, when)])
    print(counts.accepted, flush=True)
    time.sleep(60)
"""


def test_an_accepted_outcome_survives_a_sigkill_right_after(db_url: str, service: ExperimentService) -> None:
    service.create(thompson_spec())
    d = service.assign("subject-test", "u1", {})
    proc = _run(RECORD_THEN_WAIT, db_url, d.decision_id, d.created_at.isoformat())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert line.strip() == "1"
    again = service.record_outcomes([OutcomeEvent("kill-1", d.decision_id, "click")])
    assert (again.accepted, again.duplicates) == (0, 1)  # the row is there, once
    summary = service.summarize("subject-test")
    assert sum(a.event_counts["click"] for a in summary.arms) == 1


LEARN = """
    import sys
    from datetime import datetime, UTC
    from experiments.service import ExperimentService
    from experiments.store import make_engine
    service = ExperimentService(make_engine(sys.argv[1]), clock=lambda: datetime.fromisoformat(sys.argv[2]),
                                learn_batch=int(sys.argv[3]))
    service.learn("subject-test")
    print("done", flush=True)
"""


def test_a_learner_killed_mid_run_and_restarted_ends_where_an_uninterrupted_one_would(
    db_url: str, service: ExperimentService, clock: Clock, engine: Engine
) -> None:
    service.create(thompson_spec(update={"delay_hours": 0}))
    rng = np.random.default_rng(9)
    first, early = send(service, "subject-test", 1000, 0, rng, clock)
    assert service.learn("subject-test") == 2  # the first 1,000 decisions, before any outcome arrived
    clock.advance(hours=1)
    second, on_time = send(service, "subject-test", 1000, 1000, rng, clock)
    # late for the first send: its clicks, a second click on some, and an open on every decision
    at = clock.now
    late = early + [OutcomeEvent(f"again-{e.event_id}", e.decision_id, "click", None, at) for e in early[::2]]
    late += [OutcomeEvent(f"open-{d.decision_id}", d.decision_id, "open", None, at) for d in first]
    service.record_outcomes(on_time + late)
    # 50 batches of 20 decisions, then the late outcomes 20 at a time; killed in each phase
    final = 2 + 1000 // 20 + -(-len(late) // 20)
    for kill_at in (5, 2 + 50 + 3):
        proc = _run(LEARN, db_url, clock.now.isoformat(), "20")
        deadline = time.monotonic() + 60
        while service.policy_state("subject-test")[0] < kill_at and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = service.policy_state("subject-test")[0]
        assert kill_at <= killed_at < final, "killed mid-run, after some batches and before the last"
    revised_at_kill = service.summarize("subject-test").revised_outcomes
    assert 0 < revised_at_kill < len(late), "the second kill came while late outcomes were being revised"
    restarted = ExperimentService(engine, clock=clock, learn_batch=20)
    assert restarted.learn("subject-test") == final
    # what an uninterrupted run learns: each decision once, clicked or not, whenever the click came
    assert learned_posterior(service) == expected_posterior(first + second, early + on_time)
    assert service.summarize("subject-test").revised_outcomes == len(late)


def test_a_contextual_policy_learns_who_prefers_what(service: ExperimentService, clock: Clock) -> None:
    spec = parse_spec(
        {
            "key": "ctx",
            "slots": {
                "subject": {
                    "variants": [
                        {"id": "a", "features": {"tone": "plain"}},
                        {"id": "b", "features": {"tone": "urgent"}},
                    ]
                }
            },
            "consent": {"missing": "allow"},
            "design": {
                "type": "contextual",
                "policy": "linear_ts",
                "context": ["device"],
                "update": {"delay_hours": 0},
            },
            "reward": {"events": {"click": 1.0}},
        }
    )
    service.create(spec)
    rng = np.random.default_rng(4)

    def one_send(tag: str) -> float:
        devices = rng.choice(["mobile", "desktop"], 1500)
        decisions = service.assign_batch(
            "ctx", [(f"{tag}{i}", {"device": str(x)}) for i, x in enumerate(devices)]
        )
        liked = np.array(
            [
                (dv == "mobile") == (d.variants["subject"].id == "b")
                for d, dv in zip(decisions, devices, strict=True)
            ]
        )
        clicks = rng.random(len(liked)) < np.where(liked, 0.3, 0.05)  # mobile likes b, desktop likes a
        service.record_outcomes(
            [
                OutcomeEvent(f"e-{d.decision_id}", d.decision_id, "click")
                for d, c in zip(decisions, clicks, strict=True)
                if c
            ]
        )
        return float(liked.mean())

    before = one_send("first")
    service.learn("ctx")
    after = one_send("second")
    assert before < 0.6  # an untrained policy matches by chance
    assert after > 0.9


def test_learning_runs_by_itself_every_n_seconds(service: ExperimentService, clock: Clock) -> None:
    learner = ScheduledLearner(service)
    service.create(thompson_spec(update={"every_seconds": 600, "delay_hours": 0}))
    rng = np.random.default_rng(6)
    _, events = send(service, "subject-test", 500, 0, rng, clock)
    service.record_outcomes(events)
    clock.advance(seconds=599)
    service.assign("subject-test", "x", {})
    assert learner.check_all() == []
    assert service.policy_state("subject-test")[0] == 1  # not yet due
    clock.advance(seconds=2)
    d = service.assign("subject-test", "y", {})
    assert service.policy_state("subject-test")[0] == 1  # assigning never learns
    assert [r.version for r in learner.check_all()] == [2]  # due: learns both decisions logged by now
    version, state = service.policy_state("subject-test")
    assert version == 2 and d.policy_version == 1
    alpha, beta = load_policy(state).posterior()  # type: ignore[attr-defined]
    assert float(np.sum(alpha + beta - 2)) == 502


def test_a_warm_started_policy_is_an_apprentice_until_it_agrees(
    service: ExperimentService, clock: Clock
) -> None:
    # Thompson with a uniform prior on the unseen arm b: once the incumbent a is known to click ~95%,
    # the policy would draw a with probability P(U < 0.95) ~ 0.95 (tablets: b is the only choice).
    spec = parse_spec(
        {
            "key": "warm",
            "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
            "consent": {"missing": "allow"},
            "design": {
                "type": "bandit",
                "policy": "thompson",
                "update": {"delay_hours": 0},
                "warm_start": {"agreement": 0.85, "min_decisions": 400},
            },
            "default": {"subject": "a"},
            "rules": [{"when": {"attr": "device", "op": "eq", "value": "tablet"}, "force": {"subject": "b"}}],
            "reward": {"events": {"click": 1.0}},
        }
    )
    assert service.create(spec).apprentice
    rng = np.random.default_rng(8)

    def one_send(tag: str, n: int = 600) -> list[Any]:
        devices = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.45, 0.45, 0.1])
        decisions = service.assign_batch(
            "warm", [(f"{tag}{i}", {"device": str(x)}) for i, x in enumerate(devices)]
        )
        clicks = rng.random(n) < np.array(
            [0.95 if d.variants["subject"].id == "a" else 0.05 for d in decisions]
        )
        service.record_outcomes(
            [
                OutcomeEvent(f"e-{d.decision_id}", d.decision_id, "click")
                for d, c in zip(decisions, clicks, strict=True)
                if c
            ]
        )
        return [(d, dv) for d, dv in zip(decisions, devices, strict=True)]

    first = one_send("one")
    for d, device in first:  # the incumbent: the default, or what the rule forces
        assert d.reason == "apprentice" and d.propensity == 1.0
        assert d.variants["subject"].id == ("b" if device == "tablet" else "a")
    early = service.summarize("warm")
    n_tablets = sum(device == "tablet" for _, device in first)
    # untrained: an even draw between a and b, except tablets who can only get b
    assert early.apprentice_decisions == 600
    assert early.apprentice_agreement == pytest.approx((0.5 * (600 - n_tablets) + n_tablets) / 600, abs=0.03)
    service.learn("warm")
    assert service.get("warm").apprentice  # the agreement so far came from the untrained policy
    clock.advance(hours=1)
    one_send("two")
    service.learn("warm")  # the last 400 decisions agree often enough: it graduates
    late = service.summarize("warm")
    assert late.apprentice_decisions == 1200
    assert not service.get("warm").apprentice
    third = one_send("three", 200)
    assert {d.reason for d, _ in third} == {"policy"}


def test_graduating_by_hand(service: ExperimentService) -> None:
    service.create(thompson_spec(warm_start={"agreement": 0.99, "min_decisions": 10_000}))
    assert service.assign("subject-test", "u1", {}).reason == "apprentice"
    assert not service.graduate("subject-test").apprentice
    assert service.assign("subject-test", "u2", {}).reason == "policy"
