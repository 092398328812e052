"""Retention: contexts older than the period are dropped, statistics kept (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from experiments.models import OutcomeEvent
from experiments.recipients import erase_recipient
from experiments.retention import (
    Pruned,
    ScheduledPrune,
    prune_contexts,
    prune_feature_versions,
    prune_store,
    retention_cutoff,
)
from experiments.service import ExperimentService
from experiments.store import decisions_table
from tests.experiments.conftest import Clock, make_spec


def _contexts(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(decisions_table.c.recipient_id, decisions_table.c.context)).all())


def test_prune_drops_old_contexts_and_keeps_the_statistics(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    service.create(make_spec(record=["segment"], consent={"missing": "deny"}))
    old = service.assign_batch("spring", [(f"old{i}", {"consent": True, "segment": "vip"}) for i in range(30)]
                               + [("declined", {"consent": False, "segment": "vip"})])
    service.record_outcomes([OutcomeEvent(f"e{i}", d.decision_id, "click") for i, d in enumerate(old[:10])])
    clock.advance(days=40)
    service.assign_batch("spring", [(f"new{i}", {"consent": True, "segment": "new"}) for i in range(20)])
    before = service.summarize("spring")
    cutoff = retention_cutoff(clock.now, 30)
    assert prune_contexts(engine, cutoff) == 30  # the declined recipient had no context to drop
    contexts = _contexts(engine)
    assert all(contexts[f"old{i}"] is None for i in range(30)) and contexts["declined"] is None
    assert all(contexts[f"new{i}"] == {"consent": True, "segment": "new"} for i in range(20))
    assert service.summarize("spring") == before
    assert prune_contexts(engine, cutoff) == 0  # idempotent
    by_segment = service.summarize_segments("spring", "segment")
    assert by_segment is not None  # results by segment still answer (the old decisions count as missing)


@pytest.mark.parametrize("days", [0, -1, float("nan")])
def test_the_period_is_a_positive_number_of_days(days: float, clock: Clock) -> None:
    with pytest.raises(ValueError, match="positive number of days"):
        retention_cutoff(clock.now, days)


def test_a_scheduled_prune_runs_at_once_then_once_per_interval(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    service.create(make_spec(consent={"missing": "allow"}))
    service.assign_batch("spring", [(f"a{i}", {"consent": True}) for i in range(5)])
    clock.advance(days=31)
    prune = ScheduledPrune(engine, clock, 30, every_seconds=40 * 86_400)
    assert prune.check() == Pruned(5, 0)  # the first check prunes
    service.assign_batch("spring", [(f"b{i}", {"consent": True}) for i in range(4)])
    clock.advance(days=31)
    assert prune.check() is None  # within the interval: no prune, whatever has aged
    assert all(_contexts(engine)[f"b{i}"] == {"consent": True} for i in range(4))
    clock.advance(days=8)
    assert prune.check() is None  # 39 days since the first prune
    clock.advance(days=1)
    assert prune.check() == Pruned(4, 0)  # 40 days: due
    assert all(context is None for context in _contexts(engine).values())


def test_a_scheduled_prune_refuses_a_bad_period_when_made(engine: Engine, clock: Clock) -> None:
    with pytest.raises(ValueError, match="positive number of days"):
        ScheduledPrune(engine, clock, 0)


def test_an_explanation_says_why_a_decision_has_no_context(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    """Without consent nothing was stored; after a prune or an erasure what was stored is gone: each
    explanation says which, and the one that kept its context is still re-evaluated."""
    service.create(make_spec(record=["segment"], consent={"missing": "deny"}))
    people = [("pruned", {"consent": True, "segment": "vip"}), ("declined", {"consent": False}),
              ("erased", {"consent": True, "segment": "vip"}), ("kept", {"consent": True, "segment": "vip"})]
    decisions = {d.recipient_id: d.decision_id for d in service.assign_batch("spring", people[:3])}
    clock.advance(days=40)
    decisions.update({d.recipient_id: d.decision_id for d in service.assign_batch("spring", people[3:])})
    erase_recipient(engine, "erased", b"k" * 32)
    assert prune_contexts(engine, retention_cutoff(clock.now, 30)) == 1  # "pruned" (erased went already)

    def first_line(rid: str) -> str:
        return str(service.explain(decisions[rid])["explanation"][0])

    assert first_line("declined") == "no context stored (the recipient did not consent)"
    assert first_line("pruned") == (
        "no context any more: the retention period dropped it (sendlab db prune), so no rule can be "
        "re-evaluated")
    assert first_line("erased") == (
        "no context any more: it was erased with the recipient's data, so no rule can be re-evaluated")
    assert "no context" not in first_line("kept")


def _store_version(engine: Engine, clock: Clock, ids: list[str]) -> int:
    from experiments.store.features import store_feature_version

    return store_feature_version(
        engine, as_of=clock.now, settings={}, events={"read": 1, "used": 1, "after_as_of": 0}, model=None,
        rows=[(rid, {"frequency": 1}) for rid in ids], created_at=clock.now,
    ).version


def test_prune_deletes_old_feature_versions_but_the_latest(engine: Engine, clock: Clock) -> None:
    from experiments.store.features import feature_attributes, feature_versions

    assert prune_feature_versions(engine, retention_cutoff(clock.now, 30)) == 0  # none stored
    first = _store_version(engine, clock, ["a", "b"])
    clock.advance(days=10)
    second = _store_version(engine, clock, ["a", "c"])
    clock.advance(days=40)  # both older than 30 days: the second is the latest, which stays
    assert prune_feature_versions(engine, retention_cutoff(clock.now, 30)) == 1
    with engine.connect() as conn:
        assert [v.version for v in feature_versions(conn)] == [second]
        assert feature_attributes(conn, first, ["a", "b"]) == {}  # its rows went with it
        assert set(feature_attributes(conn, second, ["a", "b", "c"])) == {"a", "c"}
    third = _store_version(engine, clock, ["d"])
    clock.advance(days=5)
    fourth = _store_version(engine, clock, ["e"])
    # the second is 45 days old, the third 5: only the second goes
    assert prune_store(engine, retention_cutoff(clock.now, 30)) == Pruned(0, 1)
    with engine.connect() as conn:
        assert [v.version for v in feature_versions(conn)] == [fourth, third]
    assert prune_feature_versions(engine, retention_cutoff(clock.now, 30)) == 0  # idempotent
