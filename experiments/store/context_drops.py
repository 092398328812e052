"""Dropping stored contexts (retention, erasure) with the breakdown rollups kept exact: a decision whose
context goes counts as missing every context attribute from then on, so its contribution moves to the
missing segment and leaves the covariate sums (:func:`experiments.store.breakdown_rollups.dropped_change`)
in the transaction that drops it.

Concurrency: an outcome transaction reads a decision's segments and reward and adds their change; a drop
must not interleave with it. On SQLite both take the write lock first (:func:`begin_write`). On
PostgreSQL a drop takes an exclusive transaction-scoped advisory lock (:data:`DROP_LOCK`) that every
outcome transaction takes shared before its per-decision locks
(:func:`experiments.store.rollups.lock_decisions`): drops are rare, and one lock serves any number of
decisions (advisory locks take room in a shared table, so a prune cannot lock each decision).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import String, cast, null, select, update
from sqlalchemy.engine import Connection

from experiments.store.breakdown_rollups import (
    add_breakdowns,
    compiled_version,
    dropped_change,
    stored_states,
)
from experiments.store.repository import chunks
from experiments.store.rollups import DROP_LOCK, attributed_states, begin_write
from experiments.store.tables import decisions_table as D


def lock_for_drop(conn: Connection) -> None:
    """Serialise this transaction with every outcome transaction and other drop: SQLite's write lock
    (call it first in the transaction), PostgreSQL's :data:`DROP_LOCK`, exclusive."""
    begin_write(conn)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, %s)", DROP_LOCK)


def with_context(decision_ids: Sequence[str]) -> list[object]:
    """The conditions of the listed decisions that still hold a context to drop (not SQL NULL, not the
    JSON ``null`` a recipient without consent is stored with)."""
    return [D.c.id.in_(list(decision_ids)), D.c.context.is_not(None), cast(D.c.context, String) != "null"]


def drop_contexts(conn: Connection, decision_ids: Sequence[str]) -> int:
    """Drop the contexts of the listed decisions, moving their breakdown contributions first; the number
    of decisions changed. Call :func:`lock_for_drop` first in the transaction."""
    changed = 0
    for chunk in chunks(sorted(set(decision_ids))):
        version_to_ids: dict[tuple[str, int], list[str]] = defaultdict(list)
        query = select(D.c.experiment_key, D.c.version, D.c.id).where(
            *with_context(chunk), D.c.fallback.is_(False)
        )
        for key, version, decision_id in conn.execute(query):
            version_to_ids[(key, int(version))].append(decision_id)
        changes = {}
        for (key, version), ids in sorted(version_to_ids.items()):
            compiled = compiled_version(conn, key, version)
            states = stored_states(conn, compiled, ids)
            changes[(key, version)] = dropped_change(compiled, states, attributed_states(conn, compiled, ids))
        add_breakdowns(conn, changes)
        changed += conn.execute(update(D).where(*with_context(chunk)).values(context=null())).rowcount
    return changed
