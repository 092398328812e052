"""Outcomes that arrive after their decision was learned are learned too (by revising its reward), or,
for a policy that cannot revise, counted; outcomes timed before their decision are not attributed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bandit import GaussianThompson, load_policy
from experiments.learner import ScheduledLearner
from experiments.models import OutcomeEvent
from experiments.rewards import decision_reward
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, decisions_table, outcomes_table
from tests.experiments.conftest import Clock
from tests.experiments.legacy_store import as_made_before_migrations


def bandit_spec(key: str = "late", policy: str = "thompson", **overrides: Any):
    data: dict[str, Any] = {
        "key": key,
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": policy, "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "window_hours": 24},
    }
    data.update(overrides)
    return parse_spec(data)


def posterior(service: ExperimentService, key: str = "late") -> list[list[float]]:
    return [list(p) for p in load_policy(service.policy_state(key)[1]).posterior()]  # type: ignore[attr-defined]


def test_a_click_posted_after_its_decision_was_learned_is_learned(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(bandit_spec())
    d = service.assign("late", "u1", {})
    arm = 0 if d.variants["subject"].id == "a" else 1
    assert service.learn("late") == 2  # delay 0: learned at once, as a non-click
    before = [[1.0, 1.0], [1.0, 1.0]]
    before[1][arm] = 2.0
    assert posterior(service) == before
    click = OutcomeEvent("c1", d.decision_id, "click", None, clock.now + timedelta(hours=1))
    service.record_outcomes([click])
    assert service.learn("late") == 3
    after = [[1.0, 1.0], [1.0, 1.0]]
    after[0][arm] = 2.0  # as if the click had been there all along
    assert posterior(service) == after
    # a second click counts once: the reward stays 1; the outcome is learned all the same
    again = OutcomeEvent("c2", d.decision_id, "click", None, clock.now + timedelta(hours=2))
    service.record_outcomes([again])
    assert service.learn("late") == 4
    assert posterior(service) == after
    summary = service.summarize("late")
    assert (summary.revised_outcomes, summary.unlearnable_outcomes) == (2, 0)
    assert service.learn("late") == 4  # nothing left: no new version, nothing applied twice
    history = service.policy_history("late")
    assert [h.learned_decisions for h in history] == [0, 1, 1, 1]


def test_late_revenue_adds_up_in_a_gaussian_policy(service: ExperimentService, clock: Clock) -> None:
    service.create(
        bandit_spec(
            policy="gaussian_thompson",
            reward={"events": {"click": 1.0, "conversion": 5.0}, "value": "revenue", "window_hours": 72},
        )
    )
    decisions = service.assign_batch("late", [(f"u{i}", {}) for i in range(6)])
    at = clock.now + timedelta(hours=1)
    first = decisions[0]
    service.record_outcomes([OutcomeEvent("click", first.decision_id, "click", None, at)])
    service.learn("late")  # learned with reward 1; the others with 0
    late = [
        OutcomeEvent("conv", first.decision_id, "conversion", None, at),
        OutcomeEvent("rev-1", first.decision_id, "revenue", 20.0, at),
        OutcomeEvent("conv-again", first.decision_id, "conversion", None, at),  # counts once
        OutcomeEvent("rev-2", decisions[1].decision_id, "revenue", 7.25, at),
    ]
    service.record_outcomes(late)
    service.learn("late")
    service.record_outcomes([OutcomeEvent("rev-3", first.decision_id, "revenue", 5.5, at)])
    service.learn("late")
    # the reference: one update with every decision's final reward (1 + 5 + 20 + 5.5 = 31.5)
    final = {first.decision_id: 31.5, decisions[1].decision_id: 7.25}
    reference = GaussianThompson(2)
    reference.update(
        len(decisions),
        np.array([0 if d.variants["subject"].id == "a" else 1 for d in decisions]),
        np.array([final.get(d.decision_id, 0.0) for d in decisions]),
        np.ones(len(decisions)),
    )
    learned = load_policy(service.policy_state("late")[1])
    for mine, theirs in zip(learned.posterior(), reference.posterior(), strict=True):  # type: ignore[attr-defined]
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    log = {x.decision_id: x.reward for x in service.export_log("late")}
    assert log[first.decision_id] == 31.5  # the results' SQL reward agrees
    assert service.summarize("late").revised_outcomes == 5


def test_a_policy_that_cannot_revise_counts_its_late_outcomes(
    service: ExperimentService, clock: Clock
) -> None:
    spec = parse_spec(
        {
            "key": "ctx",
            "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
            "consent": {"missing": "allow"},
            "design": {
                "type": "contextual",
                "policy": "vw",
                "vw_args": "--cb_explore_adf --epsilon 0.2",
                "context": ["device"],
                "update": {"delay_hours": 0},
            },
            "reward": {"events": {"click": 1.0}},
        }
    )
    service.create(spec)
    decisions = service.assign_batch("ctx", [(f"u{i}", {"device": "ios"}) for i in range(4)])
    service.record_outcomes([OutcomeEvent("on-time", decisions[0].decision_id, "click")])
    assert service.learn("ctx") == 2
    _, state = service.policy_state("ctx")
    late = [OutcomeEvent(f"late-{i}", d.decision_id, "click") for i, d in enumerate(decisions[1:])]
    service.record_outcomes(late)
    assert service.learn("ctx") == 2  # nothing it can learn: the policy is unchanged
    assert service.policy_state("ctx") == (2, state)
    summary = service.summarize("ctx")
    assert (summary.revised_outcomes, summary.unlearnable_outcomes) == (0, 3)
    assert sum(c.event_counts["click"] for c in summary.combinations) == 4  # results still count them
    assert service.learn("ctx") == 2 and service.summarize("ctx").unlearnable_outcomes == 3  # counted once


def test_an_outcome_timed_before_its_decision_is_not_attributed(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(bandit_spec())
    d = service.assign("late", "u1", {})
    early = OutcomeEvent("early", d.decision_id, "click", None, d.created_at - timedelta(seconds=1))
    at_once = OutcomeEvent("at-once", d.decision_id, "open", None, d.created_at)
    assert service.record_outcomes([early, at_once]).accepted == 2
    summary = service.summarize("late")
    assert summary.excluded_late_events == 1  # outside the attribution window, stored and counted
    assert sum(c.event_counts["click"] for c in summary.combinations) == 0
    service.learn("late")
    alpha, beta = load_policy(service.policy_state("late")[1]).posterior()  # type: ignore[attr-defined]
    assert float(alpha.sum()) == 2.0 and float(beta.sum()) == 3.0  # learned as a non-click
    # without a timestamp an event is stamped on receipt, after its decision, even by a clock behind
    other = service.assign("late", "u2", {})
    clock.advance(seconds=-5)
    service.record_outcomes([OutcomeEvent("received", other.decision_id, "click")])
    assert sum(c.event_counts["click"] for c in service.summarize("late").combinations) == 1


def test_learning_every_n_outcomes_counts_the_outcomes_not_learned_yet(
    service: ExperimentService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    design = {"type": "bandit", "policy": "thompson", "update": {"every_outcomes": 3}}
    service.create(bandit_spec(design=design))
    learner = ScheduledLearner(service)
    runs: list[int] = []
    learn = service.learn
    monkeypatch.setattr(service, "learn", lambda key, **options: runs.append(1) or learn(key, **options))

    def record(events: list[OutcomeEvent]) -> None:  # as the background learner checks after each post
        service.record_outcomes(events)
        learner.check_all()

    decisions = service.assign_batch("late", [(f"u{i}", {}) for i in range(8)])
    at = clock.now + timedelta(hours=1)
    clicks = [OutcomeEvent(f"c{i}", d.decision_id, "click", None, at) for i, d in enumerate(decisions)]
    record(clicks[:2])
    assert runs == []
    record(clicks[2:3])  # 3 outcomes not learned: due, but no decision is mature (24 h)
    assert len(runs) == 1 and service.policy_state("late")[0] == 1
    record(clicks[3:5])  # 5 pending, 3 of them left by the last run: not due again
    assert len(runs) == 1
    clock.advance(hours=25)
    record(clicks[5:6])  # 3 new since the last run: learns all 8 decisions, 6 clicks
    assert len(runs) == 2
    alpha, beta = load_policy(service.policy_state("late")[1]).posterior()  # type: ignore[attr-defined]
    assert (float(alpha.sum() - 2), float(beta.sum() - 2)) == (6.0, 2.0)
    record(clicks[6:8])  # late clicks on learned decisions: 2 pending, not due
    assert len(runs) == 2
    more = service.assign_batch("late", [("v1", {})])
    record([OutcomeEvent("v1-click", more[0].decision_id, "click")])
    assert len(runs) == 3  # 3 pending: due; the two late clicks are revised in
    alpha, beta = load_policy(service.policy_state("late")[1]).posterior()  # type: ignore[attr-defined]
    assert (float(alpha.sum() - 2), float(beta.sum() - 2)) == (8.0, 0.0)


def test_the_learning_reward_agrees_with_the_results_sql(service: ExperimentService, clock: Clock) -> None:
    spec = bandit_spec(
        policy="gaussian_thompson",
        reward={
            "events": {"click": 1.0, "conversion": 5.0, "open": 0.0},
            "value": "revenue",
            "window_hours": 72,
            "guardrails": ["unsubscribe"],
        },
    )
    service.create(spec)
    rng = np.random.default_rng(12)
    decisions = service.assign_batch("late", [(f"u{i}", {}) for i in range(300)])
    events, id_to_events = [], {}
    for i, d in enumerate(decisions):
        mine = []
        for j in range(int(rng.integers(0, 5))):
            kind = str(rng.choice(["open", "click", "conversion", "revenue", "unsubscribe"]))
            value = float(np.round(rng.uniform(0, 80), 2)) if kind == "revenue" else None
            events.append(OutcomeEvent(f"{i}-{j}", d.decision_id, kind, value, clock.now))
            mine.append((kind, value))
        id_to_events[d.decision_id] = mine
    service.record_outcomes(events)
    log = {x.decision_id: x.reward for x in service.export_log("late")}
    for d in decisions:
        assert decision_reward(spec.reward, id_to_events[d.decision_id]) == pytest.approx(
            log[d.decision_id], rel=1e-12, abs=1e-12
        )


def test_an_older_outcomes_table_gets_the_learning_columns(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    service.create(bandit_spec())
    decisions = service.assign_batch("late", [(f"u{i}", {}) for i in range(4)])
    service.record_outcomes([OutcomeEvent("c0", decisions[0].decision_id, "click")])
    service.learn("late")
    as_made_before_migrations(engine)
    with engine.begin() as conn:  # the table as it was before outcomes were learned one by one
        conn.execute(text("DROP INDEX ix_outcomes_pending"))
        conn.execute(text("DROP INDEX ix_outcomes_after_learning"))
        conn.execute(text("ALTER TABLE outcomes DROP COLUMN learned_version"))
        conn.execute(text("ALTER TABLE outcomes DROP COLUMN after_learning"))
    create_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(outcomes_table.select()).all()
        learned = {r.id: r.learned_version for r in conn.execute(decisions_table.select())}
    assert [(r.event_id, r.learned_version) for r in rows] == [("c0", learned[decisions[0].decision_id])]
    assert service.learn("late") == 2  # the click is not learned a second time
    service.record_outcomes([OutcomeEvent("c1", decisions[1].decision_id, "click")])
    assert service.learn("late") == 3
    alpha, _ = load_policy(service.policy_state("late")[1]).posterior()  # type: ignore[attr-defined]
    assert float(alpha.sum()) == 4.0
