"""The repository: every read and write of an experiment's state (experiments, spec versions, policy
snapshots, single decisions), each query written once and returning typed records.

The summary queries (sums over the log) live beside it in :mod:`experiments.store.summaries` and
:mod:`experiments.store.segments`; the learning loop's queries in :mod:`experiments.store.learning_log`.

A :class:`Repository` keeps what never changes once stored, so each is read and built once per
process: the compiled spec of each ``(key, version)`` and the restored latest policy of each experiment
(replaced when a newer snapshot appears), each in a cache of bounded size (:mod:`experiments.limits`)
that drops the least recently used. A bandit snapshot's arm probabilities are stored with it
(:mod:`experiments.store.snapshot_summaries`) and read, never restored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.engine import Connection, Engine

from bandit import Policy, PolicyError, load_policy
from experiments.assignment import CompiledExperiment, compile_experiment
from experiments.errors import NotFound
from experiments.limits import CACHED_POLICIES, CACHED_SPECS
from experiments.spec import ExperimentSpec
from experiments.store.lru import LRU
from experiments.store.tables import (
    decisions_table,
    experiments_table,
    from_db_time,
    snapshots_table,
    versions_table,
)
from experiments.store.writes import insert_snapshot

#: Items per ``IN (...)`` list.
IN_CHUNK = 1000


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    """``items`` in consecutive pieces of at most ``size`` (for IN lists)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def check_stored_key(key: Any, what: str = "experiment") -> None:
    """:class:`NotFound` for a key or id that nothing stored can have (not a string, or holding a NUL
    character, which PostgreSQL cannot even be asked about), before any query."""
    if not isinstance(key, str) or "\x00" in key:
        raise NotFound(key if isinstance(key, str) else repr(key), what)


@contextmanager
def consistent_read(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one snapshot of the database, whatever commits meanwhile.

    PostgreSQL: a ``REPEATABLE READ`` transaction (its snapshot is taken at the first statement).
    SQLite: an explicit ``BEGIN``, so the reads share one read transaction of the write-ahead log
    (pysqlite would otherwise run each ``SELECT`` outside any transaction). Nothing is written; the
    transaction is rolled back at the end.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield conn
        finally:
            conn.rollback()


# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment as stored: its current version and that version's spec as canonical JSON."""

    key: str
    version: int
    spec: str
    status: str
    apprentice: bool
    warnings: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AssignState:
    """What assignment reads of an experiment in one query: its current version, status, whether a
    warm-started policy is still an apprentice, and its latest policy snapshot (None without one)."""

    version: int
    status: str
    apprentice: bool
    policy_version: int | None
    policy_spec_version: int | None


@dataclass(frozen=True)
class SnapshotRecord:
    """A stored policy snapshot; ``state`` is None unless it was asked for."""

    version: int
    spec_version: int
    created_at: datetime
    cursor: int
    learned_decisions: int
    state: bytes | None = None
    #: the reward learned from in all (None only in snapshots stored before it was recorded that
    #: were not the latest of their spec version then: :mod:`experiments.store.snapshot_summaries`)
    learned_reward: float | None = None


@dataclass(frozen=True)
class StoredDecision:
    """One logged decision, as explanation reads it back."""

    id: str
    experiment_key: str
    version: int
    recipient_id: str
    variants: dict[str, str]
    arm: int
    propensity: float
    policy_version: int | None
    reason: str
    explored: bool
    context: dict[str, Any] | None
    created_at: datetime
    #: No context is stored any more (SQL NULL: dropped by retention or an erasure); a recipient
    #: without consent has a stored context of JSON ``null`` instead (``context`` None, not dropped).
    context_dropped: bool = False
    #: ``context_from: features``: the feature version the context was filled from (else None).
    feature_version: int | None = None


def _experiment(row: Any) -> ExperimentRecord:
    return ExperimentRecord(
        key=row.key,
        version=int(row.version),
        spec=row.spec,
        status=row.status,
        apprentice=bool(row.apprentice),
        warnings=list(row.warnings or []),
        created_at=from_db_time(row.created_at),
        updated_at=from_db_time(row.updated_at),
    )


# ---------------------------------------------------------------------------------- queries


def _latest_version(key: Any) -> Any:
    """The latest snapshot version of experiment ``key`` (a scalar subquery; NULL without one)."""
    s = snapshots_table
    return select(func.max(s.c.version)).where(s.c.experiment_key == key).scalar_subquery()


@cache
def _assign_state_query() -> Select:
    """One row per experiment: version, status, apprentice, and its latest policy snapshot's version
    and spec version (NULL without a snapshot). Built once, on first use."""
    e, s = experiments_table, snapshots_table
    key = bindparam("key")
    return (
        select(
            e.c.version,
            e.c.status,
            e.c.apprentice,
            s.c.version.label("policy_version"),
            s.c.spec_version.label("policy_spec_version"),
        )
        .select_from(e.outerjoin(s, (s.c.experiment_key == e.c.key) & (s.c.version == _latest_version(key))))
        .where(e.c.key == key)
    )


def latest_snapshot(conn: Connection, key: str, *, state: bool = False) -> SnapshotRecord | None:
    """The latest policy snapshot of experiment ``key`` (with its ``state`` when asked), or None."""
    s = snapshots_table
    columns = [s.c.version, s.c.spec_version, s.c.created_at, s.c.cursor, s.c.learned_decisions,
               s.c.learned_reward]
    if state:
        columns.append(s.c.state)
    row = conn.execute(
        select(*columns).where(s.c.experiment_key == key, s.c.version == _latest_version(key))
    ).first()
    if row is None:
        return None
    return SnapshotRecord(
        version=int(row.version),
        spec_version=int(row.spec_version),
        created_at=row.created_at,
        cursor=int(row.cursor),
        learned_decisions=int(row.learned_decisions),
        state=bytes(row.state) if state else None,
        learned_reward=None if row.learned_reward is None else float(row.learned_reward),
    )


def snapshot_states(conn: Connection, key: str, versions: Sequence[int]) -> Iterator[tuple[int, bytes]]:
    """``(version, state)`` of the listed snapshot versions of ``key`` that exist."""
    s = snapshots_table
    for chunk in chunks(list(versions)):
        query = select(s.c.version, s.c.state).where(s.c.experiment_key == key, s.c.version.in_(chunk))
        for version, state in conn.execute(query):
            yield int(version), bytes(state)


def snapshot_state(conn: Connection, key: str, version: int) -> bytes | None:
    """The state of snapshot ``version`` of ``key``, or None when there is none."""
    return next((state for _, state in snapshot_states(conn, key, [version])), None)


def spec_text(conn: Connection, key: str, version: int) -> str:
    """The canonical JSON of version ``version`` of experiment ``key``'s spec (every version is kept)."""
    v = versions_table
    return conn.execute(select(v.c.spec).where(v.c.key == key, v.c.version == version)).scalar_one()


# ---------------------------------------------------------------------------------- the repository


class Repository:
    """The reads and writes of experiments, spec versions and policy snapshots, with what they build
    kept per process (compiled specs, restored policies, snapshot probabilities).

    Every method takes the connection its caller's transaction runs on, so a use case decides what
    one transaction reads together.
    """

    def __init__(
        self,
        *,
        specs: int = CACHED_SPECS,
        policies: int = CACHED_POLICIES,
    ) -> None:
        self._compiled: LRU[tuple[str, int], CompiledExperiment] = LRU(specs)
        self._policies: LRU[str, tuple[int, Policy]] = LRU(policies)

    def cache_sizes(self) -> dict[str, int]:
        """How many entries each cache holds now (each at most its size in :mod:`experiments.limits`)."""
        return {"specs": len(self._compiled), "policies": len(self._policies)}

    # ---------------------------------------------------------------- specs

    def compiled(self, key: str, version: int, text: str | None = None, conn: Connection | None = None
                 ) -> CompiledExperiment:
        """The compiled spec of version ``version`` of ``key``: built once from ``text``, or from the
        stored version read on ``conn``."""
        found = self._compiled.get((key, version))
        if found is None:
            if text is None:
                assert conn is not None, "the spec text or a connection to read it on"
                text = spec_text(conn, key, version)
            found = compile_experiment(ExperimentSpec.model_validate_json(text), version)
            self._compiled[(key, version)] = found
        return found

    def compiled_of(self, record: ExperimentRecord) -> CompiledExperiment:
        """The compiled spec of an experiment's current version."""
        return self.compiled(record.key, record.version, record.spec)

    # ---------------------------------------------------------------- experiments

    @staticmethod
    def experiment(conn: Connection, key: str, *, lock: bool = False) -> ExperimentRecord:
        """Experiment ``key`` (locked for update when ``lock``); :class:`NotFound` when there is none."""
        check_stored_key(key)
        query = select(experiments_table).where(experiments_table.c.key == key)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(key)
        return _experiment(row)

    @staticmethod
    def find_experiment(conn: Connection, key: str, *, lock: bool = False) -> ExperimentRecord | None:
        """Experiment ``key``, or None."""
        query = select(experiments_table).where(experiments_table.c.key == key)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        return None if row is None else _experiment(row)

    @staticmethod
    def experiments(conn: Connection) -> list[ExperimentRecord]:
        """Every experiment, by key."""
        rows = conn.execute(select(experiments_table).order_by(experiments_table.c.key)).all()
        return [_experiment(r) for r in rows]

    def current(self, conn: Connection, key: str) -> tuple[ExperimentRecord, CompiledExperiment]:
        """Experiment ``key`` and the compiled spec of its current version."""
        record = self.experiment(conn, key)
        return record, self.compiled_of(record)

    def assign_state(self, conn: Connection, key: str) -> tuple[AssignState, CompiledExperiment]:
        """What assignment needs of an experiment, read in one query (:class:`AssignState`), and its
        compiled spec (the spec text is read only the first time a version is seen)."""
        check_stored_key(key)
        row = conn.execute(_assign_state_query(), {"key": key}).first()
        if row is None:
            raise NotFound(key)
        state = AssignState(
            int(row.version), row.status, bool(row.apprentice), row.policy_version, row.policy_spec_version
        )
        return state, self.compiled(key, state.version, conn=conn)

    @staticmethod
    def save_experiment(
        conn: Connection,
        key: str,
        text: str,
        warnings: list[str],
        apprentice: bool,
        now: datetime,
        existing: ExperimentRecord | None,
        policy: Policy | None,
    ) -> int:
        """Store a new version of ``key``'s spec (the first, running, when ``existing`` is None), and a
        fresh policy snapshot of that version when ``policy`` is given; return the version."""
        version = 1 if existing is None else existing.version + 1
        values = {"version": version, "spec": text, "warnings": warnings, "updated_at": now,
                  "apprentice": apprentice}
        e = experiments_table
        if existing is None:
            conn.execute(e.insert().values(key=key, status="running", created_at=now, **values))
        else:
            conn.execute(e.update().where(e.c.key == key).values(**values))
        conn.execute(versions_table.insert().values(key=key, version=version, spec=text, created_at=now))
        if policy is not None:
            last = conn.execute(select(_latest_version(key))).scalar()
            design = ExperimentSpec.model_validate_json(text).design.type
            insert_snapshot(conn, key, (last or 0) + 1, version, policy.to_bytes(), now, design=design,
                            learned_reward=0.0)
        return version

    @staticmethod
    def update_experiment(conn: Connection, key: str, now: datetime, **values: Any) -> None:
        """Set ``status`` or ``apprentice`` of ``key`` (and its ``updated_at``)."""
        e = experiments_table
        conn.execute(e.update().where(e.c.key == key).values(updated_at=now, **values))

    # ---------------------------------------------------------------- policy snapshots

    latest_snapshot = staticmethod(latest_snapshot)
    snapshot_state = staticmethod(snapshot_state)

    @staticmethod
    def snapshots(conn: Connection, key: str, versions: Sequence[int] | None = None) -> list[SnapshotRecord]:
        """Every snapshot of ``key`` (with ``versions``, those of them that exist) without its state,
        oldest first (read from the index ``ix_policy_snapshots_versions``)."""
        s = snapshots_table
        query = (select(s.c.version, s.c.spec_version, s.c.created_at, s.c.cursor, s.c.learned_decisions)
                 .where(s.c.experiment_key == key).order_by(s.c.version))
        rows = []
        for chunk in [None] if versions is None else chunks(sorted(set(versions))):
            rows += conn.execute(query if chunk is None else query.where(s.c.version.in_(chunk))).all()
        return [SnapshotRecord(int(r.version), int(r.spec_version), r.created_at, int(r.cursor),
                               int(r.learned_decisions)) for r in rows]

    @staticmethod
    def snapshot_versions(conn: Connection, key: str) -> list[int]:
        """The version of every snapshot of ``key``, oldest first (an index range, no row read)."""
        s = snapshots_table
        query = select(s.c.version).where(s.c.experiment_key == key).order_by(s.c.version)
        return [int(v) for v in conn.execute(query).scalars()]

    @staticmethod
    def arm_probabilities(conn: Connection, key: str, versions: Sequence[int]
                          ) -> dict[int, list[float] | None]:
        """The stored arm probabilities of each listed snapshot version of ``key`` (None: not a bandit's,
        unreadable, or no such version); no state is restored."""
        s = snapshots_table
        found: dict[int, list[float] | None] = {}
        for chunk in chunks(list(versions)):
            query = select(s.c.version, s.c.arm_probabilities).where(
                s.c.experiment_key == key, s.c.version.in_(chunk))
            for version, probs in conn.execute(query):
                found[int(version)] = None if probs is None else [float(p) for p in probs]
        return {v: found.get(v) for v in versions}

    def restored_policy(
        self, conn: Connection, key: str, spec_version: int, version: int | None,
        snapshot_spec_version: int | None,
    ) -> tuple[int, Policy] | None:
        """The latest snapshot ``version`` restored (kept per experiment until a newer version appears);
        None when there is none or it belongs to another spec version than ``spec_version``."""
        if version is None or snapshot_spec_version != spec_version:
            return None
        cached = self._policies.get(key)
        if cached is not None and cached[0] == version:
            return cached
        state = snapshot_state(conn, key, version)
        if state is None:
            return None
        restored = (version, load_policy(state))
        self._policies[key] = restored
        return restored

    def current_policy(self, conn: Connection, key: str, spec_version: int) -> tuple[int, Policy] | None:
        """The latest snapshot of ``key`` restored, when it belongs to ``spec_version``."""
        latest = latest_snapshot(conn, key)
        if latest is None:
            return None
        return self.restored_policy(conn, key, spec_version, latest.version, latest.spec_version)

    @staticmethod
    def policy_at(conn: Connection, key: str, version: int) -> Policy | None:
        """Snapshot ``version`` of ``key`` restored (None if it is gone or cannot be read)."""
        state = snapshot_state(conn, key, version)
        if state is None:
            return None
        try:
            return load_policy(state)
        except (PolicyError, ValueError):
            return None

    def latest_arm_probabilities(self, conn: Connection, compiled: CompiledExperiment) -> list[float] | None:
        """The arm probabilities of a bandit's latest snapshot (None for other designs or without one)."""
        if compiled.spec.design.type != "bandit":
            return None
        latest = conn.execute(select(_latest_version(compiled.spec.key))).scalar()
        if latest is None:
            return None
        return self.arm_probabilities(conn, compiled.spec.key, [int(latest)])[int(latest)]

    @staticmethod
    def snapshot_times(conn: Connection, key: str, spec_version: int) -> dict[int, datetime]:
        """When each snapshot of ``key`` made under spec version ``spec_version`` was stored."""
        s = snapshots_table
        rows = conn.execute(
            select(s.c.version, s.c.created_at)
            .where(s.c.experiment_key == key, s.c.spec_version == spec_version)
        )
        return {int(v): from_db_time(t) for v, t in rows}

    # ---------------------------------------------------------------- decisions

    @staticmethod
    def decision(conn: Connection, decision_id: str) -> StoredDecision | None:
        """One logged decision, or None."""
        d = decisions_table
        row = conn.execute(
            select(d, d.c.context.is_(None).label("context_dropped")).where(d.c.id == decision_id)
        ).first()
        if row is None:
            return None
        return StoredDecision(
            id=row.id, experiment_key=row.experiment_key, version=int(row.version),
            recipient_id=row.recipient_id, variants=dict(row.variants), arm=int(row.arm),
            propensity=float(row.propensity), policy_version=row.policy_version, reason=row.reason,
            explored=bool(row.explored), context=row.context, created_at=from_db_time(row.created_at),
            context_dropped=bool(row.context_dropped), feature_version=row.feature_version,
        )

    @staticmethod
    def recent_contexts(conn: Connection, compiled: CompiledExperiment, sample: int) -> list[dict[str, Any]]:
        """The stored contexts of the latest ``sample`` policy decisions of the version."""
        d = decisions_table
        query = (
            select(d.c.context)
            .where(
                d.c.experiment_key == compiled.spec.key,
                d.c.version == compiled.version,
                d.c.fallback.is_(False),
                d.c.context.is_not(None),
            )
            .order_by(d.c.created_at.desc(), d.c.id)
            .limit(sample)
        )
        return [c for (c,) in conn.execute(query)]
