"""While the database cannot be reached the service answers 503 with ``Retry-After`` (not 500), and
answers again as soon as it can; other database errors stay 500."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError

from api.app import create_app
from api.errors import RETRY_AFTER_SECONDS, describe_unavailable
from api.settings import Settings
from experiments.group_commit import GroupCommitError
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY, make_spec
from tests.conftest import _admin_conninfo

ONE = {"recipient_id": "ann", "context": {"first_name": "Ann"}, "send_id": "s1"}
EVENTS = {"events": [{"event_id": "e1", "decision_id": "d1", "type": "click"}]}


def assert_retry(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "retry" in response.json()["detail"]


def test_a_database_on_a_dead_port_is_a_503_with_retry_after() -> None:
    settings = Settings(
        db="postgresql+psycopg://postgres@127.0.0.1:1/sendlab?connect_timeout=2",
        admin_key=ADMIN_KEY, send_key=SEND_KEY, create_tables=False,
    )
    with TestClient(create_app(settings)) as client:
        assert_retry(client.post("/v1/experiments/hello/assign", json=ONE, headers=SEND))
        assert_retry(client.post("/v1/outcomes", json=EVENTS, headers=SEND))
        assert_retry(client.get("/v1/experiments", headers=ADMIN))


@pytest.mark.postgres
def test_a_database_that_stops_accepting_connections_is_a_503_then_answers_again(make_client, pg_url):
    client = make_client(pg_url)
    assert client.post("/v1/experiments", json=make_spec(), headers=ADMIN).status_code == 201
    first = client.post("/v1/experiments/hello/assign", json=ONE, headers=SEND)
    assert first.status_code == 200
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        # the server refuses new connections to the database and drops the pool's open ones
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            assert_retry(client.post("/v1/experiments/hello/assign", json=ONE, headers=SEND))
            batch = {"send_id": "s1", "recipients": [{"recipient_id": "bob"}]}
            assert_retry(client.post("/v1/experiments/hello/assign/batch", json=batch, headers=SEND))
            assert_retry(client.post("/v1/outcomes", json=EVENTS, headers=SEND))
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    again = client.post("/v1/experiments/hello/assign", json=ONE, headers=SEND)
    assert again.status_code == 200
    assert again.json()["decision_id"] == first.json()["decision_id"]  # the retry is safe: same decision


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
        OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
        GroupCommitError("did not commit"),  # raised from a driver error: see the cause below
    ],
)
def test_connection_errors_are_unavailable(exc) -> None:
    if isinstance(exc, GroupCommitError):
        exc.__cause__ = psycopg.OperationalError("server closed the connection unexpectedly")
    answer = describe_unavailable(exc)
    assert answer is not None and answer.status == 503
    assert dict(answer.headers) == {"Retry-After": str(RETRY_AFTER_SECONDS)}


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: decisions")),
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        ValueError("a bug"),
    ],
)
def test_other_errors_are_not_unavailable(exc) -> None:
    assert describe_unavailable(exc) is None
