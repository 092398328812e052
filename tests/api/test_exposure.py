"""/metrics needs a key unless configured open; failed keys are throttled (429, Retry-After);
/docs is served from local files."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings, SettingsError, settings_from_env
from api.throttle import FailedKeyThrottle
from experiments.limits import FAILED_KEY_BURST
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY
from tests.ui.login import post_key


def test_metrics_need_a_key_unless_configured_open(make_client, sqlite_url) -> None:
    client = make_client(sqlite_url)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    for headers in (ADMIN, SEND):
        assert client.get("/metrics", headers=headers).status_code == 200
    opened = TestClient(create_app(Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY,
                                            metrics_open=True)))
    assert opened.get("/metrics").status_code == 200
    assert opened.get("/v1/experiments").status_code == 401  # only the metrics are open


def test_metrics_open_is_read_from_the_environment() -> None:
    assert settings_from_env({"SENDLAB_METRICS_OPEN": "true"}).metrics_open
    assert not settings_from_env({}).metrics_open
    with pytest.raises(SettingsError, match="SENDLAB_METRICS_OPEN"):
        settings_from_env({"SENDLAB_METRICS_OPEN": "maybe"})


def test_failed_keys_are_throttled_per_client_with_retry_after(client) -> None:
    wrong = {"Authorization": "Bearer guess"}
    statuses = [client.get("/v1/experiments", headers=wrong).status_code for _ in range(FAILED_KEY_BURST + 5)]
    assert statuses[:FAILED_KEY_BURST] == [401] * FAILED_KEY_BURST
    assert set(statuses[FAILED_KEY_BURST:]) == {429}
    blocked = client.get("/v1/experiments", headers=ADMIN)  # even the right key waits: no guessing
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert "too many failed keys" in blocked.json()["detail"]
    assert client.get("/metrics", headers=ADMIN).status_code == 429
    assert client.post("/ui/login", content=f"key={ADMIN_KEY}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 429
    assert client.get("/healthz").status_code == 200


def test_wrong_keys_typed_into_the_key_form_are_throttled(client) -> None:
    statuses = [post_key(client, "guess").status_code for _ in range(FAILED_KEY_BURST + 2)]
    assert statuses[:FAILED_KEY_BURST] == [401] * FAILED_KEY_BURST and statuses[-1] == 429


def test_the_bucket_refills_and_is_per_client() -> None:
    now = [0.0]
    throttle = FailedKeyThrottle(burst=3, refill_seconds=2.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") is None
        throttle.record_failure("a")
    assert throttle.retry_after("a") == 2 and throttle.retry_after("b") is None
    now[0] = 1.0
    assert throttle.retry_after("a") == 1
    now[0] = 2.0
    assert throttle.retry_after("a") is None  # one token back


def test_docs_load_swagger_ui_from_the_service_itself(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert client.get("/redoc").status_code == 404  # the CDN-loading ReDoc page is off
