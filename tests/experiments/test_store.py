"""The store's engine: SQLite in WAL mode with a busy timeout, PostgreSQL URLs, bulk idempotent inserts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from experiments.store import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_SYNCHRONOUS,
    create_tables,
    insert_ignoring_duplicates,
    make_engine,
    orphans_table,
)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_sqlite_runs_wal_with_synchronous_normal() -> None:
    # WAL + synchronous=NORMAL (1): durable against a killed process, the log flushed at checkpoints
    # (the kill itself is tested in tests/experiments/test_assign_path.py and test_assign_durability.py).
    # SQLite's documentation, "PRAGMA synchronous": NORMAL in WAL mode "is safe from corruption" and
    # transactions are durable across application crashes, not necessarily across a power loss.
    assert SQLITE_SYNCHRONOUS == "NORMAL"
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1
    engine.dispose()


def test_postgres_urls_use_psycopg() -> None:
    engine = make_engine("postgresql://user@localhost:5432/db")
    assert engine.url.drivername == "postgresql+psycopg"
    assert make_engine("postgres://user@localhost/db").url.drivername == "postgresql+psycopg"


def test_unsupported_database() -> None:
    with pytest.raises(ValueError, match="url: unsupported database 'mysql'"):
        make_engine("mysql://user@localhost/db")


def test_bulk_insert_skips_existing_keys_and_returns_the_new_ones(engine: Engine) -> None:
    create_tables(engine)  # idempotent
    now = datetime(2026, 1, 1)
    rows = [
        {
            "event_id": f"e{i}",
            "decision_id": "d",
            "type": "click",
            "value": None,
            "time": now,
            "received_at": now,
            "machine": False,
        }
        for i in range(5)
    ]
    with engine.begin() as conn:
        assert insert_ignoring_duplicates(conn, orphans_table, rows, "event_id") == {
            f"e{i}" for i in range(5)
        }
    with engine.begin() as conn:
        again = rows[:3] + [dict(rows[0], event_id="new")]
        assert insert_ignoring_duplicates(conn, orphans_table, again, "event_id") == {"new"}
        assert insert_ignoring_duplicates(conn, orphans_table, [], "event_id") == set()
