"""Writes to the log: decision rows bound once and inserted in one statement, outcomes inserted
ignoring duplicates, and the lock learners take turns on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import JSON, LargeBinary, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine

from experiments.store.snapshot_summaries import chart_probabilities
from experiments.store.tables import decisions_table, experiments_table, snapshots_table

#: The columns of a decision row, in the order :func:`insert_decisions` takes them.
DECISION_COLUMNS = (
    "id",
    "experiment_key",
    "version",
    "recipient_id",
    "variants",
    "arm",
    "propensity",
    "policy_version",
    "explored",
    "fallback",
    "reason",
    "context",
    "created_at",
    "day",
    "learned_version",
    "agreement",
    "send_id",
    "send_at",
    "learned_weight",
    "send_time_propensity",
    "feature_version",
)


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class DecisionEncoding:
    """How a decision row's values are bound for one database, as :func:`insert_decisions` writes them.

    Attributes
    ----------
    json : callable
        For ``variants`` and ``context`` (None becomes the JSON ``null``, as SQLAlchemy's ``JSON`` binds it).
    time, day, flag : callable
        For ``created_at``, ``day`` and the booleans ``explored`` and ``fallback``.
    """

    json: Callable[[Any], Any]
    time: Callable[[datetime], Any]
    day: Callable[[date], Any]
    flag: Callable[[bool], Any]


def decision_encoding(dialect: Dialect) -> DecisionEncoding:
    """The encoding of decision rows for ``dialect``.

    SQLite: the bind processors of the table's own column types on that dialect, so a row written by
    :func:`insert_decisions` is stored byte for byte as ``conn.execute(decisions_table.insert(), ...)``
    stores it. PostgreSQL: the values as Python objects and the JSON columns as their text (``COPY``
    takes them so).
    """
    if dialect.name == "postgresql":
        return DecisionEncoding(json=json.dumps, time=_unchanged, day=_unchanged, flag=_unchanged)

    def bind(column: str) -> Callable[[Any], Any]:
        impl = decisions_table.c[column].type.dialect_impl(dialect)
        return impl.bind_processor(dialect) or _unchanged

    return DecisionEncoding(
        json=bind("variants"), time=bind("created_at"), day=bind("day"), flag=bind("explored")
    )


def insert_decisions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert decision rows (tuples in :data:`DECISION_COLUMNS` order, encoded by :func:`decision_encoding`).

    One statement on PostgreSQL, ``COPY ... FROM STDIN`` (an ``INSERT`` for one row), so that the rows
    are written all or none even on a connection in autocommit mode; one ``executemany`` of a plain
    ``INSERT`` on SQLite. The rows arrive bound already, so no per-row work is left to SQLAlchemy (at
    100,000 decisions that work cost more than the database's, ``benchmarks/api.py``). On SQLite,
    nullable columns that are None in every row are left out (:func:`written_columns`; on PostgreSQL a
    ``COPY`` of rows cut so cost no less CPU in process, the cutting included).
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        names = ", ".join(DECISION_COLUMNS)
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:
            if len(rows) == 1:  # one round trip; COPY takes two
                marks = ", ".join(["%s"] * len(DECISION_COLUMNS))
                cursor.execute(f"INSERT INTO decisions ({names}) VALUES ({marks})", rows[0])
                return
            with cursor.copy(f"COPY decisions ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    columns, rows = written_columns(rows)
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    conn.connection.driver_connection.executemany(f"INSERT INTO decisions ({names}) VALUES ({marks})", rows)


#: The positions in :data:`DECISION_COLUMNS` of the columns that are nullable without a server default,
#: in the tables and in every migration: left out of an ``INSERT``, they are stored NULL.
_LEAVABLE = tuple(
    i for i, c in enumerate(DECISION_COLUMNS)
    if decisions_table.c[c].nullable and decisions_table.c[c].server_default is None
)


def written_columns(rows: Sequence[tuple[Any, ...]]) -> tuple[tuple[str, ...], Sequence[tuple[Any, ...]]]:
    """The columns to write and the rows cut to them: a nullable column that is None in every row is
    left out (stored NULL all the same). A plain send (no send id, send time, feature version or
    apprentice) leaves out 7 of the 21 columns, which cut the CPU of SQLite's ``executemany`` of 100,000
    rows by about a quarter in process."""
    left_out = [
        i for i in _LEAVABLE
        if rows[0][i] is None and list(map(itemgetter(i), rows)).count(None) == len(rows)
    ]
    if not left_out:
        return DECISION_COLUMNS, rows
    kept = [i for i in range(len(DECISION_COLUMNS)) if i not in left_out]
    return tuple(DECISION_COLUMNS[i] for i in kept), list(map(itemgetter(*kept), rows))


#: ``Connection.info`` key of the pipeline a :func:`pipelined_transaction` has open.
_PIPELINE = "sendlab_pipeline"


@contextmanager
def pipelined_transaction(conn: Connection, rows: int) -> Iterator[None]:
    """A transaction on a PostgreSQL connection in autocommit mode whose ``BEGIN``, writes and ``COMMIT``
    reach the server together, for ``rows`` decisions inserted (0 for a transaction of outcomes).

    In psycopg's pipeline mode statements are sent without waiting for each answer: a single assign's
    ``BEGIN``, decision insert, rollup upserts and ``COMMIT`` are one round trip (seven before: the
    pool's liveness test, ``BEGIN``, the state read, each write and ``COMMIT``). Statements executed
    through SQLAlchemy inside (reads of the rollup writers, say) wait for their answer, which SQLAlchemy
    needs at once (:func:`_answer_now`); ``BEGIN`` and ``COMMIT`` are plain statements of the pipeline
    (psycopg's own transaction blocks wait for each), so whatever syncs it midway stays inside the
    transaction. A ``COPY`` (decisions of more than one row, :func:`insert_decisions`) cannot be
    pipelined: a batch's statements go in turn in the same explicit transaction. An outcome post
    (:func:`write_transaction`) inserts no decision and is pipelined whatever its size. On an error the
    transaction is rolled back (the server skipped the statements after a failed one); the statements
    run in the order sent, so the rollup writers' lock order holds.
    """
    driver = conn.connection.driver_connection
    if not driver.autocommit:
        raise ValueError("pipelined_transaction: the connection must be in autocommit mode")
    if not event.contains(conn.engine, "after_cursor_execute", _answer_now):
        event.listen(conn.engine, "after_cursor_execute", _answer_now)
    try:
        with driver.pipeline() if rows <= 1 else nullcontext() as pipeline:
            conn.info[_PIPELINE] = pipeline
            driver.execute("BEGIN")
            yield
            driver.execute("COMMIT")
    except BaseException:
        if not driver.closed and driver.info.transaction_status != TransactionStatus.IDLE:
            with suppress(psycopg.Error):  # a connection that cannot roll back is discarded by the pool
                driver.execute("ROLLBACK")
        raise
    finally:
        conn.info.pop(_PIPELINE, None)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` for a transaction that inserts no decision (an outcome post): on PostgreSQL a
    :func:`pipelined_transaction`, so that its ``BEGIN``, locks and writes wait for no answer they do not
    need (a post of one outcome made fifteen round trips to the server, four now: one per read it needs
    the answer of, and the writes with ``COMMIT``)."""
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            with conn.begin():
                yield conn
            return
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with pipelined_transaction(conn, 0):
            yield conn


def _answer_now(conn: Connection, *_statement: Any) -> None:
    """After a statement SQLAlchemy executed inside a :func:`pipelined_transaction`'s pipeline: wait for
    its answer (SQLAlchemy reads the result's columns, or its row count, right away)."""
    pipeline = conn.info.get(_PIPELINE)
    if pipeline is not None:
        pipeline.sync()


def insert_ignoring_duplicates(
    conn: Connection, table: Any, rows: Sequence[dict[str, Any]], key: str
) -> set[str]:
    """Insert ``rows`` in one executemany, skipping rows whose unique ``key`` exists.

    Returns the keys actually inserted (``RETURNING``), so concurrent duplicates are counted right.
    """
    if not rows:
        return set()
    dialect = conn.dialect.name
    if dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])
    elif dialect == "postgresql":
        columns = list(rows[0])
        scalar = not any(isinstance(table.c[c].type, (JSON, LargeBinary)) for c in columns)
        if scalar and all(row.keys() == rows[0].keys() for row in rows):
            return _insert_arrays_ignoring_duplicates(conn, table, columns, rows, key)
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    else:  # pragma: no cover - only the two supported databases reach here
        raise ValueError(f"unsupported dialect {dialect!r}")
    result = conn.execute(stmt.returning(table.c[key]), list(rows))
    return {row[0] for row in result}


def existing_keys(conn: Connection, table: Any, key: str, values: Sequence[str]) -> set[str]:
    """Which of ``values`` the unique ``key`` column of ``table`` already holds (in pages of 1,000)."""
    found: set[str] = set()
    column = table.c[key]
    for start in range(0, len(values), 1000):
        page = list(values[start : start + 1000])
        found.update(row[0] for row in conn.execute(select(column).where(column.in_(page))))
    return found


def _insert_arrays_ignoring_duplicates(
    conn: Connection, table: Any, columns: list[str], rows: Sequence[dict[str, Any]], key: str
) -> set[str]:
    """PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING``.

    One short statement with one array per column, instead of multi-row ``VALUES`` statements whose
    text psycopg must rebuild on the client for every page of rows (6.7x a plain insert at 1,000,000
    outcomes, ``benchmarks/store.py``). Only for columns of scalar types. The arrays are sent in binary
    (psycopg's ``%b`` placeholders): as text psycopg tested every element for quoting with a regular
    expression, a third of an outcome post's CPU on PostgreSQL; the values are the same (the store's
    times are naive UTC, which binary sends as ``timestamp`` as text did).
    """
    preparer = conn.dialect.identifier_preparer
    types = [table.c[c].type.compile(dialect=conn.dialect) for c in columns]
    names = ", ".join(preparer.quote(c) for c in columns)
    arrays = ", ".join(f"CAST(%(p{i})b AS {t}[])" for i, t in enumerate(types))
    statement = (
        f"INSERT INTO {preparer.format_table(table)} ({names}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({preparer.quote(key)}) DO NOTHING RETURNING {preparer.quote(key)}"
    )
    params = {f"p{i}": [row[c] for row in rows] for i, c in enumerate(columns)}
    return {row[0] for row in conn.exec_driver_sql(statement, params)}


def lock_for_learning(conn: Connection, key: str) -> None:
    """Make the learners of experiment ``key`` take turns; the first statement of a learning transaction.

    PostgreSQL: a row lock on the experiment (``SELECT ... FOR UPDATE``), held until the transaction
    ends; every later statement reads what the previous learner committed. SQLite: ``BEGIN IMMEDIATE``
    takes the database's write lock before the transaction reads anything (waiting up to the busy
    timeout), where pysqlite would only begin at the first write. A second learner waits, then reads the
    new snapshot; it never fails for having lost a race.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    conn.execute(
        select(experiments_table.c.key).where(experiments_table.c.key == key).with_for_update()
    )


def insert_snapshot(
    conn: Connection, key: str, version: int, spec_version: int, state: bytes, now: datetime, *,
    design: str, learned_reward: float, cursor: int = 0, learned_decisions: int = 0,
) -> None:
    """Store policy snapshot ``version`` of ``key`` (``cursor`` outcomes and ``learned_decisions``
    decisions learned in all, ``learned_reward`` the reward learned from in all), with what the pages
    show of it: for a ``design`` of type bandit, the state's distribution over the arms
    (:func:`experiments.store.snapshot_summaries.chart_probabilities`)."""
    conn.execute(
        snapshots_table.insert().values(
            experiment_key=key, version=version, spec_version=spec_version, state=state, cursor=cursor,
            learned_decisions=learned_decisions, created_at=now, learned_reward=learned_reward,
            arm_probabilities=chart_probabilities(design, state),
        )
    )
