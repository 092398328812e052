"""``POST /v1/features/refresh`` stores a feature version; a spec with ``context_from: features``
assigns recipients sent by id alone from it (single and batch), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import ADMIN, SEND, make_spec
from tests.experiments.features.test_hand_history import history

BUYERS = {"attr": "frequency", "op": "gte", "value": 2}  # ann, dee and hal in the hand history
SLOTS = {"subject": {"variants": [{"id": "plain", "content": "Hello"},
                                  {"id": "urgent", "content": "Last chance"}]},
         "cta": {"variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]}}


def features_spec(**changes) -> dict:
    return make_spec(**{"slots": SLOTS, "context_from": "features", **changes})


def body(**changes) -> dict:
    events = history().replace({np.nan: None}).to_dict("records")
    return {"as_of": "2024-06-01", "events": events, "k": 3, "window_days": 90, **changes}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, sqlite_url) -> str:
    return sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def test_refresh_then_assign_by_id_alone(make_client, db) -> None:
    client = make_client(db)
    assert client.post("/v1/features/refresh", json=body(), headers=SEND).status_code == 403
    response = client.post("/v1/features/refresh", json=body(), headers=ADMIN)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["version"], stored["recipients"], stored["as_of"]) == (1, 10, "2024-06-01T00:00:00+00:00")
    assert stored["events"]["used"] == 24 and stored["model"] is None and stored["settings"]["k"] == 3

    spec = features_spec(eligibility=BUYERS)
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    single = client.post("/v1/experiments/hello/assign", json={"recipient_id": "ann"}, headers=SEND).json()
    assert (single["reason"], single["feature_version"]) == ("assigned", 1)
    recipients = [{"recipient_id": "bob"}, {"recipient_id": "hal"}, {"recipient_id": "zoe"},
                  {"recipient_id": "cy", "context": {"frequency": 4}}]
    batch = client.post("/v1/experiments/hello/assign/batch", json={"recipients": recipients}, headers=SEND)
    assert batch.status_code == 200, batch.text
    decisions = batch.json()["decisions"]
    assert [d["reason"] for d in decisions] == ["ineligible", "assigned", "no_features", "assigned"]
    assert {d["feature_version"] for d in decisions} == {1}
    zoe = decisions[2]
    assert {s: v["id"] for s, v in zoe["variants"].items()} == {"subject": "plain", "cta": "shop"}

    explained = client.get(f"/v1/decisions/{single['decision_id']}", headers=ADMIN)
    assert explained.status_code == 200, explained.text  # the stored context re-evaluates the condition

    again = client.post("/v1/features/refresh", json=body(window_days=30), headers=ADMIN).json()
    assert again["version"] == 2
    single = client.post("/v1/experiments/hello/assign", json={"recipient_id": "ann"}, headers=SEND).json()
    # in 30 days ann bought twice (05-20 and 05-31): still a buyer, now read from version 2
    assert (single["reason"], single["feature_version"]) == ("assigned", 2)


def test_a_spec_without_features_answers_a_null_version(client, experiment) -> None:
    decision = client.post(f"/v1/experiments/{experiment}/assign", json={"recipient_id": "r"}, headers=SEND)
    assert decision.json()["feature_version"] is None


def test_a_bad_refresh_is_422_at_its_field_and_stores_nothing(client) -> None:
    bad = client.post("/v1/features/refresh", json=body(window_days=0), headers=ADMIN)
    assert bad.status_code == 422 and "window_days" in bad.text
    spec = features_spec()
    client.post("/v1/experiments", json=spec, headers=ADMIN)
    decision = client.post("/v1/experiments/hello/assign", json={"recipient_id": "ann"}, headers=SEND).json()
    assert (decision["reason"], decision["feature_version"]) == ("no_features", None)


@pytest.mark.parametrize("route", ["compute", "refresh"])
def test_a_lone_surrogate_in_a_recipient_id_is_422_at_its_event(client, route) -> None:
    events = body()["events"]
    events[2] = {**events[2], "recipient_id": "\ud800"}
    raw = json.dumps(body(events=events))  # ASCII: the surrogate escaped as JSON spells it
    assert "\\ud800" in raw
    response = client.post(f"/v1/features/{route}", content=raw,
                           headers={**ADMIN, "content-type": "application/json"})
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "events", 2, "recipient_id"]
    assert detail["msg"].startswith("must be Unicode text: a lone UTF-16 surrogate")
    client.post("/v1/experiments", json=features_spec(), headers=ADMIN)
    decision = client.post("/v1/experiments/hello/assign", json={"recipient_id": "ann"}, headers=SEND).json()
    assert decision["feature_version"] is None  # nothing stored


def test_a_bad_spec_key_is_422_at_its_path(client) -> None:
    response = client.post("/v1/experiments", json=features_spec(context_from="crm"), headers=ADMIN)
    assert response.status_code == 422 and "context_from" in response.text


def test_the_refresh_command_stores_a_version_the_service_reads(tmp_path, sqlite_url, make_client) -> None:
    path = tmp_path / "history.csv"
    history().to_csv(path, index=False)
    runner = CliRunner()
    args = ["features", "refresh", str(path), "--as-of", "2024-06-01", "--k", "3", "--window-days", "90",
            "--db", sqlite_url]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "feature version 1: 10 recipients as of 2024-06-01T00:00:00+00:00"
    second = runner.invoke(app, [*args, "--json"])
    assert second.exit_code == 0 and json.loads(second.stdout)["version"] == 2
    bad = runner.invoke(app, [*args[:-2], "--k", "11", "--db", sqlite_url])
    assert bad.exit_code == 1 and bad.output.splitlines()[-1].startswith("error: --k: 11 segments need")

    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=features_spec(eligibility=BUYERS), headers=ADMIN)
    decision = client.post("/v1/experiments/hello/assign", json={"recipient_id": "hal"}, headers=SEND).json()
    assert (decision["reason"], decision["feature_version"]) == ("assigned", 2)
