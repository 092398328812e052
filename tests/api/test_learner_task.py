"""The background learner of a served app: started with the app's lifespan, it learns what the specs'
update schedules call for without any call to ``/learn``, and drops the contexts past a retention
period when one is set; off by a setting."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.settings import Settings
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, decisions_table, make_engine
from tests.api.conftest import ADMIN, SEND, make_spec
from tests.experiments.conftest import Clock

WAIT_SECONDS = 20.0


def bandit_spec(**update: float) -> dict:
    spec = make_spec(design={"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0, **update}})
    spec["reward"] = {"events": {"click": 1.0}}
    return spec


def send_and_click(client: TestClient, key: str, n: int) -> list[dict]:
    recipients = [{"recipient_id": f"u{i}"} for i in range(n)]
    answer = client.post(f"/v1/experiments/{key}/assign/batch", json={"recipients": recipients}, headers=SEND)
    assert answer.status_code == 200, answer.text
    decisions = answer.json()["decisions"]
    events = [{"event_id": f"c-{d['decision_id']}", "decision_id": d["decision_id"], "type": "click"}
              for d in decisions[: n // 2]]
    posted = client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    assert posted.status_code == 200 and posted.json()["accepted"] == len(events), posted.text
    return decisions


def policy_version(client: TestClient, key: str) -> int:
    answer = client.post(f"/v1/experiments/{key}/assign", json={"recipient_id": "probe"}, headers=SEND)
    assert answer.status_code == 200, answer.text
    return answer.json()["policy_version"]


def test_the_background_learner_advances_the_policy_without_a_call_to_learn(sqlite_url):
    settings = Settings(db=sqlite_url, admin_key="test-admin-key", send_key="test-send-key",
                        ui_refresh_seconds=0, learner_poll_seconds=0.05)
    app = create_app(settings)
    with TestClient(app) as client:
        created = client.post("/v1/experiments", json=bandit_spec(every_outcomes=5), headers=ADMIN)
        assert created.status_code == 201, created.text
        decisions = send_and_click(client, "hello", 20)
        assert {d["policy_version"] for d in decisions} == {1}
        service = app.state.service
        deadline = time.monotonic() + WAIT_SECONDS
        while service.policy_state("hello")[0] == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert policy_version(client, "hello") == 2
        assert service.learning("hello").learned_decisions == 20  # the send, learned once
        thread = app.state.learner
        assert thread.alive
    assert not thread.alive  # stopped with the app


def test_the_learner_can_be_switched_off(sqlite_url):
    settings = Settings(db=sqlite_url, admin_key="test-admin-key", send_key="test-send-key",
                        ui_refresh_seconds=0, learner=False)
    app = create_app(settings)
    with TestClient(app) as client:
        created = client.post("/v1/experiments", json=bandit_spec(every_outcomes=1), headers=ADMIN)
        assert created.status_code == 201, created.text
        send_and_click(client, "hello", 10)
        assert getattr(app.state, "learner", None) is None
        time.sleep(0.5)
        assert policy_version(client, "hello") == 1
        learned = client.post("/v1/experiments/hello/learn", headers=ADMIN)  # still learns at once
        assert learned.status_code == 200 and learned.json()["policy_version"] == 2
        assert policy_version(client, "hello") == 2


def test_with_a_retention_period_the_background_learner_drops_old_contexts(sqlite_url):
    engine = make_engine(sqlite_url)
    create_tables(engine)
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    service = ExperimentService(engine, clock=clock, seed=1)
    service.create(parse_spec(make_spec(record=["segment"])))
    service.assign_batch("hello", [(f"old{i}", {"segment": "vip"}) for i in range(6)])
    clock.advance(days=40)
    service.assign_batch("hello", [(f"new{i}", {"segment": "new"}) for i in range(3)])
    settings = Settings(db=sqlite_url, admin_key="test-admin-key", send_key="test-send-key",
                        ui_refresh_seconds=0, learner_poll_seconds=0.05, retention_days=30)
    app = create_app(settings, service=service)
    try:
        with TestClient(app):
            deadline = time.monotonic() + WAIT_SECONDS
            while stored_contexts(engine)["old0"] is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            contexts = stored_contexts(engine)
        assert all(contexts[f"old{i}"] is None for i in range(6))
        assert all(contexts[f"new{i}"] == {"segment": "new"} for i in range(3))  # within the period
    finally:
        engine.dispose()


def stored_contexts(engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(decisions_table.c.recipient_id, decisions_table.c.context)).all())
