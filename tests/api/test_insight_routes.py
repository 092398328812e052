"""``GET /v1/experiments/{key}/insight``, ``POST .../preview`` and ``POST .../preview/report``, on an app
built by ``create_app`` with the insight router included (the lead registers it in ``create_app``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.routes import insight
from api.settings import Settings
from experiments.models import OutcomeEvent
from experiments.store import decisions_table
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY, make_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "api" / "examples" / "spring-sale-personal.yaml"

CONTEXTUAL: dict[str, Any] = {
    "key": "why",
    "slots": {"subject": {"variants": [
        {"id": "early", "content": "Early access, {{ first_name | default: 'friend' }}"},
        {"id": "sale", "content": "Spring sale"},
    ]}},
    "consent": {"missing": "allow"},
    "design": {"type": "contextual", "policy": "linear_ts", "context": ["device", "segment"],
               "update": {"delay_hours": 0}},
    "reward": {"events": {"click": 1.0}},
}


@pytest.fixture
def client(tmp_path) -> Any:
    settings = Settings(db=f"sqlite:///{tmp_path / 'insight.db'}", admin_key=ADMIN_KEY, send_key=SEND_KEY)
    app = create_app(settings)
    app.include_router(insight.router)
    with TestClient(app) as test_client:
        yield test_client
    if app.state.engine is not None:
        app.state.engine.dispose()


def _train(client: TestClient) -> None:
    """One send where only the segment drives clicks (vips click 'early', the others 'sale')."""
    service = client.app.state.service
    rng = np.random.default_rng(2)
    segments = rng.choice(["vip", "new", "lapsed"], 1000)
    devices = rng.choice(["ios", "web"], 1000)
    people = [
        (f"r{i}", {"segment": str(s), "device": str(d)})
        for i, (s, d) in enumerate(zip(segments, devices, strict=True))
    ]
    decisions = service.assign_batch("why", people)
    early = np.array([d.variants["subject"].id == "early" for d in decisions])
    clicks = rng.random(1000) < np.where((segments == "vip") == early, 0.3, 0.05)
    service.record_outcomes([OutcomeEvent(f"e{i}", d.decision_id, "click")
                             for i, (d, c) in enumerate(zip(decisions, clicks, strict=True)) if c])
    assert client.post("/v1/experiments/why/learn", headers=ADMIN).status_code == 200


def test_insight_names_the_attribute_that_drives_the_reward(client: TestClient) -> None:
    assert client.post("/v1/experiments", json=CONTEXTUAL, headers=ADMIN).status_code == 201
    _train(client)
    response = client.get("/v1/experiments/why/insight", params={"sample": 500}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sample_size"] == 500 and body["method"] == "permutation" and body["policy"] == "linear_ts"
    assert [a["attribute"] for a in body["attributes"]][0] == "segment"
    assert {a["attribute"] for a in body["attributes"]} == {"segment", "device"}


def test_a_decision_explains_its_features_over_http(client: TestClient) -> None:
    client.post("/v1/experiments", json=CONTEXTUAL, headers=ADMIN)
    _train(client)
    body = {"recipient_id": "v1", "context": {"segment": "vip", "device": "web", "first_name": "Ada"}}
    decision = client.post("/v1/experiments/why/assign", json=body, headers=SEND).json()
    assert decision["variants"]["subject"]["content"] in ("Early access, Ada", "Spring sale")
    why = client.get(f"/v1/decisions/{decision['decision_id']}", headers=ADMIN).json()
    assert why["features_method"] == "linear_weights"
    assert why["features"][0]["attribute"] == "segment"


@pytest.mark.parametrize(
    ("spec", "sample", "status"),
    [(make_spec(), 10, 409), (CONTEXTUAL, 0, 422), (CONTEXTUAL, 100_001, 422)],
)
def test_insight_errors(client: TestClient, spec: dict[str, Any], sample: int, status: int) -> None:
    client.post("/v1/experiments", json=spec, headers=ADMIN)
    response = client.get(f"/v1/experiments/{spec['key']}/insight", params={"sample": sample}, headers=ADMIN)
    assert response.status_code == status, response.text


def test_insight_needs_the_admin_key_and_a_known_experiment(client: TestClient) -> None:
    client.post("/v1/experiments", json=CONTEXTUAL, headers=ADMIN)
    assert client.get("/v1/experiments/why/insight").status_code == 401
    assert client.get("/v1/experiments/why/insight", headers=SEND).status_code == 403
    assert client.get("/v1/experiments/nope/insight", headers=ADMIN).status_code == 404


def test_preview_report_shows_detail_and_coverage_and_logs_nothing(client: TestClient) -> None:
    response = client.post("/v1/experiments", content=EXAMPLE.read_bytes(),
                           headers={**ADMIN, "Content-Type": "application/yaml"})
    assert response.status_code == 201, response.text
    recipients = [
        {"recipient_id": "ada", "context": {"consent": True, "first_name": "Ada", "segment": "vip",
                                            "location": "CA", "last_category": "outdoor"}},
        {"recipient_id": "bo", "context": {"consent": True, "segment": "new"}},
        {"recipient_id": "dee", "context": {"consent": False}},
    ]
    response = client.post("/v1/experiments/spring-sale-personal/preview/report",
                           json={"recipients": recipients}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    ada, bo, dee = body["previews"]
    assert ada["decision"]["variants"]["subject"] == {"id": "vip", "content": "Early access for you, Ada"}
    assert len(ada["rules_fired"]) == 2
    assert "personal" in bo["slots"]["subject"]["not_offered"]
    assert dee["fallback_only"] and body["coverage"]["fallback_only"][0]["recipient_id"] == "dee"
    results = client.get("/v1/experiments/spring-sale-personal/results", headers=ADMIN).json()
    assert sum(a["decisions"] for a in results["arms"]) == 0


def _decision_rows(client: TestClient) -> int:
    with client.app.state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(decisions_table)).scalar_one())


def test_preview_shows_rules_eligible_variants_probabilities_and_content(client: TestClient) -> None:
    response = client.post("/v1/experiments", content=EXAMPLE.read_bytes(),
                           headers={**ADMIN, "Content-Type": "application/yaml"})
    assert response.status_code == 201, response.text
    recipients = [
        {"recipient_id": "ada", "context": {"consent": True, "first_name": "Ada", "segment": "vip",
                                            "location": "CA", "last_category": "outdoor"}},
        {"recipient_id": "bo", "context": {"consent": True, "segment": "new", "last_category": "shoes"}},
        {"recipient_id": "dee", "context": {"consent": False, "segment": "vip", "location": "CA",
                                            "last_category": "outdoor"}},
    ]
    client.post("/v1/experiments/spring-sale-personal/assign", json=recipients[1], headers=SEND)
    before = _decision_rows(client)
    assert before == 1
    path = "/v1/experiments/spring-sale-personal/preview"
    assert client.post(path, json={"recipients": recipients}, headers=SEND).status_code == 403
    response = client.post(path, json={"recipients": recipients}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert _decision_rows(client) == before  # nothing is logged
    ada, bo, dee = response.json()["previews"]
    for p in (ada, bo, dee):  # the fields the answer always had
        assert {"decision", "explanation"} <= set(p) and p["explanation"]
        assert {"decision_id", "variants", "propensity", "reason"} <= set(p["decision"])
    # which rules fired, which variants were eligible, with rendered content and probabilities
    assert ada["rules_fired"] == ["outdoor buyers in California see the shop button",
                                  "vips get the vip subject line"]
    assert ada["rules_not_evaluated"] is None
    assert ada["slots"]["subject"]["offered"] == [
        {"id": "vip", "content": "Early access for you, Ada", "probability": 1.0}
    ]
    assert ada["slots"]["cta"]["not_offered"] == {"see": "excluded by the rules"}
    assert bo["rules_fired"] == []
    offered = {o["id"]: o for o in bo["slots"]["subject"]["offered"]}
    assert set(offered) == {"plain", "urgent", "vip"}
    assert offered["plain"]["content"] == "Spring sale: 20% off, friend"
    assert sum(o["probability"] for o in offered.values()) == pytest.approx(1.0)
    assert bo["slots"]["subject"]["not_offered"] == {"personal": "content: 'first_name' is undefined"}
    assert sum(c["probability"] for c in bo["combinations"]) == pytest.approx(1.0)
    drawn = bo["decision"]["variants"]
    label = f"subject={drawn['subject']['id']},cta={drawn['cta']['id']}"
    assert {c["variants"]: c["probability"] for c in bo["combinations"]}[label] == pytest.approx(
        bo["decision"]["propensity"]
    )
    # dee declined consent: the rules would fire on her attributes but were never applied
    assert dee["screening"] == "no_consent" and dee["rules_fired"] == []
    why = "not evaluated: the recipient has not consented, so the default variants"
    assert dee["rules_not_evaluated"] == why
    assert dee["fallback_only"] is True
