"""Keys are checked before a body is read, and every body is capped by route (413 with a JSON reason)."""

from __future__ import annotations

import asyncio
import json

import pytest

from api.app import create_app
from api.request_guard import body_cap
from api.settings import Settings
from experiments.limits import (
    MAX_BODY_BYTES,
    MAX_BULK_BODY_BYTES,
    MAX_FEATURES_BODY_BYTES,
    MAX_FORM_BODY_BYTES,
    MAX_SPEC_BODY_BYTES,
)
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY


async def call(app, method: str, path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple:
    """Run one request through the ASGI app; return the status, the JSON answer and how many body
    chunks the app asked for."""
    asked = 0
    answer: dict = {"status": None, "body": b""}

    async def receive():
        nonlocal asked
        asked += 1
        if asked <= len(chunks):
            return {"type": "http.request", "body": chunks[asked - 1], "more_body": asked < len(chunks)}
        await asyncio.sleep(3600)

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "http_version": "1.1", "scheme": "http", "server": ("test", 80), "client": ("1.2.3.4", 5),
        "root_path": "",
    }
    await app(scope, receive, send)
    return answer["status"], json.loads(answer["body"]), asked


@pytest.fixture
def app(sqlite_url):
    app = create_app(Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY, ui_refresh_seconds=0))
    yield app
    app.state.engine.dispose()


def test_an_unauthenticated_body_is_refused_before_it_is_read(app) -> None:
    chunks = [b"x" * 1024] * 100
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, body, asked = asyncio.run(call(app, "POST", "/v1/outcomes", chunks, headers))
        assert status == 401, body
        assert asked == 0  # not one chunk of the body was read


def test_a_declared_length_above_the_cap_is_413_before_reading(app) -> None:
    headers = {**ADMIN, "Content-Length": str(MAX_SPEC_BODY_BYTES + 1), "Content-Type": "application/json"}
    status, body, asked = asyncio.run(call(app, "POST", "/v1/experiments", [b"{}"], headers))
    assert (status, asked) == (413, 0)
    assert body == {"detail": "request body too large: this route takes at most 2 MiB (2,097,152 bytes)"}


def test_a_streamed_body_stops_being_read_once_past_the_cap(app) -> None:
    chunk = b" " * (256 * 1024)
    chunks = [chunk] * 100  # 25 MiB without a Content-Length
    status, body, asked = asyncio.run(call(app, "POST", "/v1/power/rate", chunks, {**ADMIN}))
    assert status == 413 and "at most 1 MiB" in body["detail"]
    assert asked == MAX_BODY_BYTES // len(chunk) + 1


def test_each_route_has_its_cap() -> None:
    assert body_cap("/v1/experiments/x/assign/batch") == body_cap("/v1/outcomes") == MAX_BULK_BODY_BYTES
    assert body_cap("/v1/features/compute") == MAX_FEATURES_BODY_BYTES
    assert body_cap("/v1/experiments") == MAX_SPEC_BODY_BYTES
    assert body_cap("/ui/login") == MAX_FORM_BODY_BYTES
    assert body_cap("/v1/experiments/x/assign") == body_cap("/v1/power/rate") == MAX_BODY_BYTES


def test_over_http_a_big_body_is_413_json_and_a_big_batch_still_fits(client, experiment) -> None:
    big = {"recipient_id": "r", "context": {"note": "x" * MAX_BODY_BYTES}}
    response = client.post(f"/v1/experiments/{experiment}/assign", json=big, headers=SEND)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "at most 1 MiB" in response.json()["detail"]
    # the same bytes are fine in a batch, whose cap is that of a whole send
    batch = {"recipients": [big]}
    response = client.post(f"/v1/experiments/{experiment}/assign/batch", json=batch, headers=SEND)
    assert response.status_code == 200, response.text


def test_the_features_route_takes_its_largest_valid_body(client) -> None:
    """20,000 events of the longest fields fit in the route's cap."""
    event = {"recipient_id": "r" * 128, "timestamp": "2024-05-01T10:00:00.000000+00:00", "type": "t" * 64,
             "amount": 123456.789}
    body = json.dumps({"as_of": "2024-06-01", "events": [event] * 20_000}).encode()
    assert len(body) <= MAX_FEATURES_BODY_BYTES
    response = client.post("/v1/features/compute", content=body,
                           headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code != 413, response.text
    response = client.post("/v1/features/compute", content=body + b" " * MAX_FEATURES_BODY_BYTES,
                           headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_spec_string_is_capped(client) -> None:
    from experiments.limits import MAX_SPEC_STRING_LENGTH
    from tests.api.conftest import make_spec

    spec = make_spec(name="n" * (MAX_SPEC_STRING_LENGTH + 1))
    response = client.post("/v1/experiments", json=spec, headers=ADMIN)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "name"]
    got = MAX_SPEC_STRING_LENGTH + 1
    assert problem["msg"] == f"too long: at most {MAX_SPEC_STRING_LENGTH:,} characters, got {got:,}"
