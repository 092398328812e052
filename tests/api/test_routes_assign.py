"""``/v1/experiments/{key}/assign`` and ``/assign/batch``."""

from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN, SEND, make_spec


def test_assign_answers_the_contract(client, experiment):
    body = {"recipient_id": "r-1", "context": {"first_name": "Ana", "consent": True}}
    response = client.post(f"/v1/experiments/{experiment}/assign", json=body, headers=SEND)
    assert response.status_code == 200, response.text
    decision = response.json()
    assert {"decision_id", "variants", "propensity", "policy_version", "reason"} <= set(decision)
    assert set(decision["variants"]) == {"subject", "cta"}
    assert decision["variants"]["subject"]["id"] in {"plain", "urgent"}
    cta_content = {"shop": "Shop now", "see": "See more"}
    assert decision["variants"]["cta"]["content"] == cta_content[decision["variants"]["cta"]["id"]]
    # a 2 x 2 multivariate design with equal weights: each combination has probability 1/4
    assert decision["propensity"] == pytest.approx(0.25)


def test_assignment_is_sticky_over_http(client, experiment):
    path = f"/v1/experiments/{experiment}/assign"
    first = client.post(path, json={"recipient_id": "same", "context": {}}, headers=SEND).json()
    again = client.post(path, json={"recipient_id": "same", "context": {}}, headers=SEND).json()
    assert first["variants"] == again["variants"]
    assert first["decision_id"] != again["decision_id"]  # each send is its own logged decision


def test_batch_answers_one_decision_per_recipient_in_order(client, experiment):
    recipients = [{"recipient_id": f"r-{i}", "context": {"first_name": f"N{i}"}} for i in range(300)]
    response = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                           headers=SEND)
    assert response.status_code == 200, response.text
    decisions = response.json()["decisions"]
    assert [d["recipient_id"] for d in decisions] == [r["recipient_id"] for r in recipients]
    assert len({d["decision_id"] for d in decisions}) == 300
    single = client.post(f"/v1/experiments/{experiment}/assign", json=recipients[7], headers=SEND).json()
    assert single["variants"] == decisions[7]["variants"]


def test_batch_of_100_001_is_rejected_with_422(client, experiment):
    recipients = [{"recipient_id": str(i)} for i in range(100_001)]
    response = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                           headers=SEND)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "recipients"]
    assert "100000" in problem["msg"]
    assert len(response.content) < 1000  # the request is not echoed back


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "recipient_id"]),
        ({"recipient_id": ""}, ["body", "recipient_id"]),
        ({"recipient_id": 12}, ["body", "recipient_id"]),
        ({"recipient_id": "x", "context": [1, 2]}, ["body", "context"]),
        ({"recipient_id": "x", "extra": 1}, ["body", "extra"]),
        ({"recipient_id": "x\u0000"}, ["body", "recipient_id"]),
        ({"recipient_id": "x", "context": {"first_name": "A\u0000na"}}, ["body", "context", "first_name"]),
    ],
)
def test_bad_single_assign_bodies_are_422_naming_the_field(client, experiment, body, loc):
    response = client.post(f"/v1/experiments/{experiment}/assign", json=body, headers=SEND)
    assert response.status_code == 422
    assert loc in [p["loc"] for p in response.json()["detail"]]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [  # a single assign has no list of recipients: its problems are not under recipients[0]
        ("assign", '{"recipient_id": "x", "context": {"consent": NaN}}', ["body", "context", "consent"]),
        ("assign", '{"recipient_id": "x", "context": {"consent": [[Infinity]]}}',
         ["body", "context", "consent"]),
        ("assign/batch",
         '{"recipients": [{"recipient_id": "a"}, {"recipient_id": "b", "context": {"consent": NaN}}]}',
         ["body", "recipients", 1, "context", "consent"]),
    ],
)
def test_a_bad_context_value_is_422_at_its_own_path(client, experiment, path, body, loc):
    response = client.post(f"/v1/experiments/{experiment}/{path}", content=body,
                           headers={**SEND, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": loc, "msg": response.json()["detail"][0]["msg"]}]
    assert "finite numbers" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"recipients": []}, ["body", "recipients"]),
        ({"recipients": [{"recipient_id": "a"}, {"context": {}}]}, ["body", "recipients", 1, "recipient_id"]),
        ({}, ["body", "recipients"]),
        ({"recipients": [{"recipient_id": "a"}, {"recipient_id": "b\u0000"}]},
         ["body", "recipients", 1, "recipient_id"]),
        ({"recipients": [{"recipient_id": "a", "context": {"consent": "y\u0000"}}]},
         ["body", "recipients", 0, "context", "consent"]),
    ],
)
def test_bad_batch_bodies_are_422_naming_the_field(client, experiment, body, loc):
    response = client.post(f"/v1/experiments/{experiment}/assign/batch", json=body, headers=SEND)
    assert response.status_code == 422
    assert loc in [p["loc"] for p in response.json()["detail"]]


def test_assign_to_unknown_experiment_is_404(client):
    response = client.post("/v1/experiments/ghost/assign", json={"recipient_id": "r"}, headers=SEND)
    assert response.status_code == 404
    assert "'ghost'" in response.json()["detail"]


def test_paused_experiment_gives_the_defaults(client, experiment):
    client.post(f"/v1/experiments/{experiment}/pause", headers=ADMIN)
    recipients = [{"recipient_id": f"p-{i}"} for i in range(20)]
    decisions = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    chosen = {(d["variants"]["subject"]["id"], d["variants"]["cta"]["id"]) for d in decisions}
    assert chosen == {("plain", "shop")}
    assert {d["reason"] for d in decisions} == {"paused"}


def test_preview_explains_and_logs_nothing(client, experiment):
    recipients = [{"recipient_id": "pv-1", "context": {"first_name": "Bo"}}, {"recipient_id": "pv-2"}]
    response = client.post(f"/v1/experiments/{experiment}/preview", json={"recipients": recipients},
                           headers=ADMIN)
    assert response.status_code == 200, response.text
    previews = response.json()["previews"]
    assert [p["decision"]["recipient_id"] for p in previews] == ["pv-1", "pv-2"]
    assert all(p["explanation"] for p in previews)
    summary = client.get(f"/v1/experiments/{experiment}/results?detail=false", headers=ADMIN).json()
    assert sum(a["decisions"] for a in summary["arms"]) == 0  # nothing was logged
    logged = client.post(f"/v1/experiments/{experiment}/assign", json=recipients[0], headers=SEND).json()
    assert logged["variants"] == previews[0]["decision"]["variants"]  # the preview told the truth


def test_a_logged_decision_can_be_explained(client, experiment):
    decision = client.post(f"/v1/experiments/{experiment}/assign", json={"recipient_id": "ex"},
                           headers=SEND).json()
    response = client.get(f"/v1/decisions/{decision['decision_id']}", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["variants"] == {s: v["id"] for s, v in decision["variants"].items()}
    missing = client.get("/v1/decisions/nope", headers=ADMIN)
    assert missing.status_code == 404 and "'nope'" in missing.json()["detail"]


@pytest.mark.parametrize("raw", [b"\xff\xfe{", b'{"recipient_id": "\xc3"}'])
def test_a_body_that_is_not_utf8_is_422_on_the_body(client, experiment, raw):
    # found by schemathesis: FastAPI answered 400 "error parsing the body", a status no route declares
    response = client.post(f"/v1/experiments/{experiment}/assign", content=raw,
                           headers={**SEND, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_assign_to_an_archived_experiment_is_a_declared_409(client, experiment):
    assert client.post(f"/v1/experiments/{experiment}/archive", headers=ADMIN).status_code == 200
    response = client.post(f"/v1/experiments/{experiment}/assign", json={"recipient_id": "r"}, headers=SEND)
    assert response.status_code == 409 and "archived" in response.json()["detail"]
    declared = client.app.openapi()["paths"]["/v1/experiments/{key}/assign"]["post"]["responses"]
    assert "409" in declared


@pytest.mark.parametrize("value", ["denied", "", "null", "maybe", {}, -1])
def test_a_declining_or_unrecognised_consent_stores_no_context(client, value):
    """Consent fails closed: only a recognised yes is consent, so ``"denied"``, a blank cell or any
    other value under ``missing: deny`` gets the defaults and has nothing of its context stored."""
    spec = make_spec(consent={"attribute": "consent", "missing": "deny"})
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    body = {"recipient_id": "r-1", "context": {"consent": value, "first_name": "Ana"}}
    decision = client.post(f"/v1/experiments/{spec['key']}/assign", json=body, headers=SEND).json()
    assert decision["reason"] == "no_consent"
    stored = client.get("/v1/recipients/r-1", headers=ADMIN).json()["decisions"]
    assert [d["context"] for d in stored] == [None]
    why = client.get(f"/v1/decisions/{decision['decision_id']}", headers=ADMIN).json()["explanation"]
    assert why[0] == "no context stored (the recipient did not consent)"
