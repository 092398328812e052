"""A single assign's writes on PostgreSQL go in one pipelined transaction
(:func:`experiments.store.writes.pipelined_transaction`): all or nothing, whatever fails and wherever."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import text

from experiments.store import make_engine
from experiments.store.writes import pipelined_transaction


@pytest.fixture
def engine(pg_url):
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    yield engine
    engine.dispose()


def _stored(engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT x FROM t ORDER BY x"))]


def _write(conn, *values: int) -> None:
    cursor = conn.connection.driver_connection.cursor()
    for value in values:
        cursor.execute("INSERT INTO t VALUES (%s)", (value,))


@pytest.mark.postgres
@pytest.mark.parametrize("rows", [1, 2])  # pipelined, and statements in turn (a batch's COPY)
def test_the_writes_commit_together(engine, rows):
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with pipelined_transaction(conn, rows):
            _write(conn, 1, 2)
    assert _stored(engine) == [1, 2]


@pytest.mark.postgres
@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("read_between", [None, "driver", "sqlalchemy"])  # a read syncs the pipeline
def test_a_failing_statement_leaves_nothing_and_the_connection_usable(engine, rows, read_between):
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        driver = conn.connection.driver_connection
        with pytest.raises(psycopg.errors.UniqueViolation), pipelined_transaction(conn, rows):
            _write(conn, 1)
            if read_between == "driver":
                assert driver.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # its own write
            elif read_between == "sqlalchemy":  # SQLAlchemy reads a result's columns at once
                assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
                assert conn.execute(text("UPDATE t SET x = 1 WHERE x = 1")).rowcount == 1
            _write(conn, 2, 1)  # the key 1 again
        assert driver.info.transaction_status == TransactionStatus.IDLE
        with pipelined_transaction(conn, rows):
            _write(conn, 3)
    assert _stored(engine) == [3]


@pytest.mark.postgres
def test_an_error_of_the_caller_rolls_back_what_was_sent(engine):
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(RuntimeError), pipelined_transaction(conn, 1):
            _write(conn, 1)
            conn.connection.driver_connection.execute("SELECT 1").fetchone()  # sent and answered
            raise RuntimeError("the rollups could not be computed")
    assert _stored(engine) == []


@pytest.mark.postgres
def test_a_connection_in_a_transaction_is_refused(engine):
    with engine.connect() as conn, pytest.raises(ValueError, match="autocommit"):
        with pipelined_transaction(conn, 1):
            pass


@pytest.mark.postgres
@pytest.mark.parametrize("rows", [1, 2])
def test_the_first_error_is_raised_when_the_connection_is_lost_as_well(engine, pg_url, rows):
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        backend = conn.connection.driver_connection.info.backend_pid
        with pytest.raises(RuntimeError, match="the rollups could not be computed"):
            with pipelined_transaction(conn, rows):
                _write(conn, 1)
                with psycopg.connect(admin, autocommit=True) as other:  # the server drops the connection
                    other.execute("SELECT pg_terminate_backend(%s)", (backend,))
                raise RuntimeError("the rollups could not be computed")  # and the ROLLBACK cannot be sent
    assert _stored(engine) == []
