"""A recipient's data: read it whole, erase it (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

from experiments.errors import InvalidInput
from experiments.models import OutcomeEvent
from experiments.recipients import erase_recipient, erasure_token, read_recipient
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import decisions_table
from experiments.store.rollup_checks import verify_experiment

SECRET = b"a server secret of enough bytes"


def _spec(key: str, design: dict[str, Any]) -> Any:
    return parse_spec({
        "key": key,
        "slots": {"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}},
        "design": design,
        "consent": {"attribute": "consent", "missing": "deny"},
        "record": ["segment"],
        "reward": {"events": {"click": 1.0, "conversion": 5.0}, "value": "revenue"},
        "frequency": {"max_sends": 5, "per_days": 7},  # its send counts hold the ids too
    })


def _populate(service: ExperimentService) -> None:
    service.create(_spec("hashed", {"type": "ab"}))
    service.create(_spec("banded", {"type": "bandit", "policy": "gaussian_thompson"}))
    people = [(f"user-{i}", {"consent": True, "segment": "vip" if i % 3 else "new"}) for i in range(60)]
    people.append(("ana@example.com", {"consent": True, "segment": "vip-ana@example.com"}))
    events = []
    for key in ("hashed", "banded"):
        for d in service.assign_batch(key, people):
            if d.recipient_id == "ana@example.com" or d.recipient_id.endswith(("1", "4", "7")):
                events.append(OutcomeEvent(f"{key}-{d.recipient_id}-click", d.decision_id, "click"))
                events.append(OutcomeEvent(f"{key}-{d.recipient_id}-buy", d.decision_id, "revenue", 12.5))
    service.record_outcomes(events)


def _every_text(engine: Engine) -> str:
    """Every value of every table of the store, as one text."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return json.dumps([[list(map(repr, row)) for row in conn.execute(select(table)).all()]
                           for table in meta.sorted_tables])


def test_read_recipient_returns_every_decision_context_and_outcome(service: ExperimentService) -> None:
    _populate(service)
    data = read_recipient(service.engine, "ana@example.com")
    assert sorted(d.experiment for d in data.decisions) == ["banded", "hashed"]
    for d in data.decisions:
        assert d.context == {"consent": True, "segment": "vip-ana@example.com"}
        assert sorted((o.type, o.value) for o in d.outcomes) == [("click", None), ("revenue", 12.5)]
    assert read_recipient(service.engine, "nobody").decisions == []
    with pytest.raises(InvalidInput):
        read_recipient(service.engine, "")


def test_erasure_leaves_no_trace_of_the_id_or_context_and_results_unchanged(
    service: ExperimentService, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _populate(service)
    before = {key: service.summarize(key) for key in ("hashed", "banded")}
    assert "ana@example.com" in _every_text(engine)
    first_arm = next(d.variants for d in read_recipient(engine, "ana@example.com").decisions
                     if d.experiment == "hashed")
    with caplog.at_level(logging.INFO, logger="experiments.recipients"):
        erasure = erase_recipient(engine, "ana@example.com", SECRET)
    assert (erasure.decisions, erasure.outcomes) == (2, 4)
    text = _every_text(engine)
    assert "ana@example.com" not in text  # no id, no context (its segment held the id too), no event id
    assert erasure_token(SECRET, "ana@example.com") in text  # the rows stay, under the token
    assert all("ana@example.com" not in r.getMessage() for r in caplog.records)
    assert any("erased a recipient: 2 decisions, 4 outcomes" in r.getMessage() for r in caplog.records)
    assert {key: service.summarize(key) for key in ("hashed", "banded")} == before
    assert read_recipient(engine, "ana@example.com").decisions == []  # the export is empty
    assert erase_recipient(engine, "ana@example.com", SECRET).decisions == 0  # again: nothing left
    # the hash design stays sticky for a recipient who returns
    again = service.assign("hashed", "ana@example.com", {"consent": True})
    assert {s: v.id for s, v in again.variants.items()} == first_arm
    with pytest.raises(InvalidInput, match="16 bytes"):
        erase_recipient(engine, "user-1", b"short")


def test_an_event_posted_again_after_the_erasure_is_not_stored_and_counts_once(
    service: ExperimentService,
) -> None:
    _populate(service)
    before = service.summarize("hashed")
    ana = [d for d in read_recipient(service.engine, "ana@example.com").decisions if d.experiment == "hashed"]
    erase_recipient(service.engine, "ana@example.com", SECRET)
    # the platform retries the click (its id is now a token in the store) and sends a new one
    counts = service.record_outcomes([
        OutcomeEvent("hashed-ana@example.com-click", ana[0].decision_id, "click"),
        OutcomeEvent("hashed-ana@example.com-late-buy", ana[0].decision_id, "revenue", 3.0),
    ])
    assert (counts.accepted, counts.duplicates, counts.orphans, counts.erased) == (0, 0, 0, 2)
    assert service.summarize("hashed") == before
    assert "ana@example.com" not in _every_text(service.engine)


def test_a_second_erasure_after_a_reused_event_id_succeeds(service: ExperimentService) -> None:
    service.create(_spec("hashed", {"type": "ab"}))
    (first,) = service.assign_batch("hashed", [("bo", {"consent": True})])
    service.record_outcomes([OutcomeEvent("bo-click", first.decision_id, "click")])
    erase_recipient(service.engine, "bo", SECRET)
    # bo comes back; the client reuses the event id for the new decision
    (second,) = service.assign_batch("hashed", [("bo", {"consent": True}), ("cy", {"consent": True})])[:1]
    assert service.record_outcomes([OutcomeEvent("bo-click", second.decision_id, "click")]).accepted == 1
    erasure = erase_recipient(service.engine, "bo", SECRET)
    assert (erasure.decisions, erasure.outcomes) == (1, 1)
    text = _every_text(service.engine)
    assert "bo-click" not in text and '"bo"' not in text and "'bo'" not in text
    clicks = sum(arm.event_counts["click"] for arm in service.summarize("hashed").arms)
    assert clicks == 2  # both decisions keep their click, each once
    assert all(not check.differences for check in verify_experiment(service.engine, "hashed"))


def test_a_second_erasure_after_the_same_send_was_assigned_again_succeeds(service: ExperimentService) -> None:
    service.create(_spec("hashed", {"type": "ab"}))
    (first,) = service.assign_batch("hashed", [("bo", {"consent": True})], send_id="spring")
    erase_recipient(service.engine, "bo", SECRET)
    # the platform assigns the same send again: bo's decision is stored under a token, so it is not
    # recognised as a repeat and a second one is logged for the send
    (second,) = service.assign_batch("hashed", [("bo", {"consent": True})], send_id="spring")
    assert second.decision_id != first.decision_id
    service.record_outcomes([OutcomeEvent("bo-click-2", second.decision_id, "click")])
    before = service.summarize("hashed")
    erasure = erase_recipient(service.engine, "bo", SECRET)  # failed on the send's unique index before
    assert erasure.decisions == 1
    assert '"bo"' not in _every_text(service.engine) and "'bo'" not in _every_text(service.engine)
    with service.engine.connect() as conn:
        rows = conn.execute(select(decisions_table.c.id, decisions_table.c.recipient_id,
                                   decisions_table.c.send_id)).all()
    token = erasure_token(SECRET, "bo")
    assert {r.id: (r.recipient_id, r.send_id) for r in rows} == {
        first.decision_id: (token, "spring"), second.decision_id: (token, None)}
    assert service.summarize("hashed") == before  # every count and reward stays
    assert all(not check.differences for check in verify_experiment(service.engine, "hashed"))
