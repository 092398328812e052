"""The stored rollups: read a spec version's cells and outcome counts, add changes to them.

Changes are added with one ``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x`` per table and
write (SQLite and PostgreSQL alike), the rows in key order, so that concurrent writers lock the rows they
share in the same order (no deadlock on PostgreSQL). What keeps them exact is
:mod:`experiments.store.rollups`; the tables are :class:`experiments.store.tables.RollupRow` and its
neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Dialect

from experiments.rollup_deltas import CellChange
from experiments.store.cells import SCAN_COLUMNS, CellKey, DecisionGroup, RollupCell
from experiments.store.tables import NO_POLICY_VERSION
from experiments.store.tables import drift_rollups_table as DR  # drift rollups (drift_rollups.py)
from experiments.store.tables import rollup_adaptive_table as A
from experiments.store.tables import rollup_counts_table as C
from experiments.store.tables import rollup_covariates_table as V
from experiments.store.tables import rollup_events_table as E
from experiments.store.tables import rollup_segments_table as S
from experiments.store.tables import rollups_table as R

#: ``rollup_counts.kind`` of each count kept per spec version and event type.
MACHINE_IN_WINDOW = "machine_window"
MACHINE_LATE = "machine_late"
LATE = "late"
UNCOUNTED_VALUE = "uncounted_value"
#: A cell's sums, as :class:`experiments.store.tables.RollupRow` stores them.
SUM_COLUMNS = ("decisions", "explored", "learned", "reward_sum", "reward_sum_squares", "reward_sum_cubes")
_TABLES = {t.name: t for t in (R, E, C, A, S, V, DR)}


def _stored_policy(policy_version: int | None) -> int:
    return NO_POLICY_VERSION if policy_version is None else int(policy_version)


def _read_policy(stored: int) -> int | None:
    return None if stored == NO_POLICY_VERSION else int(stored)


@dataclass(frozen=True)
class _Upsert:
    """An upsert of one table as the driver takes it: its SQL with positional marks, the columns in
    order, and each column's bind processor on the dialect (None: the value as it is)."""

    sql: str
    columns: tuple[str, ...]
    binds: tuple[Callable[[Any], Any] | None, ...]


#: The upserts built so far, by table, columns and database (:func:`_upsert_statement`).
_UPSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...], str], _Upsert] = {}


def _upsert_statement(table_name: str, added: tuple[str, ...], least: tuple[str, ...], dialect: Dialect
                      ) -> _Upsert:
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET x = x + excluded.x`` for one row of ``table_name``
    (and, for the ``least`` columns, the smaller of the stored and the new value, NULL being neither:
    ``min`` on SQLite, ``least`` on PostgreSQL), with the columns' bind processors; built once per
    database kind."""
    key = (table_name, added, least, dialect.name)
    if key not in _UPSERTS:
        _UPSERTS[key] = _build_upsert(table_name, added, least, dialect)
    return _UPSERTS[key]


def _build_upsert(table_name: str, added: tuple[str, ...], least: tuple[str, ...], dialect: Dialect
                  ) -> _Upsert:
    table = _TABLES[table_name]
    columns = tuple(c.name for c in table.columns)
    keys = ", ".join(c.name for c in table.primary_key.columns)
    sqlite = dialect.name == "sqlite"
    smaller = "min" if sqlite else "least"
    updates = [f"{c} = {table_name}.{c} + excluded.{c}" for c in added] + [
        f"{c} = {smaller}(coalesce({table_name}.{c}, excluded.{c}), coalesce(excluded.{c}, {table_name}.{c}))"
        for c in least
    ]
    marks = ", ".join(["?" if sqlite else "%s"] * len(columns))
    sql = (f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks}) "
           f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(updates)}")
    binds = tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return _Upsert(sql, columns, binds)


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], added: tuple[str, ...],
            least: tuple[str, ...] = ()) -> None:
    """Insert ``rows`` (sorted by key, each with every column), or add their ``added`` columns to the
    rows stored already (see :func:`_upsert_statement` for ``least``): one ``executemany`` by the
    driver, the values bound by the columns' own types as SQLAlchemy binds them (a statement executed
    through SQLAlchemy costs about as much again as the database's work for the one-row upserts of a
    single assign)."""
    if not rows:
        return
    upsert = _upsert_statement(table.name, added, least, conn.dialect)
    pairs = tuple(zip(upsert.columns, upsert.binds, strict=True))
    params = [tuple(row[c] if bind is None else bind(row[c]) for c, bind in pairs) for row in rows]
    driver = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        driver.executemany(upsert.sql, params)
    else:
        with driver.cursor() as cursor:
            if len(params) == 1:  # psycopg's executemany enters a pipeline: a round trip more for one row
                cursor.execute(upsert.sql, params[0])
            else:
                cursor.executemany(upsert.sql, params)


def add_cell_changes(conn: Connection, key: str, version: int, changes: Mapping[CellKey, CellChange]) -> None:
    """Add ``changes`` to the cells of version ``version`` of experiment ``key`` (made when missing).

    Cells whose change is zero are not written; the sums go to ``rollups``, the event counts to
    ``rollup_events`` (in that order, each sorted by key).
    """
    cells, events = [], []
    for cell_key in sorted(changes, key=_sort_key):
        change = changes[cell_key]
        base = {"experiment_key": key, "version": version, **dict(zip(SCAN_COLUMNS, cell_key, strict=True))}
        base["policy_version"] = _stored_policy(base["policy_version"])
        sums = {c: getattr(change, c) for c in SUM_COLUMNS}
        if any(sums.values()):
            cells.append({**base, **sums})
        for t in sorted(change.event_counts):
            if change.event_counts[t]:
                events.append({**base, "type": t, "decisions": change.event_counts[t]})
    _upsert(conn, R, cells, SUM_COLUMNS)
    _upsert(conn, E, events, ("decisions",))


def _sort_key(cell_key: CellKey) -> tuple[Any, ...]:
    fallback, reason, arm, day, policy_version = cell_key
    return (fallback, reason, arm, day, _stored_policy(policy_version))


def add_outcome_counts(
    conn: Connection, key: str, version: int, counts: Mapping[tuple[str, str], int]
) -> None:
    """Add ``counts`` (per ``(kind, event type)``) to the outcome counts of the version."""
    rows = [
        {"experiment_key": key, "version": version, "kind": kind, "type": t, "outcomes": n}
        for (kind, t), n in sorted(counts.items()) if n
    ]
    _upsert(conn, C, rows, ("outcomes",))


def stored_cells(conn: Connection, key: str, version: int) -> list[RollupCell]:
    """The stored cells of version ``version`` of ``key``, with their event counts, in key order."""
    where = (R.c.experiment_key == key, R.c.version == version)
    cell_to_counts: dict[tuple[Any, ...], dict[str, int]] = {}
    query = select(*[E.c[c] for c in SCAN_COLUMNS], E.c.type, E.c.decisions).where(
        E.c.experiment_key == key, E.c.version == version
    )
    for row in conn.execute(query):
        cell_to_counts.setdefault(tuple(row[:5]), {})[row.type] = int(row.decisions)
    cells = []
    query = select(*[R.c[c] for c in SCAN_COLUMNS], *[R.c[c] for c in SUM_COLUMNS]).where(*where)
    for row in conn.execute(query.order_by(*[R.c[c] for c in SCAN_COLUMNS])):
        cells.append(RollupCell(
            bool(row.fallback), str(row.reason), int(row.arm), row.day, _read_policy(row.policy_version),
            int(row.decisions), int(row.explored), int(row.learned), float(row.reward_sum),
            float(row.reward_sum_squares), float(row.reward_sum_cubes),
            cell_to_counts.get(tuple(row[:5]), {}),
        ))
    return cells


def stored_day_cells(conn: Connection, key: str, version: int) -> list[RollupCell]:
    """The stored cells of the version with decisions, summed over their policy versions by the
    database: a cell per (fallback, reason, arm, day), its ``policy_version`` None, in key order. What
    the arm, fallback and daily statistics read (they do not group by policy version): rows that grow
    with the days and arms, not with the policy versions."""
    where = (R.c.experiment_key == key, R.c.version == version, R.c.decisions > 0)
    keys = [R.c[c] for c in SCAN_COLUMNS[:4]]
    event_keys = [E.c[c] for c in SCAN_COLUMNS[:4]]
    counted = select(*event_keys, E.c.type, func.sum(E.c.decisions)).select_from(
        E.join(R, (E.c.experiment_key == R.c.experiment_key) & (E.c.version == R.c.version)
               & (E.c.fallback == R.c.fallback) & (E.c.reason == R.c.reason) & (E.c.arm == R.c.arm)
               & (E.c.day == R.c.day) & (E.c.policy_version == R.c.policy_version))
    ).where(*where).group_by(*event_keys, E.c.type)
    cell_to_counts: dict[tuple[Any, ...], dict[str, int]] = {}
    for *cell, event_type, n in conn.execute(counted):
        if n:
            cell_to_counts.setdefault(tuple(cell), {})[event_type] = int(n)
    query = select(*keys, *[func.sum(R.c[c]) for c in SUM_COLUMNS]).where(*where).group_by(*keys)
    return [
        RollupCell(bool(fallback), str(reason), int(arm), day, None, int(n), int(explored), int(learned),
                   float(reward), float(squares), float(cubes),
                   cell_to_counts.get((fallback, reason, arm, day), {}))
        for fallback, reason, arm, day, n, explored, learned, reward, squares, cubes
        in conn.execute(query.order_by(*keys)).all()  # fetched at once: the driver's fetchall
    ]


def stored_version_groups(conn: Connection, key: str, version: int) -> list[DecisionGroup]:
    """The stored cells of the version summed over their days by the database: the decisions, explored
    and learned per (fallback, reason, arm, policy version), ``day`` None; what the learning summary
    reads (:func:`experiments.learning_progress.version_allocations`)."""
    keys = [R.c.fallback, R.c.reason, R.c.arm, R.c.policy_version]
    query = (select(*keys, *[func.sum(R.c[c]) for c in SUM_COLUMNS[:3]])
             .where(R.c.experiment_key == key, R.c.version == version).group_by(*keys))
    return [
        DecisionGroup(bool(fallback), str(reason), int(arm), None, _read_policy(policy), int(n),
                      int(explored), int(learned))
        for fallback, reason, arm, policy, n, explored, learned in conn.execute(query).all()
    ]


def stored_outcome_counts(conn: Connection, key: str, version: int) -> dict[tuple[str, str], int]:
    """The stored outcome counts of the version, per ``(kind, event type)``."""
    query = select(C.c.kind, C.c.type, C.c.outcomes).where(C.c.experiment_key == key, C.c.version == version)
    return {(str(kind), str(t)): int(n) for kind, t, n in conn.execute(query) if n}


def stored_decision_counts(conn: Connection, key: str, version: int) -> dict[tuple[bool, str, int], int]:
    """The decisions of the version per ``(fallback, reason, arm)``, summed over its stored cells (a
    ``GROUP BY`` over a few rows per arm and day)."""
    columns = (R.c.fallback, R.c.reason, R.c.arm)
    query = (select(*columns, func.sum(R.c.decisions))
             .where(R.c.experiment_key == key, R.c.version == version).group_by(*columns))
    return {(bool(f), str(r), int(a)): int(n) for f, r, a, n in conn.execute(query) if n}


def delete_rollups(conn: Connection, key: str, version: int) -> None:
    """Delete every stored rollup row of the version (before storing them anew)."""
    for table in (R, E, C):
        conn.execute(delete(table).where(table.c.experiment_key == key, table.c.version == version))
