"""The per-recipient send counts of frequency caps (:mod:`experiments.frequency`): one row per (scope,
recipient) in ``frequency_counts``, read by its primary key and updated in the transaction that locks it.

:func:`lock_counts` and :func:`claim_sends` check and record a batch's sends in the caller's transaction
(the one that writes the batch's decisions, :mod:`experiments.frequency_caps`). On PostgreSQL the missing
rows are inserted first (:func:`add_missing_counts`: ``ON CONFLICT DO NOTHING``, empty, committed on
their own), then every row of the batch is locked with ``SELECT ... ORDER BY recipient_id FOR UPDATE``
(one order for every worker, so two batches never wait on each other in a cycle), checked and updated.
On SQLite the transaction starts with its write (the insert), which takes the database's one write
lock, so batches take turns. Either way a recipient in two concurrent batches is counted by the second
after the first committed: no one is sent over the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from experiments.frequency import CapCheck, Frequency, check_cap
from experiments.store.repository import chunks
from experiments.store.tables import frequency_table as F


def _insert_missing(conn: Connection, scope: str, recipient_ids: Sequence[str]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for chunk in chunks(recipient_ids):
        rows = [{"scope": scope, "recipient_id": rid, "sends": []} for rid in chunk]
        conn.execute(dialect.insert(F).values(rows).on_conflict_do_nothing())


def _locked_sends(conn: Connection, scope: str, recipient_ids: Sequence[str]) -> dict[str, list[datetime]]:
    locking = conn.dialect.name == "postgresql"
    out: dict[str, list[datetime]] = {}
    for chunk in chunks(recipient_ids):
        query = select(F.c.recipient_id, F.c.sends).where(F.c.scope == scope, F.c.recipient_id.in_(chunk))
        if locking:
            query = query.order_by(F.c.recipient_id).with_for_update()
        for rid, sends in conn.execute(query):
            out[rid] = [datetime.fromisoformat(s) for s in sends]
    return out


def add_missing_counts(engine: Engine, scope: str, recipient_ids: Sequence[str]) -> None:
    """PostgreSQL: the rows of ``recipient_ids`` not yet in ``frequency_counts`` inserted empty (no
    sends) and committed, so that :func:`claim_sends` finds a row to lock for each. Nothing on SQLite,
    where :func:`claim_sends` inserts them itself."""
    if engine.dialect.name == "postgresql" and recipient_ids:
        with engine.begin() as conn:
            _insert_missing(conn, scope, sorted(set(recipient_ids)))


def lock_counts(conn: Connection, scope: str, recipient_ids: Sequence[str]) -> dict[str, list[datetime]]:
    """The recorded sends of each of ``recipient_ids`` in ``scope``, locked for the rest of the open
    transaction on ``conn``: PostgreSQL locks the rows (:func:`add_missing_counts` first) in recipient
    order; SQLite takes the database's write lock by inserting the missing rows."""
    unique = sorted(set(recipient_ids))
    if conn.dialect.name != "postgresql":
        _insert_missing(conn, scope, unique)  # the write lock first: batches take turns
    return _locked_sends(conn, scope, unique) if unique else {}


def claim_sends(
    conn: Connection,
    scope: str,
    cap: Frequency,
    locked: dict[str, list[datetime]],
    recipient_ids: Sequence[str],
    times: Sequence[datetime],
) -> list[bool]:
    """Record a send at ``times[i]`` (naive UTC) to each of ``recipient_ids`` that stays within ``cap``
    in ``scope``, on ``conn``'s open transaction (``locked``: :func:`lock_counts` of them); return which
    were allowed, in order (a recipient named twice is counted twice). The counts commit with that
    transaction, and only with it."""
    allowed = []
    changed: dict[str, list[datetime]] = {}
    for rid, at in zip(recipient_ids, times, strict=True):
        check: CapCheck = check_cap(locked.get(rid, []), at, cap)
        allowed.append(check.allowed)
        if check.allowed:
            locked[rid] = changed[rid] = check.sends
    _write(conn, scope, changed)
    return allowed


def _write(conn: Connection, scope: str, rid_to_sends: dict[str, list[datetime]]) -> None:
    if not rid_to_sends:
        return
    statement = (
        update(F)
        .where(F.c.scope == scope, F.c.recipient_id == bindparam("rid"))
        .values(sends=bindparam("new_sends"))
    )
    conn.execute(
        statement,
        [{"rid": rid, "new_sends": [s.isoformat() for s in sends]} for rid, sends in rid_to_sends.items()],
    )
