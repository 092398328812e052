"""The key matrix: admin may do everything, the send key only assign and post outcomes (issue 4); 401 / 403
otherwise. Preview is admin only: it reads every rule and variant of an experiment."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import ADMIN, ADMIN_KEY, SEND_KEY, SPEC

ROUTES = [  # (method, path, body, scope)
    ("POST", "/v1/experiments", SPEC, "admin"),
    ("GET", "/v1/experiments", None, "admin"),
    ("GET", "/v1/experiments/hello", None, "admin"),
    ("POST", "/v1/experiments/hello/pause", None, "admin"),
    ("POST", "/v1/experiments/hello/resume", None, "admin"),
    ("POST", "/v1/experiments/hello/learn", None, "admin"),
    ("GET", "/v1/experiments/hello/results", None, "admin"),
    ("GET", "/v1/experiments/hello/report", None, "admin"),
    ("POST", "/v1/experiments/hello/preview", {"recipients": [{"recipient_id": "r"}]}, "admin"),
    ("POST", "/v1/experiments/hello/preview/report", {"recipients": [{"recipient_id": "r"}]}, "admin"),
    ("POST", "/v1/power/rate", {"baseline": 0.03, "mde": 0.1, "relative": True}, "admin"),
    ("POST", "/v1/power/mean", {"sd": 12.0, "mde": 0.5}, "admin"),
    ("POST", "/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 20_000}, "admin"),
    ("POST", "/v1/power/rate/power", {"baseline": 0.03, "mde": 0.003, "n_per_arm": 20_000}, "admin"),
    ("POST", "/v1/power/rate/curve", {"baseline": 0.03, "mde": 0.003, "points": 3}, "admin"),
    ("POST", "/v1/power/mean/mde", {"sd": 12.0, "n_per_arm": 20_000}, "admin"),
    ("POST", "/v1/power/mean/power", {"values": [0.0, 5.0, 20.0], "mde": 1.0, "n_per_arm": 500}, "admin"),
    ("POST", "/v1/power/mean/curve", {"sd": 12.0, "n_per_arm": 500, "points": 3}, "admin"),
    ("POST", "/v1/power/test-then-send", {"list_size": 10_000, "rates": [0.03, 0.04]}, "admin"),
    ("POST", "/v1/power/sequential", {"replications": 200, "seed": 1}, "admin"),
    ("POST", "/v1/power/bandit", {"rates": [0.03, 0.04], "horizon": 1_000, "replications": 2, "batches": 2},
     "admin"),
    ("POST", "/v1/experiments/hello/assign", {"recipient_id": "r"}, "send"),
    ("POST", "/v1/experiments/hello/assign/batch", {"recipients": [{"recipient_id": "r"}]}, "send"),
    ("POST", "/v1/outcomes", {"events": [{"event_id": "e", "decision_id": "d", "type": "click"}]}, "send"),
    ("POST", "/v1/power/mean", {"sd": 10.0, "mde": 1.0}, "admin"),
    ("GET", "/v1/decisions/{decision_id}", None, "admin"),
    ("GET", "/v1/experiments/hello/insight", None, "admin"),
    ("POST", "/v1/experiments/hello/graduate", None, "admin"),
    ("POST", "/v1/features/compute", {"as_of": "2024-06-01", "k": 1, "events": [
        {"recipient_id": "a", "timestamp": "2024-05-01", "type": "open"}]}, "admin"),
    ("POST", "/v1/features/refresh", {"as_of": "2024-06-01", "k": 1, "events": [
        {"recipient_id": "a", "timestamp": "2024-05-01", "type": "open"}]}, "admin"),
    ("GET", "/v1/recipients/hello", None, "admin"),
    ("DELETE", "/v1/recipients/hello", None, "admin"),
    ("POST", "/v1/experiments/hello/archive", None, "admin"),  # last: nothing assigns after it
]
KEYS = {"none": None, "wrong": "not-a-key", "send": SEND_KEY, "admin": ADMIN_KEY}


def expected_status(key: str, scope: str) -> int | None:
    """None means: allowed (the route's own answer, never 401/403)."""
    if key in ("none", "wrong"):
        return 401
    if key == "send" and scope == "admin":
        return 403
    return None


def test_the_matrix_holds_every_v1_route(client):
    """A /v1 route added to the service without a row in the matrix fails this test."""
    in_matrix = {(method, re.sub(r"hello|\{decision_id\}", "*", path)) for method, path, _, _ in ROUTES}
    paths = client.get("/openapi.json").json()["paths"]
    served = {(method.upper(), re.sub(r"\{key\}|\{decision_id\}|\{recipient_id\}", "*", path))
              for path, operations in paths.items() if path.startswith("/v1/") for method in operations}
    missing = served - in_matrix
    assert missing == set(), missing


@pytest.mark.parametrize("key", list(KEYS))
def test_auth_matrix(client, experiment, key):
    decision = client.post(f"/v1/experiments/{experiment}/assign", json={"recipient_id": "m"}, headers=ADMIN)
    decision_id = decision.json()["decision_id"]
    for method, template, body, scope in ROUTES:
        path = template.replace("{decision_id}", decision_id)
        headers = {"Authorization": f"Bearer {KEYS[key]}"} if KEYS[key] else {}
        client.app.state.throttle.reset()  # each route on its own; the throttle: tests/api/test_exposure.py
        response = client.request(method, path, json=body, headers=headers)
        expected = expected_status(key, scope)
        if expected is None:
            assert response.status_code not in (401, 403), (key, method, path, response.text)
            assert response.status_code < 500, (key, method, path, response.text)
        else:
            assert response.status_code == expected, (key, method, path, response.text)
            assert response.json()["detail"]
        if expected == 401:
            assert response.headers["www-authenticate"] == "Bearer"


def test_health_and_docs_need_no_key_and_metrics_do(client):
    for path in ["/healthz", "/openapi.json", "/docs"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/metrics").status_code == 401  # unless SENDLAB_METRICS_OPEN (test_exposure.py)


def test_malformed_authorization_header_is_401(client):
    for header in ["Basic dXNlcjpwYXNz", "Bearer", ADMIN_KEY]:
        assert client.get("/v1/experiments", headers={"Authorization": header}).status_code == 401


def test_open_service_without_keys(make_client, sqlite_url):
    client = make_client(sqlite_url, admin_key=None, send_key=None)
    assert client.post("/v1/experiments", json=SPEC).status_code == 201
    assert client.get("/v1/experiments").status_code == 200
