"""The lean batch path (``api.batch``) against the models it stands in for.

The reference is the model path it replaced: ``BatchAssignRequest`` validating the parsed JSON (what
FastAPI did with a model body) and ``decision_to_dict`` serialised by ``json``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.batch import batch_body_schema, decisions_json, parse_batch_body
from api.convert import decision_to_dict
from api.models.assign import BatchAssignRequest
from experiments.models import Decision, VariantChoice
from tests.api.conftest import SEND

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                          max_size=3), max_leaves=8)
recipient_like = st.dictionaries(
    st.sampled_from(["recipient_id", "context", "other"]),
    st.text(max_size=3) | st.just("x" * 129) | st.dictionaries(st.text(max_size=4), json_values, max_size=2)
    | json_values,
    max_size=3,
)
body_like = st.dictionaries(
    st.sampled_from(["recipients", "extra"]), st.lists(recipient_like, max_size=4) | json_values, max_size=2
) | json_values


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=body_like)
def test_lean_parser_accepts_and_rejects_exactly_as_the_model(body):
    raw = json.dumps(body).encode()
    try:
        model = BatchAssignRequest.model_validate(json.loads(raw))
    except ValidationError as exc:
        expected_locs = sorted(("body", *e["loc"]) for e in exc.errors())
        with pytest.raises(RequestValidationError) as caught:
            parse_batch_body(raw)
        assert sorted(tuple(e["loc"]) for e in caught.value.errors()) == expected_locs
    else:
        assert parse_batch_body(raw) == [(r.recipient_id, r.context) for r in model.recipients]


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", b"[1]", b"null"])
def test_bytes_that_are_not_a_body_are_a_validation_error_on_the_body(raw):
    with pytest.raises(RequestValidationError) as caught:
        parse_batch_body(raw)
    assert all(e["loc"][0] == "body" for e in caught.value.errors())


def test_decisions_json_is_decision_to_dict_serialised():
    stamp = datetime(2026, 11, 24, 14, 0, 0, 123456, tzinfo=UTC)
    decisions = [
        Decision(decision_id=f"d{i}", experiment="hello", recipient_id=f"r{i}",
                 variants={"subject": VariantChoice("plain", f"Hello Ana é {i}"),
                           "cta": VariantChoice("shop", "Shop now")},
                 propensity=0.25 + i / 100, policy_version=None if i else 3, reason="assigned",
                 explored=bool(i % 2), created_at=stamp if i < 2 else stamp.replace(second=i))
        for i in range(4)
    ]
    expected = {"decisions": [decision_to_dict(d) for d in decisions]}
    assert json.loads(decisions_json(decisions)) == json.loads(json.dumps(expected))


def test_decisions_json_writes_each_time_as_its_own_zone_writes_it():
    """Equal instants in two zones are written apart (the written times are reused by identity)."""
    utc = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    choice = VariantChoice("plain", "Hi")
    decisions = [
        Decision(decision_id=f"d{i}", experiment="hello", recipient_id=f"r{i}", variants={"subject": choice},
                 propensity=0.5, policy_version=1, reason="policy", explored=False, created_at=moment,
                 send_at=moment, feature_version=2)
        for i, moment in enumerate([utc, paris, utc])
    ]
    answer = json.loads(decisions_json(decisions))["decisions"]
    assert [d["send_at"] for d in answer] == [utc.isoformat(), paris.isoformat(), utc.isoformat()]
    assert answer == [decision_to_dict(d) for d in decisions]


texts = st.text(max_size=8)  # any code point but a lone surrogate (not valid in JSON text)
zones = st.sampled_from([UTC, timezone(timedelta(hours=1))])
choices = st.builds(VariantChoice, texts, texts)
decisions_like = st.builds(
    Decision,
    decision_id=texts, experiment=texts, recipient_id=texts,
    variants=st.dictionaries(texts, choices, max_size=3),
    propensity=st.floats(min_value=0, max_value=1) | st.sampled_from([1e-300, 5e-7, 1.0]),
    policy_version=st.none() | st.integers(min_value=-1, max_value=2**40),
    reason=texts, explored=st.none() | st.booleans(),
    created_at=st.datetimes(timezones=zones) | st.none(),
    content_notes=st.dictionaries(texts, texts, max_size=2),
    send_at=st.none() | st.datetimes(timezones=zones),
    feature_version=st.none() | st.integers(min_value=0, max_value=2**40),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(decisions=st.lists(decisions_like, max_size=4).flatmap(
    lambda ds: st.just(ds + ds[:1])))  # a repeated decision: its cached parts are reused
def test_decisions_json_is_decision_to_dict_serialised_for_any_decision(decisions):
    expected = {"decisions": [decision_to_dict(d) for d in decisions]}
    raw = decisions_json(decisions)
    raw.decode("utf-8")  # UTF-8 text
    assert json.loads(raw) == json.loads(json.dumps(expected))


def test_the_openapi_page_documents_the_model_body(client):
    schema = batch_body_schema()
    assert "$defs" not in json.dumps(schema)
    items = schema["properties"]["recipients"]
    assert (items["minItems"], items["maxItems"]) == (1, 100_000)
    assert items["items"]["required"] == ["recipient_id"]
    assert items["items"]["additionalProperties"] is False
    documented = client.app.openapi()["paths"]["/v1/experiments/{key}/assign/batch"]["post"]["requestBody"]
    assert documented["content"]["application/json"]["schema"] == schema


def test_batch_over_http_answers_the_model(client, experiment):
    from api.models.assign import BatchDecisions

    recipients = [{"recipient_id": f"r{i}", "context": {"first_name": "Zoë"}} for i in range(50)]
    response = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                           headers=SEND)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    answer = BatchDecisions.model_validate(response.json())
    assert [d.recipient_id for d in answer.decisions] == [r["recipient_id"] for r in recipients]
    assert all(d.variants["subject"].content in ("Hello Zoë", "Last chance") for d in answer.decisions)
