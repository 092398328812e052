"""Bad input over HTTP is a 422 naming the field (or a 404 for a key nothing can have), never a 500, and
nothing of the call is written: on SQLite and on PostgreSQL, whose text and JSON cannot hold NUL."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from experiments.store import decisions_table, experiments_table, orphans_table, outcomes_table
from tests.api.conftest import ADMIN, SEND, SPEC

NUL = "must not contain a NUL character (\\u0000)"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_client(request: pytest.FixtureRequest, make_client: Any, sqlite_url: str) -> TestClient:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    client = make_client(url)
    spec = copy.deepcopy(SPEC)
    spec["record"] = ["country"]
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    return client


def stored_rows(client: TestClient) -> dict[str, int]:
    engine = client.app.state.engine or client.app.state.service.core.engine  # an app given its service
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (experiments_table, decisions_table, outcomes_table, orphans_table)
        }


def problem(response: Any) -> tuple[list[Any], str]:
    assert response.status_code == 422, response.text
    (only,) = response.json()["detail"]
    return only["loc"], only["msg"]


def test_nul_characters_are_422_at_their_field_and_nothing_is_written(any_client: TestClient) -> None:
    client = any_client
    decision = client.post("/v1/experiments/hello/assign", json={"recipient_id": "r0"}, headers=SEND).json()
    before = stored_rows(client)
    for key, field in [("hel\x00lo", "key"), ("hello2", "name")]:
        spec = {**SPEC, "key": key} if field == "key" else {**SPEC, "key": key, "name": "a\x00b"}
        assert problem(client.post("/v1/experiments", json=spec, headers=ADMIN)) == (["body", field], NUL)
    spec = copy.deepcopy(SPEC)
    spec["slots"]["cta"]["variants"][0]["content"] = "Shop\x00now"
    assert problem(client.post("/v1/experiments", json=spec, headers=ADMIN)) == (
        ["body", "slots", "cta", "variants", 0, "content"], NUL)
    assign, batch = "/v1/experiments/hello/assign", "/v1/experiments/hello/assign/batch"
    cases = [
        (assign, {"recipient_id": "r\x00"}, ["body", "recipient_id"]),
        (assign, {"recipient_id": "r", "context": {"country": "D\x00E"}}, ["body", "context", "country"]),
        (assign, {"recipient_id": "r", "context": {"first_name": "A\x00"}},
         ["body", "context", "first_name"]),
        (batch, {"recipients": [{"recipient_id": "a"}, {"recipient_id": "b\x00"}]},
         ["body", "recipients", 1, "recipient_id"]),
        (batch, {"recipients": [{"recipient_id": "a", "context": {"country": ["D\x00E"]}}]},
         ["body", "recipients", 0, "context", "country"]),
    ]
    for path, body, loc in cases:
        assert problem(client.post(path, json=body, headers=SEND)) == (loc, NUL), body
    event = {"event_id": "e1", "decision_id": decision["decision_id"], "type": "click"}
    for field in ("event_id", "decision_id", "type", "user_agent"):
        bad = {**event, field: (event.get(field) or "Mozilla") + "\x00"}
        response = client.post("/v1/outcomes", json={"events": [event, bad]}, headers=SEND)
        assert problem(response) == (["body", "events", 1, field], NUL)
    assert stored_rows(client) == before
    # a key or an id nothing stored can have: not found, without asking the database
    for path in ("/v1/experiments/hel%00lo", "/v1/experiments/hel%00lo/results"):
        response = client.get(path, headers=ADMIN)
        assert response.status_code == 404 and "hel\\x00lo" in response.json()["detail"], response.text
    response = client.post("/v1/experiments/hel%00lo/assign", json={"recipient_id": "r"}, headers=SEND)
    assert response.status_code == 404
    response = client.get(f"/v1/decisions/{decision['decision_id']}%00", headers=ADMIN)
    assert response.status_code == 404 and response.json()["detail"].startswith("decision ")
    assert stored_rows(client) == before


def test_a_spec_with_numbers_that_break_the_experiment_is_422_and_not_saved(any_client: TestClient) -> None:
    client = any_client
    cases = [
        ('"weight": 1', '"weight": Infinity', ["body", "slots", "subject", "variants", 0, "weight"],
         "must be finite, got inf"),
        ('"click": 1.0', '"click": NaN', ["body", "reward", "events", "click"], "must be finite, got nan"),
        ('"click": 1.0', '"click": 1e308', ["body", "reward", "events", "click"],
         "must lie between -1,000,000 and 1,000,000, got 1e+308"),
    ]
    for old, new, loc, msg in cases:
        spec = copy.deepcopy(SPEC)
        spec["key"] = "numbers"
        spec["slots"]["subject"]["variants"][0]["weight"] = 1
        text = json.dumps(spec)
        assert old in text
        response = client.post("/v1/experiments", content=text.replace(old, new, 1),
                               headers={**ADMIN, "Content-Type": "application/json"})
        assert problem(response) == (loc, msg)
    assert client.get("/v1/experiments/numbers", headers=ADMIN).status_code == 404


def test_nesting_deeper_than_the_parsers_recurse_is_422_never_500(any_client: TestClient) -> None:
    client = any_client
    deep = "[" * 100_000 + "]" * 100_000
    json_headers = {"Content-Type": "application/json"}
    response = client.post("/v1/experiments", content=deep, headers={**ADMIN, **json_headers})
    assert problem(response) == (["body"], "cannot parse application/json: nested too deeply (a spec nests "
                                           "at most 100 levels)")
    response = client.post("/v1/experiments", content="a: " + deep,
                           headers={**ADMIN, "Content-Type": "application/yaml"})
    assert problem(response) == (["body"], "cannot parse application/yaml: nested too deeply (a spec nests "
                                           "at most 100 levels)")
    body = '{"recipient_id": "r", "context": {"country": ' + deep + "}}"
    response = client.post("/v1/experiments/hello/assign", content=body, headers={**SEND, **json_headers})
    assert problem(response) == (["body"], "could not be read as JSON: nested too deeply")
    body = '{"recipient_id": "r", "context": {"country": ' + "[" * 40 + "]" * 40 + "}}"
    response = client.post("/v1/experiments/hello/assign", content=body, headers={**SEND, **json_headers})
    assert problem(response) == (["body", "context", "country"], "nested too deeply (at most 32 levels)")
    chain = '{"not": ' * 449 + '{"attr": "a", "op": "exists"}' + "}" * 449
    text = json.dumps({**SPEC, "key": "deep", "eligibility": "@"}).replace('"@"', chain)
    loc, msg = problem(client.post("/v1/experiments", content=text, headers={**ADMIN, **json_headers}))
    assert loc == ["body", "eligibility", *["not"] * 32]
    assert msg == "nested too deeply: conditions nest at most 32 levels"
