"""Pooled PostgreSQL connections are tested before use only when they sat idle
(:mod:`experiments.store.liveness`): one round trip less on the send path, and a connection the server
dropped is still never handed to a request after a pause."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc, text

from experiments.store import liveness, make_engine


def _counting_pings(engine, monkeypatch) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def _terminate_backends(pg_url: str) -> int:
    """End every server connection to the test database; how many there were."""
    name = pg_url.rsplit("/", 1)[1]
    server = pg_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return len(ended)


@pytest.mark.postgres
def test_a_connection_back_from_a_request_a_moment_ago_is_not_tested(pg_url, monkeypatch):
    engine = make_engine(pg_url)
    pings = _counting_pings(engine, monkeypatch)
    for _ in range(5):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    assert pings == []  # a new connection, then the same one back within the moment
    monkeypatch.setattr(liveness, "PING_AFTER_IDLE_SECONDS", 0.0)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert pings == [1]  # idle longer than the moment: tested
    engine.dispose()


@pytest.mark.postgres
def test_an_idle_connection_the_server_dropped_is_replaced_before_a_request_gets_it(pg_url, monkeypatch):
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert _terminate_backends(pg_url) == 1
    monkeypatch.setattr(liveness, "PING_AFTER_IDLE_SECONDS", 0.0)  # the pooled connection counts as idle
    with engine.connect() as conn:
        after = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    assert after != before
    engine.dispose()


@pytest.mark.postgres
def test_a_connection_dropped_within_the_moment_fails_one_statement_then_the_pool_is_renewed(pg_url):
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _terminate_backends(pg_url) == 1
    with pytest.raises(exc.OperationalError) as raised, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert raised.value.connection_invalidated  # a disconnect: the API answers it with 503 and Retry-After
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
