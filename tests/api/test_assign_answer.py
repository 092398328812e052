"""The single-assign answer written in the route's thread is, byte for byte, what FastAPI writes for the
``DecisionPublic`` response model (the reference: a route that returns ``decision_to_dict`` and lets
FastAPI validate and serialise it)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.convert import decision_json, decision_to_dict
from api.models.assign import DecisionPublic
from experiments.models import Decision, VariantChoice
from tests.api.conftest import ADMIN, SEND, SPEC
from tests.api.test_batch import decisions_like


def fastapi_answer(decision: Decision) -> bytes:
    app = FastAPI()

    @app.post("/answer", response_model=DecisionPublic)
    def answer() -> dict:
        return decision_to_dict(decision)

    with TestClient(app) as client:
        response = client.post("/answer")
        assert response.headers["content-type"] == "application/json"
        return response.content


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(decision=decisions_like)
def test_the_answer_is_what_fastapi_writes_for_the_model(decision):
    assert decision_json(decision) == fastapi_answer(decision)


def test_a_typical_decision():
    d = Decision("01a2272d-2600-75b5-ae46-52c6fb4fe393", "hello", "r1",
                 {"subject": VariantChoice("plain", "Hello Zoë"), "cta": VariantChoice("shop", "Shop now")},
                 0.25, 3, "policy", False, datetime(2026, 11, 24, 14, 0, 0, 123456, tzinfo=UTC))
    assert decision_json(d) == fastapi_answer(d)
    assert b'"created_at":"2026-11-24T14:00:00.123456Z"' in decision_json(d)


def test_the_route_answers_json_with_the_model_fields(client):
    assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
    body = {"recipient_id": "r1", "context": {"first_name": "Ana"}}
    response = client.post("/v1/experiments/hello/assign", json=body, headers=SEND)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == list(DecisionPublic.model_fields)
    assert body["created_at"].endswith("Z")
