"""``/healthz`` and ``/metrics`` counting what the service did."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import ADMIN, SEND
from tests.api.test_metrics import parse_exposition


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_metrics_count_decisions_outcomes_errors_and_latency(client, experiment):
    recipients = [{"recipient_id": f"m-{i}"} for i in range(40)]
    decisions = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    client.post(f"/v1/experiments/{experiment}/assign", json={"recipient_id": "one"}, headers=SEND)
    events = [{"event_id": f"m-{i}", "decision_id": d["decision_id"], "type": "click"}
              for i, d in enumerate(decisions[:10])]
    events.append({"event_id": "orphan", "decision_id": "nope", "type": "click"})
    client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    client.post("/v1/outcomes", json={"events": events[:3]}, headers=SEND)
    client.get("/v1/experiments/missing", headers=ADMIN)
    client.get("/v1/experiments", headers={"Authorization": "Bearer wrong"})

    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_exposition(response.text)
    assert samples[f'sendlab_decisions_total{{experiment="{experiment}"}}'] == 41
    assert samples['sendlab_outcomes_total{result="accepted"}'] == 10
    assert samples['sendlab_outcomes_total{result="duplicate"}'] == 3
    assert samples['sendlab_outcomes_total{result="orphan"}'] == 1
    assert samples['sendlab_http_errors_total{status="404"}'] == 1
    assert samples['sendlab_http_errors_total{status="401"}'] == 1
    route = "/v1/experiments/{key}/assign/batch"
    assert samples[f'sendlab_http_request_duration_seconds_count{{route="{route}"}}'] == 1
    assert samples[f'sendlab_http_requests_total{{route="{route}",status="200"}}'] == 1


def test_the_analyst_pages_are_mounted(client):
    # with keys set, the pages send a visitor without the admin cookie to their login form
    response = client.get("/ui", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login")
    assert client.get("/ui/nothing-here").status_code == 404


class BrokenService:
    """A service whose every call fails with an unexpected error (a bug, not bad input)."""

    def list(self):
        raise RuntimeError("disk on fire")


def test_an_unexpected_error_is_a_logged_500_counted_in_the_metrics(caplog):
    # the stand-in service has no store for a background learner to read: the learner is off
    app = create_app(Settings(db="sqlite://", learner=False), service=BrokenService())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/experiments")
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error (logged)"}
        assert "disk on fire" not in response.text
        samples = parse_exposition(client.get("/metrics").text)
    assert samples['sendlab_http_errors_total{status="500"}'] == 1
    assert any("unhandled error on GET /v1/experiments" in r.getMessage() for r in caplog.records)
