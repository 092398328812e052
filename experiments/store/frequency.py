"""The per-recipient send counts of frequency caps (:mod:`experiments.frequency`): one row per (scope,
recipient) in ``frequency_counts``, read by its primary key and updated in the transaction that locks it.

:func:`claim_sends` checks and records a batch's sends in one transaction. On PostgreSQL the missing
rows are inserted first (``ON CONFLICT DO NOTHING``, committed on their own), then every row of the
batch is locked with ``SELECT ... ORDER BY recipient_id FOR UPDATE`` (one order for every worker, so two
batches never wait on each other in a cycle), checked and updated. On SQLite the transaction starts with
its write (the insert), which takes the database's one write lock, so batches take turns. Either way a
recipient in two concurrent batches is counted by the second after the first committed: no one is sent
over the cap.
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


def claim_sends(
    engine: Engine, scope: str, cap: Frequency, recipient_ids: Sequence[str], times: Sequence[datetime]
) -> list[bool]:
    """Record a send at ``times[i]`` (naive UTC) to each of ``recipient_ids`` that stays within ``cap``
    in ``scope``; return which were allowed, in order (a recipient named twice is counted twice), once
    committed."""
    unique = sorted(set(recipient_ids))
    if not unique:
        return []
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            _insert_missing(conn, scope, unique)
    with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            _insert_missing(conn, scope, unique)  # the write lock first: batches take turns
        rid_to_sends = _locked_sends(conn, scope, unique)
        allowed = []
        changed: dict[str, list[datetime]] = {}
        for rid, at in zip(recipient_ids, times, strict=True):
            check: CapCheck = check_cap(rid_to_sends.get(rid, []), at, cap)
            allowed.append(check.allowed)
            if check.allowed:
                rid_to_sends[rid] = changed[rid] = check.sends
        _write(conn, scope, changed)
    return allowed


def release_sends(
    engine: Engine, scope: str, recipient_ids: Sequence[str], times: Sequence[datetime]
) -> None:
    """Take back sends recorded by :func:`claim_sends` whose decisions were not stored after all."""
    unique = sorted(set(recipient_ids))
    if not unique:
        return
    with engine.begin() as conn:
        rid_to_sends = _locked_sends(conn, scope, unique)
        changed = {}
        for rid, at in zip(recipient_ids, times, strict=True):
            sends = rid_to_sends.get(rid, [])
            if at in sends:
                sends.remove(at)
                changed[rid] = sends
        _write(conn, scope, changed)


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
