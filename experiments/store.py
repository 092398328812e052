"""The decision and outcome log: SQLModel tables, the engine, and bulk writes.

SQLite (WAL mode, ``synchronous=NORMAL``, a busy timeout) is the embedded default; PostgreSQL
(``postgresql+psycopg://``) is the production store shared by several API workers. Times are stored as
naive UTC.

Durability on SQLite: in WAL mode with ``synchronous=NORMAL`` a commit is written to the write-ahead log
but not flushed to the disk (the log is flushed at checkpoints). A committed transaction survives the
process being killed (SIGKILL, an out-of-memory kill), which is what "committed before the answer
leaves" promises; a power cut or an operating-system crash may undo the last commits (never corrupt the
database). ``FULL`` would flush on every commit: 6 to 8 ms each on the shared benchmark machine, more
than a whole assignment. PostgreSQL keeps its own setting (``synchronous_commit=on`` by default: each
commit is flushed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    UniqueConstraint,
    and_,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlmodel import Field, SQLModel, create_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite's ``synchronous`` in WAL mode: durable against a killed process, not against a power cut.
SQLITE_SYNCHRONOUS = "NORMAL"


def _utc_time() -> Any:
    """A naive-UTC timestamp column (each field needs its own Column object)."""
    return Field(sa_column=Column(DateTime(timezone=False), nullable=False))


class ExperimentRow(SQLModel, table=True):
    """The current state of one experiment (one row per key)."""

    __tablename__ = "experiments"
    key: str = Field(primary_key=True, max_length=64)
    version: int
    spec: str  # canonical JSON of the current version's spec
    status: str = Field(max_length=16)
    apprentice: bool = False  # a warm-started policy that does not choose yet
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc_time()
    updated_at: datetime = _utc_time()


class ExperimentVersionRow(SQLModel, table=True):
    """Every version of every spec, kept so old decisions can be read with the spec they were made under."""

    __tablename__ = "experiment_versions"
    key: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    spec: str
    created_at: datetime = _utc_time()


class DecisionRow(SQLModel, table=True):
    """One logged assignment. ``fallback`` decisions (holdout, ineligible, ...) are never learned from.

    ``ix_decisions_summary`` covers the results' count of a version's decisions
    (:func:`experiments.summaries.decision_groups`): its ``GROUP BY`` columns lead, in order, and the
    columns it counts follow, so the count reads the index alone, in order, without the table. The
    experiments list counts each arm's decisions on a range of it (:mod:`experiments.overview`).
    ``ix_decisions_adaptive`` covers the adaptive results' inverse-propensity sums per policy version and
    arm (:mod:`experiments.adaptive_reader`), read in order without the table.
    """

    __tablename__ = "decisions"
    __table_args__ = (
        Index(
            "ix_decisions_summary",
            "experiment_key", "version", "fallback", "reason", "arm", "day", "policy_version",
            "explored", "learned_version", "agreement",
        ),
        Index("ix_decisions_learn", "experiment_key", "version", "learned_version", "created_at"),
        Index(
            "ix_decisions_adaptive",
            "experiment_key", "version", "fallback", "policy_version", "arm", "propensity",
        ),
    )
    id: str = Field(primary_key=True, max_length=36)
    experiment_key: str = Field(max_length=64)
    version: int
    recipient_id: str
    variants: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    arm: int
    propensity: float
    policy_version: int | None = None
    explored: bool = False
    fallback: bool = False
    reason: str = Field(max_length=32)
    context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _utc_time()
    day: date
    learned_version: int | None = None
    agreement: float | None = None  # apprentice decisions: the policy's probability of the same choice
    # delays: model: the trial weight a decision was learned with while its window was open (None: 1)
    learned_weight: float | None = None


class OutcomeRow(SQLModel, table=True):
    """An outcome of a known decision. ``attributed`` = inside the reward window; ``machine`` = made by
    a machine (Apple Mail Privacy Protection, a link scanner), left out of rewards and learning (results
    count it when asked).

    ``learned_version`` is the policy snapshot that learned the outcome (None: not yet). Outcomes are
    learned one by one, not by an id cursor: with their decision, or, when they arrive after it was
    learned, as a revision of its reward (``after_learning = "revised"``) or, when the policy cannot
    revise, counted and left out (``after_learning = "not_learnable"``, ``learned_version`` the
    snapshot current then).

    ``ix_outcomes_summary`` covers the results' attribution (:mod:`experiments.summaries`): the
    version's attributed outcomes in decision order, with every column the per-decision ``GROUP BY``
    reads, so it streams from the index without the table or a sort; ``machine`` serves the count of
    excluded events.
    """

    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_experiment", "experiment_key", "decision_id"),
        Index(
            "ix_outcomes_summary",
            "experiment_key", "version", "attributed", "decision_id", "arm", "day", "reason", "fallback",
            "type", "value", "machine",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=128)
    decision_id: str = Field(max_length=36)
    experiment_key: str = Field(max_length=64)
    version: int
    type: str = Field(max_length=64)
    value: float | None = None
    time: datetime = _utc_time()
    received_at: datetime = _utc_time()
    machine: bool = False
    attributed: bool = True
    learned_version: int | None = None
    after_learning: str | None = Field(default=None, max_length=16)  # "revised" | "not_learnable"
    # copied from the decision (which never changes) so results group outcomes without a join
    arm: int
    fallback: bool
    reason: str = Field(max_length=32)
    day: date


class OrphanOutcomeRow(SQLModel, table=True):
    """An outcome whose decision is unknown: kept aside, counted, never attributed."""

    __tablename__ = "orphan_outcomes"
    event_id: str = Field(primary_key=True, max_length=128)
    decision_id: str
    type: str = Field(max_length=64)
    value: float | None = None
    time: datetime = _utc_time()
    received_at: datetime = _utc_time()
    machine: bool = False


class PolicySnapshotRow(SQLModel, table=True):
    """A stored policy state. ``(experiment_key, version)`` is unique: a safety net behind the lock that
    makes learners take turns (:func:`lock_for_learning`)."""

    __tablename__ = "policy_snapshots"
    __table_args__ = (UniqueConstraint("experiment_key", "version", name="uq_policy_snapshot_version"),)
    id: int | None = Field(default=None, primary_key=True)
    experiment_key: str = Field(max_length=64)
    version: int
    spec_version: int
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # outcomes learned up to this snapshot, in total (with their decisions or as revisions); until the
    # learning loop tracked each outcome (``outcomes.learned_version``) it was the largest outcome id
    cursor: int = 0
    learned_decisions: int = 0  # decisions learned from in total, up to this snapshot
    created_at: datetime = _utc_time()


experiments_table = ExperimentRow.__table__  # type: ignore[attr-defined]
versions_table = ExperimentVersionRow.__table__  # type: ignore[attr-defined]
decisions_table = DecisionRow.__table__  # type: ignore[attr-defined]
outcomes_table = OutcomeRow.__table__  # type: ignore[attr-defined]
orphans_table = OrphanOutcomeRow.__table__  # type: ignore[attr-defined]
snapshots_table = PolicySnapshotRow.__table__  # type: ignore[attr-defined]

#: Predicate of the outcomes the learning loop has still to learn. A partial index over exactly these
#: rows stays as small as the backlog (queries must repeat the predicate for SQLite to use it).
OUTCOME_PENDING = and_(
    outcomes_table.c.learned_version.is_(None),
    outcomes_table.c.attributed.is_(True),
    outcomes_table.c.machine.is_(False),
    outcomes_table.c.fallback.is_(False),
)
Index(
    "ix_outcomes_pending",
    outcomes_table.c.experiment_key,
    outcomes_table.c.version,
    outcomes_table.c.day,
    sqlite_where=OUTCOME_PENDING,
    postgresql_where=OUTCOME_PENDING,
)
Index(
    "ix_outcomes_after_learning",
    outcomes_table.c.experiment_key,
    outcomes_table.c.version,
    outcomes_table.c.after_learning,
    sqlite_where=outcomes_table.c.after_learning.is_not(None),
    postgresql_where=outcomes_table.c.after_learning.is_not(None),
)


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
    "learned_weight",
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
    100,000 decisions that work cost more than the database's, ``benchmarks/api.py``).
    """
    if not rows:
        return
    names = ", ".join(DECISION_COLUMNS)
    if conn.dialect.name == "postgresql":
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
    marks = ", ".join("?" * len(DECISION_COLUMNS))
    conn.connection.driver_connection.executemany(f"INSERT INTO decisions ({names}) VALUES ({marks})", rows)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite (WAL, ``synchronous=NORMAL``, busy timeout) or PostgreSQL (psycopg 3).

    ``postgresql://`` and ``postgres://`` URLs are taken as ``postgresql+psycopg://``.
    """
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql+psycopg://"):
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(f"url: unsupported database {url.split(':', 1)[0]!r} (use sqlite or postgresql+psycopg)")


#: Indexes earlier versions created and nothing reads any more (``ix_decisions_summary`` replaced
#: ``ix_decisions_arm``): dropped by :func:`create_tables`, so inserts stop paying for them.
RETIRED_INDEXES = ("ix_decisions_arm",)


def create_tables(engine: Engine) -> None:
    """Create every table and index that does not exist yet, bring an older outcomes table up to date,
    and drop :data:`RETIRED_INDEXES`.

    On a store that already holds many decisions, the first start after an upgrade builds the new
    indexes (a full pass over the table).
    """
    upgrade = inspect(engine).has_table(outcomes_table.name)
    tables = [
        experiments_table, versions_table, decisions_table, outcomes_table, orphans_table, snapshots_table
    ]
    SQLModel.metadata.create_all(engine, tables=tables)
    if upgrade:
        _add_outcome_learning_columns(engine)
        _add_decision_weight_column(engine)
    with engine.begin() as conn:
        for table in tables:  # create_all makes the indexes of new tables only
            for index in table.indexes:
                index.create(conn, checkfirst=True)
        for name in RETIRED_INDEXES:
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))


def _add_outcome_learning_columns(engine: Engine) -> None:
    """Add ``learned_version`` and ``after_learning`` to an outcomes table made before they existed.

    The outcomes of decisions already learned are marked learned by the same snapshot: the old loop
    learned each decision once with the outcomes present at that time, and later ones were not learned
    (and are not recoverable now).
    """
    present = {c["name"] for c in inspect(engine).get_columns(outcomes_table.name)}
    if "learned_version" in present:
        return
    o, d = outcomes_table, decisions_table
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE outcomes ADD COLUMN learned_version INTEGER"))
        conn.execute(text("ALTER TABLE outcomes ADD COLUMN after_learning VARCHAR(16)"))
        learned = (
            select(d.c.learned_version).where(d.c.id == o.c.decision_id).scalar_subquery()
        )
        conn.execute(update(o).where(o.c.attributed.is_(True)).values(learned_version=learned))


def _add_decision_weight_column(engine: Engine) -> None:
    """Add ``learned_weight`` to a decisions table made before it existed (every decision learned so
    far was learned as a whole trial: NULL)."""
    present = {c["name"] for c in inspect(engine).get_columns(decisions_table.name)}
    if "learned_weight" not in present:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE decisions ADD COLUMN learned_weight FLOAT"))


def to_db_time(moment: datetime) -> datetime:
    """Naive UTC, as stored."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db_time(moment: datetime) -> datetime:
    """Aware UTC, as returned."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


def _insert_arrays_ignoring_duplicates(
    conn: Connection, table: Any, columns: list[str], rows: Sequence[dict[str, Any]], key: str
) -> set[str]:
    """PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING``.

    One short statement with one array per column, instead of multi-row ``VALUES`` statements whose
    text psycopg must rebuild on the client for every page of rows (6.7x a plain insert at 1,000,000
    outcomes, ``benchmarks/store.py``). Only for columns of scalar types.
    """
    preparer = conn.dialect.identifier_preparer
    types = [table.c[c].type.compile(dialect=conn.dialect) for c in columns]
    names = ", ".join(preparer.quote(c) for c in columns)
    arrays = ", ".join(f"CAST(:p{i} AS {t}[])" for i, t in enumerate(types))
    stmt = text(
        f"INSERT INTO {preparer.format_table(table)} ({names}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({preparer.quote(key)}) DO NOTHING RETURNING {preparer.quote(key)}"
    )
    params = {f"p{i}": [row[c] for row in rows] for i, c in enumerate(columns)}
    return {row[0] for row in conn.execute(stmt, params)}


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
