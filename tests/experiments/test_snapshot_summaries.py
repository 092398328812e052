"""What a policy snapshot keeps for the pages equals what they computed before from the log and the
states (SQLite and PostgreSQL): the reward learned from in all, recorded by the learning transaction,
against :func:`experiments.store.summaries.learned_reward`'s full scan after every learning run of
random workloads (late outcomes revised, repeated events, machine-made and late events, a policy that
cannot revise, delay-aware learning, a new spec version); a bandit snapshot's arm probabilities against
the restored state; and the migration's backfill of a store made before them.

Revenue values are multiples of 1/4, so every sum is exact in any order and equality is exact.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from bandit import load_policy
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine, snapshots_table
from experiments.store.snapshot_summaries import recorded_learned_reward
from experiments.store.summaries import learned_reward
from tests.experiments.conftest import Clock
from tests.experiments.test_migrations import _load_dump

WINDOW_HOURS = 24


def spec(key: str, design: dict[str, Any], **overrides: Any) -> Any:
    data: dict[str, Any] = {
        "key": key,
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        "consent": {"missing": "allow"},
        "design": design,
        "holdout": 0.1,
        "reward": {"events": {"click": 1.0, "conversion": 5.0}, "value": "revenue",
                   "window_hours": WINDOW_HOURS, "guardrails": ["unsubscribe"]},
    }
    if design.get("policy") == "thompson":  # rewards in [0, 1]: the click alone
        data["reward"] = {"events": {"click": 1.0}, "window_hours": WINDOW_HOURS,
                          "guardrails": ["unsubscribe"]}
    data.update(overrides)
    return parse_spec(data)


def recorded_and_scanned(service: ExperimentService, key: str) -> tuple[float, float]:
    """The learned reward as the latest snapshot records it, and as the full scan of the log gives it."""
    with service.engine.connect() as conn:
        _, compiled = service.core.repo.current(conn, key)
        return recorded_learned_reward(conn, key, compiled.version), learned_reward(conn, compiled)


def random_events(decision_ids: list[str], rng: np.random.Generator, at: Any, tag: str
                  ) -> list[OutcomeEvent]:
    """Clicks (some twice), conversions with revenue (multiples of 1/4), unsubscribes, machine clicks,
    and events after the reward window, on a random part of the decisions."""
    events = []
    for i, d in enumerate(decision_ids):
        u = rng.random()
        when = at + timedelta(hours=float(rng.uniform(0.5, 3)))
        if u < 0.3:
            events.append(OutcomeEvent(f"{tag}c{i}", d, "click", None, when))
            if rng.random() < 0.3:
                events.append(OutcomeEvent(f"{tag}cc{i}", d, "click", None, when))
            if rng.random() < 0.4:
                events.append(OutcomeEvent(f"{tag}v{i}", d, "conversion", None, when))
                events.append(OutcomeEvent(f"{tag}r{i}", d, "revenue", float(rng.integers(1, 400)) / 4, when))
        elif u < 0.35:
            events.append(OutcomeEvent(f"{tag}m{i}", d, "click", None, when, machine=True))
        elif u < 0.4:
            after_window = at + timedelta(hours=WINDOW_HOURS + 5)
            events.append(OutcomeEvent(f"{tag}l{i}", d, "click", None, after_window))
        elif u < 0.42:
            events.append(OutcomeEvent(f"{tag}u{i}", d, "unsubscribe", None, when))
    return events


def run_workload(service: ExperimentService, clock: Clock, key: str, seed: int, rounds: int = 4) -> int:
    """Send, post outcomes (and late ones for earlier sends), learn; compare after every run. The
    number of comparisons with a non-zero reward."""
    rng = np.random.default_rng(seed)
    earlier: list[str] = []
    checked = 0
    for r in range(rounds):
        recipients = [(f"{key}-{r}-{i}", {"device": str(rng.choice(["ios", "web"]))}) for i in range(60)]
        decisions = [d.decision_id for d in service.assign_batch(key, recipients)]
        events = random_events(decisions, rng, clock.now, f"{r}-")
        if earlier:  # outcomes of decisions learned before: revisions (or, for VW, not learnable)
            late = list(rng.choice(earlier, size=min(25, len(earlier)), replace=False))
            events += random_events(late, rng, clock.now - timedelta(hours=2), f"late{r}-")
        service.record_outcomes(events)
        clock.advance(hours=WINDOW_HOURS + 1)
        for batch in (7, None):  # a small batch (several snapshots, partial runs), then the rest
            service.learn(key, batch=batch)
            recorded, scanned = recorded_and_scanned(service, key)
            assert recorded == scanned
            assert service.learning(key).learned_reward == scanned
            checked += scanned != 0
        earlier += decisions
    return checked


@pytest.mark.parametrize("design", [
    {"type": "bandit", "policy": "thompson"},
    {"type": "bandit", "policy": "gaussian_thompson"},
    {"type": "contextual", "policy": "linear_ts", "context": ["device"]},
    {"type": "contextual", "policy": "vw", "vw_args": "--cb_explore_adf --epsilon 0.2",
     "context": ["device"]},
], ids=["thompson", "gaussian", "linear_ts", "vw (cannot revise)"])
def test_the_recorded_learned_reward_equals_the_full_scan(
    service: ExperimentService, clock: Clock, design: dict[str, Any]
) -> None:
    service.create(spec("s", {**design, "update": {"delay_hours": 0}}))
    assert recorded_and_scanned(service, "s") == (0.0, 0.0)
    assert run_workload(service, clock, "s", seed=3) >= 4


def test_a_new_spec_version_starts_from_nothing_learned(service: ExperimentService, clock: Clock) -> None:
    design = {"type": "bandit", "policy": "gaussian_thompson", "update": {"delay_hours": 0}}
    service.create(spec("v", design))
    run_workload(service, clock, "v", seed=5, rounds=2)
    assert recorded_and_scanned(service, "v")[0] > 0
    service.create(spec("v", design, holdout=0.2))  # version 2, with a fresh snapshot
    assert recorded_and_scanned(service, "v") == (0.0, 0.0)
    run_workload(service, clock, "v", seed=6, rounds=2)


def test_delay_aware_learning_records_what_it_learned(service: ExperimentService, clock: Clock) -> None:
    design = {"type": "bandit", "policy": "thompson", "update": {"delays": "model"}}
    service.create(spec("d", design))
    rng = np.random.default_rng(8)
    sends: list[tuple[str, Any]] = []
    for r in range(3):
        decisions = service.assign_batch("d", [(f"d-{r}-{i}", {}) for i in range(80)])
        sends += [(d.decision_id, clock.now) for d in decisions]
        for step in range(4):  # clicks arrive over the window while learning runs every 3 hours
            clock.advance(hours=3)
            due = [d for d, at in sends if rng.random() < 0.08 and at < clock.now]
            service.record_outcomes(random_events(due, rng, clock.now - timedelta(hours=3), f"{r}{step}-"))
            service.learn("d")
            recorded, scanned = recorded_and_scanned(service, "d")
            assert recorded == scanned
    clock.advance(hours=WINDOW_HOURS + 1)
    service.learn("d")
    recorded, scanned = recorded_and_scanned(service, "d")
    assert recorded == scanned and scanned > 0


def test_the_stored_arm_probabilities_are_those_of_the_restored_state(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(spec("b", {"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0}}))
    service.create(spec("c", {"type": "contextual", "policy": "linear_ts", "context": ["device"],
                              "update": {"delay_hours": 0}}))
    for key in ("b", "c"):
        run_workload(service, clock, key, seed=9, rounds=2)
    with service.engine.connect() as conn:
        states = {(k, int(v)): bytes(s) for k, v, s in conn.execute(
            select(snapshots_table.c.experiment_key, snapshots_table.c.version, snapshots_table.c.state))}
    bandit = service.policy_history("b")
    assert len(bandit) >= 4
    for snap in bandit:
        reference = [float(p) for p in load_policy(states[("b", snap.version)]).probabilities(1)[0]]
        assert snap.arm_probabilities == reference
    assert all(snap.arm_probabilities is None for snap in service.policy_history("c"))
    latest = bandit[-1].arm_probabilities
    shares = {a.variant: a.intended_share for a in service.summarize("b").arms if a.slot == "subject"}
    assert [shares[v] for v in ("a", "b", "c")] == latest


def test_the_migration_fills_the_snapshots_of_an_older_store(db_url: str) -> None:
    engine = make_engine(db_url)
    _load_dump(db_url, engine)  # a store made before migrations: a Thompson bandit learned once
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    with engine.connect() as conn:
        rows = conn.execute(select(snapshots_table).order_by(snapshots_table.c.version)).all()
    bandits = [r for r in rows if service.get(r.experiment_key).spec.design.type == "bandit"]
    assert len(bandits) >= 2
    for row in bandits:
        reference = [float(p) for p in load_policy(bytes(row.state)).probabilities(1)[0]]
        assert row.arm_probabilities == reference
    for key in {r.experiment_key for r in bandits}:
        recorded, scanned = recorded_and_scanned(service, key)
        assert recorded == scanned and scanned > 0
    engine.dispose()
