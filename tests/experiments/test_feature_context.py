"""``context_from: features``: the feature table fills a recipient's context at assignment (SQLite and
PostgreSQL). A recipient known only by id gets its stored features; fields sent with it win; a recipient
the table lacks, a missing score or a model below ``min_score_auc`` falls back to the defaults with its
reason; every decision records the feature version it read."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from experiments.feature_context import FeatureContexts
from experiments.features import FeatureSettings, compute_features, events_from_frame
from experiments.models import FALLBACK_REASONS
from experiments.spec import parse_spec
from experiments.store import decisions_table
from experiments.store.features import feature_versions, latest_feature_version, store_feature_version
from tests.experiments.conftest import make_spec
from tests.experiments.features.test_hand_history import AS_OF, ENGAGEMENT, WINDOW, history

DEFAULTS = {"subject": "plain", "cta": "shop"}
BUYERS = {"attr": "frequency", "op": "gte", "value": 2}  # ann, dee and hal in the hand history
LIKELY = {"attr": "p_convert", "op": "gte", "value": 0.2}


def hand_features():
    settings = FeatureSettings(as_of=AS_OF, window_days=WINDOW, engagement_windows=ENGAGEMENT, k=3)
    return compute_features([events_from_frame(history())], settings)


def stored_row(service, decision_id: str) -> Any:
    d = decisions_table
    with service.engine.connect() as conn:
        return conn.execute(
            select(d.c.feature_version, d.c.context, d.c.reason, d.c.fallback).where(d.c.id == decision_id)
        ).one()


def store(service, rows: dict[str, dict[str, Any]], auc: float | None) -> int:
    """A version with hand-written rows and, with ``auc``, a model of that quality."""
    return store_feature_version(
        service.engine, as_of=AS_OF, settings={}, events={"read": 0, "used": 0, "after_as_of": 0},
        model=None if auc is None else {"auc": auc}, rows=rows.items(), created_at=service.clock(),
    ).version


def test_a_recipient_known_only_by_id_gets_its_stored_features(service) -> None:
    features = hand_features()
    version = service.store_features(features)
    assert (version.version, version.recipients) == (1, 10)
    ann = next(r for r in features.recipients() if r.recipient_id == "ann")
    service.create(make_spec(context_from="features", eligibility=BUYERS, record=["rfm_r", "segment"]))

    decision = service.assign("spring", "ann", {})
    assert decision.reason == "assigned" and decision.feature_version == 1
    row = stored_row(service, decision.decision_id)
    assert row.feature_version == 1 and not row.fallback
    # what the eligibility read and what the spec records, from the table
    assert row.context == {"frequency": 2, "rfm_r": ann.rfm[0], "segment": ann.segment}

    bob = service.assign("spring", "bob", {})  # one purchase in the window: not a buyer
    assert (bob.reason, bob.feature_version) == ("ineligible", 1)


def test_fields_sent_with_the_recipient_win_over_stored_ones(service) -> None:
    service.store_features(hand_features())
    service.create(make_spec(context_from="features", eligibility=BUYERS))
    assert service.assign("spring", "bob", {"frequency": 5}).reason == "assigned"
    decision = service.assign("spring", "ann", {"frequency": 0})
    assert decision.reason == "ineligible"
    assert stored_row(service, decision.decision_id).context == {"frequency": 0}


def test_a_recipient_the_table_lacks_falls_back_with_a_reason(service) -> None:
    service.store_features(hand_features())
    service.create(make_spec(context_from="features"))
    decisions = service.assign_batch("spring", [("ann", {}), ("zoe", {"frequency": 3}), ("hal", {})])
    assert [d.reason for d in decisions] == ["assigned", "no_features", "assigned"]
    zoe = decisions[1]
    assert {s: v.id for s, v in zoe.variants.items()} == DEFAULTS and zoe.propensity == 1.0
    assert "no_features" in FALLBACK_REASONS and stored_row(service, zoe.decision_id).fallback
    assert [d.feature_version for d in decisions] == [1, 1, 1]


def test_without_any_stored_version_everyone_falls_back(service) -> None:
    service.create(make_spec(context_from="features"))
    decision = service.assign("spring", "ann", {"frequency": 3})
    assert (decision.reason, decision.feature_version) == ("no_features", None)
    assert stored_row(service, decision.decision_id).feature_version is None


def test_a_spec_without_context_from_reads_no_feature(service) -> None:
    service.store_features(hand_features())
    service.create(make_spec(eligibility=BUYERS))
    decision = service.assign("spring", "ann", {})
    assert (decision.reason, decision.feature_version) == ("ineligible", None)


def test_scores_drive_eligibility_and_a_missing_or_weak_score_falls_back(service) -> None:
    rows = {"a": {"p_convert": 0.5}, "b": {"p_convert": 0.1}, "c": {"frequency": 1}}
    store(service, rows, auc=0.72)
    service.create(make_spec(context_from="features", eligibility=LIKELY, min_score_auc=0.6))
    batch = [("a", {}), ("b", {}), ("c", {}), ("d", {})]
    reasons = [d.reason for d in service.assign_batch("spring", batch)]
    assert reasons == ["assigned", "ineligible", "no_score", "no_features"]

    store(service, rows, auc=0.55)  # a newer version whose model is too weak for the spec
    decisions = service.assign_batch("spring", [("a", {}), ("b", {}), ("a", {"p_convert": 0.3})])
    assert [d.reason for d in decisions] == ["low_confidence_score", "low_confidence_score", "assigned"]
    assert {d.feature_version for d in decisions} == {2}
    assert all({s: v.id for s, v in d.variants.items()} == DEFAULTS for d in decisions[:2])


def test_a_rule_reading_a_score_needs_the_score(service) -> None:
    store(service, {"a": {"p_convert": 0.5}, "c": {"segment": 1}}, auc=None)
    rule = {"name": "likely buyers see more", "when": LIKELY, "restrict": {"cta": ["see"]}}
    service.create(make_spec(context_from="features", rules=[rule]))
    a, c = service.assign_batch("spring", [("a", {}), ("c", {})])
    assert (a.reason, a.variants["cta"].id) == ("assigned", "see")
    assert c.reason == "no_score"


def test_a_version_is_read_whole_or_not_at_all(service) -> None:
    """A failed refresh (here a repeated recipient, midway through the second chunk) leaves nothing."""
    store(service, {"a": {"segment": 0}}, auc=None)
    rows = [(f"r{i}", {"segment": i}) for i in range(15)] + [("r3", {"segment": 9})]
    with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error
        store_feature_version(service.engine, as_of=AS_OF, settings={}, events={}, model=None, rows=rows,
                              created_at=service.clock(), chunk_rows=10)
    with service.engine.connect() as conn:
        assert latest_feature_version(conn) == 1
        assert [v.recipients for v in feature_versions(conn)] == [1]
        assert conn.execute(text("SELECT COUNT(*) FROM features")).scalar() == 1


def test_a_version_written_in_chunks_is_invisible_until_committed(service) -> None:
    """While a refresh writes, another connection still reads the previous version."""
    store(service, {"a": {"segment": 0}}, auc=None)
    reached, release = threading.Event(), threading.Event()

    def rows():
        for i in range(30):
            if i == 20:  # two chunks written, the transaction open
                reached.set()
                release.wait(30)
            yield f"r{i}", {"segment": i}

    writer = threading.Thread(target=lambda: store_feature_version(
        service.engine, as_of=AS_OF, settings={}, events={}, model=None, rows=rows(),
        created_at=service.clock(), chunk_rows=10))
    writer.start()
    assert reached.wait(30)
    with service.engine.connect() as conn:
        assert latest_feature_version(conn) == 1
        assert conn.execute(text("SELECT COUNT(*) FROM features")).scalar() == 1
    release.set()
    writer.join(60)
    with service.engine.connect() as conn:
        assert latest_feature_version(conn) == 2
        assert feature_versions(conn)[0].recipients == 30


def test_stored_rows_are_read_once_per_version(service, monkeypatch) -> None:
    import experiments.feature_context as module

    store(service, {"a": {"segment": 0}}, auc=None)
    service.create(make_spec(context_from="features"))
    reads: list[list[str]] = []
    real = module.feature_attributes
    monkeypatch.setattr(module, "feature_attributes",
                        lambda conn, version, ids: reads.append(list(ids)) or real(conn, version, ids))
    service.assign_batch("spring", [("a", {}), ("b", {})])
    service.assign_batch("spring", [("a", {}), ("b", {}), ("c", {})])
    assert reads == [["a", "b"], ["c"]]  # a known absence is kept too
    store(service, {"a": {"segment": 1}}, auc=None)
    service.assign_batch("spring", [("a", {})])
    assert reads[-1] == ["a"]  # a new version is read afresh


def test_the_cache_is_bounded(service, monkeypatch) -> None:
    import experiments.feature_context as module

    store(service, {"a": {"segment": 0}, "b": {"segment": 1}}, auc=None)
    service.create(make_spec(context_from="features"))
    contexts = FeatureContexts(max_cached=3)
    reads: list[list[str]] = []
    real = module.feature_attributes
    monkeypatch.setattr(module, "feature_attributes",
                        lambda conn, version, ids: reads.append(list(ids)) or real(conn, version, ids))
    with service.engine.connect() as conn:
        _, compiled = service.core.repo.assign_state(conn, "spring")
        fill = contexts.fill(conn, compiled, [("a", {}), ("b", {}), ("c", {}), ("d", {})])
        assert fill.reasons == [None, None, "no_features", "no_features"]
        assert [dict(c) for _, c in fill.recipients[:2]] == [{"segment": 0}, {"segment": 1}]
        contexts.fill(conn, compiled, [("c", {}), ("d", {})])  # kept: the three most recent, b, c, d
        contexts.fill(conn, compiled, [("a", {}), ("b", {})])  # a was dropped
    assert reads == [["a", "b", "c", "d"], ["a"]]


def test_the_spec_keys_are_checked_and_absent_by_default() -> None:
    plain = make_spec()
    assert "context_from" not in plain.canonical_json() and "min_score_auc" not in plain.canonical_json()
    spec = make_spec(context_from="features", min_score_auc=0.6)
    assert '"context_from":"features"' in spec.canonical_json()
    with pytest.raises(Exception, match="context_from"):
        make_spec(context_from="crm")
    with pytest.raises(Exception, match="min_score_auc"):
        make_spec(context_from="features", min_score_auc=0.3)
    with pytest.raises(Exception, match="min_score_auc: applies only with 'context_from: features'"):
        make_spec(min_score_auc=0.7)
    assert parse_spec(spec.canonical_json()) == spec


def test_the_time_of_a_version_is_its_as_of(service) -> None:
    service.store_features(hand_features())
    with service.engine.connect() as conn:
        stored = feature_versions(conn)[0]
    assert stored.as_of == datetime(2024, 6, 1, tzinfo=UTC)
    assert stored.settings["window_days"] == WINDOW and stored.events["used"] == 24
    assert stored.created_at == service.clock()


def test_a_preview_shows_the_filled_context_and_the_fallback(service) -> None:
    service.store_features(hand_features())
    rule = {"name": "buyers see more", "when": BUYERS, "restrict": {"cta": ["see"]}}
    service.create(make_spec(context_from="features", rules=[rule]))
    ann, zoe = service.preview("spring", [("ann", {}), ("zoe", {})])
    assert ann.decision.reason == "assigned" and ann.detail.rules_fired == ["buyers see more"]
    assert ann.decision.variants["cta"].id == "see"
    assert zoe.decision.reason == "no_features" and zoe.detail.screening == "no_features"
    assert zoe.detail.rules_not_evaluated == (
        "not evaluated: the feature table holds no features for the recipient, so the default variants")
    assert all(len(s.offered) == 1 for s in zoe.detail.slots)  # the defaults only


def test_a_recipients_features_are_shown_and_erased_with_their_data(service) -> None:
    from experiments.recipients import erase_recipient, read_recipient

    store(service, {"ana": {"segment": 1}, "bo": {"segment": 2}}, auc=None)
    store(service, {"ana": {"segment": 3}}, auc=None)
    shown = read_recipient(service.engine, "ana")
    assert [(f.version, f.attributes) for f in shown.features] == [(1, {"segment": 1}), (2, {"segment": 3})]
    erased = erase_recipient(service.engine, "ana", b"0123456789abcdef")
    assert (erased.decisions, erased.features) == (0, 2)
    assert read_recipient(service.engine, "ana").features == []
    assert [f.version for f in read_recipient(service.engine, "bo").features] == [1]
    service.create(make_spec(context_from="features"))
    assert service.assign("spring", "ana", {}).reason == "no_features"


def test_an_erasure_forgets_the_kept_rows_in_its_process_only(service, clock) -> None:
    from experiments.service import ExperimentService

    store(service, {"ana": {"frequency": 3}, "bo": {"frequency": 4}}, auc=None)
    service.create(make_spec(context_from="features", eligibility=BUYERS))
    other = ExperimentService(service.engine, clock=clock, seed=7)  # another worker on the same store
    for worker in (service, other):
        decisions = worker.assign_batch("spring", [("ana", {}), ("bo", {})])
        assert [d.reason for d in decisions] == ["assigned"] * 2
    erased = service.erase_recipient("ana", b"0123456789abcdef")
    assert (erased.decisions, erased.features) == (2, 1)
    assert service.assign("spring", "ana", {}).reason == "no_features"  # read afresh: none stored
    assert service.assign("spring", "bo", {}).reason == "assigned"  # another recipient's row is kept
    # the other process still answers from its kept row, until it is evicted or a version is stored
    assert other.assign("spring", "ana", {}).reason == "assigned"
    store(service, {"bo": {"frequency": 4}}, auc=None)
    assert other.assign("spring", "ana", {}).reason == "no_features"
