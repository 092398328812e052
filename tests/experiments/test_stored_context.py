"""Exactly the attributes the spec names are stored with a decision (the README's spec reference)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from experiments.errors import Conflict, InvalidInput
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import decisions_table


def test_only_context_rule_eligibility_and_consent_attributes_are_stored(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(parse_spec({
        "key": "privacy",
        "slots": {"subject": {"variants": [{"id": "a", "content": "Hi {{ first_name | default: 'there' }}"},
                                           {"id": "b", "content": "Hello"}]}},
        "design": {"type": "contextual", "policy": "linucb", "context": ["device"]},
        "eligibility": {"attr": "country", "op": "in", "value": ["US", "CA"]},
        "rules": [{"when": {"attr": "segment", "op": "eq", "value": "vip"}, "force": {"subject": "a"}}],
        "consent_attribute": "opt_in",
        "reward": {"events": {"click": 1.0}},
    }))
    sent = {"device": "ios", "segment": "vip", "country": "US", "opt_in": True, "first_name": "Ada",
            "email": "ada@example.com", "birthday": "1815-12-10"}
    kept = service.assign("privacy", "ada", sent)
    assert kept.variants["subject"].content == "Hi Ada"  # the merge field was used ...
    declined = service.assign("privacy", "bo", {**sent, "opt_in": False})
    with engine.connect() as conn:
        rows = dict(conn.execute(select(decisions_table.c.id, decisions_table.c.context)).all())
    # ... and not stored; neither is anything else the spec does not name
    assert rows[kept.decision_id] == {"device": "ios", "segment": "vip", "country": "US", "opt_in": True}
    assert rows[declined.decision_id] is None  # no consent: no context at all


def test_check_recipients_raises_what_assign_batch_raises_and_stores_nothing(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(parse_spec({
        "key": "checked",
        "slots": {"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}},
        "design": {"type": "ab"},
        "record": ["segment"],
        "consent_attribute": "opt_in",
        "reward": {"events": {"click": 1.0}},
    }))
    fine = [("r1", {"segment": "vip"}), ("r2", {"segment": "vip", "opt_in": False})]
    service.check_recipients("checked", fine)
    for bad, field in [
        (fine + [("r3", {"segment": float("inf")})], "recipients[2].context.segment"),
        # declining consent stores no context, but a value no JSON can carry is bad input all the same
        (fine + [("r3", {"segment": float("nan"), "opt_in": False})], "recipients[2].context.segment"),
        (fine + [("x" * 129, {})], "recipients[2].recipient_id"),
        (fine + [("r3", [])], "recipients[2].context"),
    ]:
        with pytest.raises(InvalidInput) as checked:
            service.check_recipients("checked", bad)
        with pytest.raises(InvalidInput) as assigned:
            service.assign_batch("checked", bad)
        assert checked.value.field == assigned.value.field == field
        assert checked.value.reason == assigned.value.reason
    with engine.connect() as conn:
        assert conn.execute(select(decisions_table.c.id)).all() == []
    service.set_status("checked", "archived")
    with pytest.raises(Conflict, match="archived"):
        service.check_recipients("checked", fine)
