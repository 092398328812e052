"""Is it learning, for contextual and bandit designs alike: decisions per policy version and slot variant,
explored, learned, and the reward learned from, on SQLite and PostgreSQL; the experiments list's traffic
of every experiment in one query. References are counted in Python from the decisions as returned at
assignment and the events as posted."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, inspect, text

from experiments.assignment import compile_experiment
from experiments.errors import Conflict, InvalidInput, NotFound
from experiments.models import Decision, OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import create_tables, make_engine
from experiments.store.summaries import log_cells
from tests.experiments.conftest import Clock, make_spec
from tests.experiments.legacy_store import as_made_before_migrations

WINDOW_HOURS = 24
WEIGHTS = {"click": 1.0, "conversion": 5.0}


def contextual_spec(**overrides: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "key": "ctx",
        "slots": {
            "subject": {"variants": [{"id": "plain", "features": {"tone": "plain"}},
                                     {"id": "urgent", "features": {"tone": "urgent"}},
                                     {"id": "personal", "features": {"tone": "personal"}}]},
            "cta": {"variants": [{"id": "shop"}, {"id": "see"}]},
        },
        "consent": {"missing": "allow"},
        "design": {"type": "contextual", "policy": "linear_ts", "context": ["device"],
                   "update": {"delay_hours": WINDOW_HOURS}},
        "holdout": 0.1,
        "default": {"subject": "plain", "cta": "shop"},
        "reward": {"events": WEIGHTS, "value": "conversion", "window_hours": WINDOW_HOURS},
    }
    data.update(overrides)
    return parse_spec(data)


def send(
    service: ExperimentService, key: str, n: int, start: int, rng: np.random.Generator, clock: Clock
) -> tuple[list[Decision], list[OutcomeEvent]]:
    """``n`` recipients, then clicks, conversions with a value, a repeated click and a late click."""
    devices = rng.choice(["mobile", "desktop"], n)
    recipients = [(f"u{start + i}", {"device": str(d)}) for i, d in enumerate(devices)]
    decisions = service.assign_batch(key, recipients)
    events = []
    soon, late = clock.now + timedelta(hours=1), clock.now + timedelta(hours=WINDOW_HOURS + 5)
    for i, d in enumerate(decisions):
        p = 0.3 if d.variants["subject"].id == "urgent" and devices[i] == "mobile" else 0.1
        if rng.random() < p:
            events.append(OutcomeEvent(f"c-{d.decision_id}", d.decision_id, "click", None, soon))
            if rng.random() < 0.2:
                events.append(OutcomeEvent(f"c2-{d.decision_id}", d.decision_id, "click", None, soon))
            if rng.random() < 0.3:
                value = float(np.round(rng.uniform(5, 80), 2))
                events.append(OutcomeEvent(f"v-{d.decision_id}", d.decision_id, "conversion", value, soon))
        elif rng.random() < 0.05:
            events.append(OutcomeEvent(f"late-{d.decision_id}", d.decision_id, "click", None, late))
    return decisions, events


def reward_by_hand(events: list[OutcomeEvent], sent_at: dict[str, Any]) -> dict[str, float]:
    """Per decision: 1 x [a click] + 5 x [a conversion] + the conversions' values, inside the window."""
    id_to_types: dict[str, set[str]] = defaultdict(set)
    id_to_value: dict[str, float] = defaultdict(float)
    for e in events:
        assert e.timestamp is not None
        if e.timestamp - sent_at[e.decision_id] > timedelta(hours=WINDOW_HOURS):
            continue
        id_to_types[e.decision_id].add(e.type)
        if e.type == "conversion":
            id_to_value[e.decision_id] += e.value or 0.0
    return {d: sum(WEIGHTS[t] for t in types) + id_to_value[d] for d, types in id_to_types.items()}


def expected_versions(decisions: list[Decision]) -> dict[int, tuple[int, int, dict[str, Counter[str]]]]:
    out: dict[int, tuple[int, int, dict[str, Counter[str]]]] = {}
    for d in decisions:
        if d.reason == "holdout":
            continue
        assert d.policy_version is not None
        n, explored, slots = out.get(d.policy_version, (0, 0, defaultdict(Counter)))
        for slot, choice in d.variants.items():
            slots[slot][choice.id] += 1
        out[d.policy_version] = (n + 1, explored + int(d.explored), slots)
    return out


def test_contextual_learning_by_version_and_reward_learned(service: ExperimentService, clock: Clock) -> None:
    service.create(contextual_spec())
    rng = np.random.default_rng(3)
    first, events1 = send(service, "ctx", 500, 0, rng, clock)
    sent_at = {d.decision_id: d.created_at for d in first}
    clock.advance(hours=2)
    service.record_outcomes(events1)
    clock.advance(hours=WINDOW_HOURS + 6)
    v2 = service.learn("ctx")
    second, events2 = send(service, "ctx", 400, 500, rng, clock)
    sent_at.update({d.decision_id: d.created_at for d in second})
    clock.advance(hours=2)
    service.record_outcomes(events2)  # the second send is not mature: not learned yet
    learning = service.learning("ctx")
    decisions = first + second

    # per policy version: decisions, explored and each slot's variants, as returned at assignment
    expected = expected_versions(decisions)
    assert [v.policy_version for v in learning.versions] == sorted(expected) == [1, v2]
    for v in learning.versions:
        assert v.policy_version is not None
        n, explored, slots = expected[v.policy_version]
        assert (v.decisions, v.explored) == (n, explored)
        for slot, counts in v.slot_to_variant_decisions.items():
            assert counts == {variant: slots[slot][variant] for variant in counts}
            assert sum(counts.values()) == n
    assert sum(v.explored for v in learning.versions) > 0
    history = {h.version: h for h in service.policy_history("ctx")}
    assert all(v.created_at == history[v.policy_version].created_at for v in learning.versions)

    # learned: the first send's learnable decisions, as the snapshot counts them; their reward by hand
    learned_ids = {d.decision_id for d in first if d.reason != "holdout"}
    assert learning.learned_decisions == len(learned_ids) == history[v2].learned_decisions
    assert [v.learned for v in learning.versions] == [len(learned_ids), 0]
    id_to_reward = reward_by_hand(events1 + events2, sent_at)
    expected_reward = sum(r for d, r in id_to_reward.items() if d in learned_ids)
    assert expected_reward > 0
    assert learning.learned_reward == pytest.approx(expected_reward, rel=1e-12)
    assert learning.learnable_decisions == service.summarize("ctx").learnable_decisions

    # summarize_with_learning shares one pass and gives the same numbers
    summary, again = service.summarize_with_learning("ctx")
    assert again == learning and summary == service.summarize("ctx")


def test_bandit_learning_counts_and_hash_designs(service: ExperimentService, clock: Clock) -> None:
    service.create(parse_spec({
        "key": "bandit", "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "window_hours": WINDOW_HOURS},
    }))
    decisions = service.assign_batch("bandit", [(f"u{i}", {}) for i in range(300)])
    clicks = [OutcomeEvent(f"c{i}", d.decision_id, "click", None, clock.now) for i, d in enumerate(decisions)
              if i % 7 == 0]
    service.record_outcomes(clicks)
    service.learn("bandit")
    learning = service.learning("bandit")
    assert learning.learned_decisions == 300 == service.policy_history("bandit")[-1].learned_decisions
    assert learning.learned_reward == len(clicks)
    (version,) = learning.versions
    assert version.decisions == 300 and version.policy_version == 1
    assert version.slot_to_variant_decisions["subject"] == dict(
        Counter(d.variants["subject"].id for d in decisions))

    service.create(make_spec())
    with pytest.raises(Conflict, match="multivariate design"):
        service.learning("spring")
    assert service.summarize_with_learning("spring")[1] is None
    with pytest.raises(NotFound):
        service.learning("nope")


def test_traffic_of_every_experiment_matches_their_summaries(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(make_spec(holdout=0.2))
    service.assign_batch("spring", [(f"u{i}", {}) for i in range(400)])
    service.create(make_spec(holdout=0.2, name="a new version"))  # traffic counts the current version
    service.assign_batch("spring", [(f"w{i}", {}) for i in range(250)])
    service.create(contextual_spec(holdout=0.0))
    service.assign_batch("ctx", [(f"u{i}", {"device": "mobile"}) for i in range(120)])
    service.create(make_spec(key="empty"))
    by_key = {t.key: t for t in service.traffic()}
    assert sorted(by_key) == ["ctx", "empty", "spring"]
    for key, t in by_key.items():
        summary = service.summarize(key)
        assert t.version == summary.version and t.design == summary.design and t.slots == summary.slots
        assert t.decisions == summary.learnable_decisions + sum(summary.fallbacks.values())
        with service.engine.connect() as conn:  # the list reads the rollups: the log agrees
            logged = conn.execute(text("SELECT count(*) FROM decisions WHERE experiment_key = :k AND "
                                       "version = :v"), {"k": key, "v": t.version}).scalar_one()
        assert t.decisions == logged
        assert t.fallbacks == summary.fallbacks
        if summary.design in ("ab", "multivariate"):  # each variant's count and share, for the SRM check
            assert [(a.slot, a.variant, a.decisions, a.intended_share) for a in t.arms] == [
                (a.slot, a.variant, a.decisions, a.intended_share) for a in summary.arms]
        else:  # an adaptive split is not checked: no counts per variant
            assert t.arms == []
    assert by_key["spring"].decisions == 250 and by_key["spring"].fallbacks["holdout"] > 0
    assert by_key["ctx"].decisions == 120 and by_key["empty"].decisions == 0


def test_create_tables_drops_the_retired_index_and_adds_the_covering_one(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_tables(engine)
    as_made_before_migrations(engine)
    with engine.begin() as conn:  # a store made by an earlier version
        conn.execute(text("CREATE INDEX ix_decisions_arm ON decisions (experiment_key, version, arm)"))
        conn.execute(text("DROP INDEX ix_decisions_summary"))
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_outcomes_summary"))
    create_tables(engine)
    names = {i["name"] for i in inspect(engine).get_indexes("decisions")}
    assert "ix_decisions_summary" in names and "ix_decisions_arm" not in names
    assert "ix_outcomes_summary" in {i["name"] for i in inspect(engine).get_indexes("outcomes")}


def test_the_decision_count_reads_the_covering_index_alone_in_order(tmp_path: Any, clock: Clock) -> None:
    """SQLite's plan of the full scan's decision count (what verify and a rebuild of the rollups read):
    the covering index, no table, no sort (a check of the query's shape against the index, not of its
    speed)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=7)
    info = service.create(make_spec())
    compiled = compile_experiment(info.spec, info.version)
    statements: list[str] = []
    with engine.connect() as conn:
        def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            statements.append(statement)
            statements.append(parameters)

        event.listen(conn, "before_cursor_execute", keep)
        log_cells(conn, compiled)
        event.remove(conn, "before_cursor_execute", keep)
        # the count is the statement that groups the decisions table itself
        at = next(i for i in range(0, len(statements), 2) if "GROUP BY decisions.fallback" in statements[i])
        plan = " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statements[at],
                                                                 statements[at + 1]))
    assert "USING COVERING INDEX ix_decisions_summary" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_policy_history_can_be_thinned_evenly_keeping_the_first_and_latest(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(parse_spec({
        "key": "bandit", "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "window_hours": WINDOW_HOURS},
    }))
    for round_ in range(6):
        decisions = service.assign_batch("bandit", [(f"u{round_}-{i}", {}) for i in range(20)])
        click = OutcomeEvent(f"c{round_}", decisions[0].decision_id, "click", None, clock.now)
        service.record_outcomes([click])
        clock.advance(hours=1)
        service.learn("bandit")
    full = service.policy_history("bandit")
    assert [h.version for h in full] == list(range(1, 8))
    assert service.policy_history("bandit", limit=3) == [full[0], full[3], full[6]]
    assert service.policy_history("bandit", limit=7) == full == service.policy_history("bandit", limit=50)
    for bad in (1, 0, 2.5, True):
        with pytest.raises(InvalidInput, match="limit"):
            service.policy_history("bandit", limit=bad)  # type: ignore[arg-type]
