"""Idempotent sends: one decision per (experiment, send, recipient), however often a send is posted.

An email platform retries: a timeout, a worker restart, yesterday's job run again. A decision made with
a ``send_id`` is written with ``INSERT ... ON CONFLICT DO NOTHING`` against the unique index
``uq_decisions_send`` on ``(experiment_key, send_id, recipient_id)`` (decisions without a send id are
outside it), so of two writers of the same recipient, on one worker or several, the database keeps the
first and the second writes nothing. Once its rows are committed, the caller reads back the stored
decision of each recipient (:func:`stored_sends`) and answers with it (:func:`answer_with_stored`): the
original decision id, variants and propensity, whichever call made them.

The write is one statement per group of rows on both databases, so it stays all-or-none on a connection
in autocommit mode (PostgreSQL) and inside a group commit (SQLite).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment, slot_content
from experiments.errors import NUL_REASON, InvalidInput
from experiments.limits import MAX_ID_LENGTH
from experiments.models import Decision, VariantChoice
from experiments.send_time import SEND_TIME_SLOT
from experiments.store import (
    DECISION_COLUMNS,
    decisions_table,
    from_db_time,
    insert_decisions,
    to_db_time,
)
from experiments.store.breakdown_rollups import CompiledOf, compiled_version
from experiments.store.repository import chunks
from experiments.store.rollups import inserted_rows, record_decisions

#: Where a row (a tuple in :data:`experiments.store.DECISION_COLUMNS` order) holds its send id.
SEND_ID_POSITION = DECISION_COLUMNS.index("send_id")
_RECIPIENT_POSITION = DECISION_COLUMNS.index("recipient_id")
_CONFLICT = "ON CONFLICT (experiment_key, send_id, recipient_id) WHERE send_id IS NOT NULL DO NOTHING"


def check_send_id(send_id: Any) -> None:
    """:class:`InvalidInput` at ``send_id`` unless it is None or a non-empty string of at most
    :data:`MAX_ID_LENGTH` characters without NUL."""
    if send_id is None:
        return
    if not isinstance(send_id, str) or not 0 < len(send_id) <= MAX_ID_LENGTH:
        raise InvalidInput("send_id", f"must be a non-empty string of at most {MAX_ID_LENGTH} chars")
    if "\x00" in send_id:
        raise InvalidInput("send_id", NUL_REASON)


def send_times(send_at: Any, n: int, single: bool = False) -> list[datetime | None]:
    """Per recipient, when the email goes out (naive UTC, as stored; None: at the decision).

    ``send_at`` is one time for the whole send, or a sequence of ``n`` (a time or None each); a naive
    time is taken as UTC.

    Raises
    ------
    InvalidInput
        At ``send_at``, or ``recipients[i].send_at`` for a per-recipient time (``send_at`` when
        ``single``): not a datetime, the wrong length, or outside years 1 to 9999 in UTC.
    """
    if send_at is None:
        return [None] * n
    if isinstance(send_at, datetime):
        return [_stored_time(send_at, "send_at")] * n
    if isinstance(send_at, str | bytes) or not isinstance(send_at, Sequence):
        raise InvalidInput("send_at", f"must be a UTC time, got {send_at!r}")
    if len(send_at) != n:
        raise InvalidInput("send_at", f"expected one time per recipient ({n}), got {len(send_at)}")
    return [
        None if t is None else _stored_time(t, "send_at" if single else f"recipients[{i}].send_at")
        for i, t in enumerate(send_at)
    ]


def _stored_time(moment: Any, field: str) -> datetime:
    if not isinstance(moment, datetime):
        raise InvalidInput(field, f"must be a UTC time (ISO 8601), got {moment!r}")
    try:
        return to_db_time(moment)
    except OverflowError:
        raise InvalidInput(
            field, f"out of range: {moment.isoformat()} is not between years 1 and 9999 in UTC"
        ) from None


def first_of_each_recipient(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of a send with each recipient's first row only: a repeat within one batch is one decision."""
    seen: set[str] = set()
    out = []
    for row in rows:
        rid = row[_RECIPIENT_POSITION]
        if rid not in seen:
            seen.add(rid)
            out.append(row)
    return out


def write_decisions(conn: Connection, rows: Sequence[tuple[Any, ...]],
                    compiled_of: CompiledOf = compiled_version) -> None:
    """Write decision rows: those without a send id as :func:`experiments.store.insert_decisions` does,
    those with one by :func:`insert_send_decisions` (a recipient already logged for the send is skipped);
    then count the rows written in the rollups, in the same transaction
    (:func:`experiments.store.rollups.record_decisions`, ``compiled_of`` giving each version's compiled
    spec)."""
    plain = [row for row in rows if row[SEND_ID_POSITION] is None]
    sent = [row for row in rows if row[SEND_ID_POSITION] is not None] if len(plain) < len(rows) else []
    insert_decisions(conn, plain)
    insert_send_decisions(conn, sent)
    record_decisions(conn, plain + (inserted_rows(conn, sent) if sent else []), compiled_of)


def insert_send_decisions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert decision rows that carry a send id, skipping each whose (experiment, send, recipient) is
    stored already; one statement.

    SQLite: an ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``. PostgreSQL: one
    ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING`` with one array per column (the JSON
    columns arrive as text, :func:`experiments.store.decision_encoding`, and are cast).
    """
    if not rows:
        return
    names = ", ".join(DECISION_COLUMNS)
    if conn.dialect.name == "postgresql":
        types = [_pg_array_type(c) for c in DECISION_COLUMNS]
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        selected = ", ".join(
            f"{c}::json" if t == "text" else c for c, t in zip(DECISION_COLUMNS, types, strict=True)
        )
        columns = [list(column) for column in zip(*rows, strict=True)]
        with conn.connection.driver_connection.cursor(binary=True) as cursor:
            cursor.execute(
                f"INSERT INTO decisions ({names}) SELECT {selected} "
                f"FROM unnest({arrays}) AS t({names}) {_CONFLICT}",
                columns,
            )
        return
    marks = ", ".join("?" * len(DECISION_COLUMNS))
    conn.connection.driver_connection.executemany(
        f"INSERT INTO decisions ({names}) VALUES ({marks}) {_CONFLICT}", rows
    )


def _pg_array_type(column: str) -> str:
    """The PostgreSQL element type an array of ``column``'s values is sent as (JSON as text)."""
    sql_type = decisions_table.c[column].type
    if sql_type.__class__.__name__ == "JSON":
        return "text"
    return sql_type.compile(dialect=postgresql.dialect())


def stored_sends(
    conn: Connection, key: str, send_id: str, recipient_ids: Sequence[str]
) -> dict[str, Any]:
    """The stored decision of each recipient of ``send_id`` in experiment ``key``, by recipient id.

    One probe of ``uq_decisions_send`` per recipient: on PostgreSQL the ids are one array joined to the
    table (a filter ``recipient_id = ANY(...)`` would scan every decision of the send for each batch);
    on SQLite ``IN`` lists, which SQLite probes the index with one by one.
    """
    d = decisions_table
    columns = [d.c.id, d.c.version, d.c.recipient_id, d.c.variants, d.c.propensity, d.c.policy_version,
               d.c.reason, d.c.explored, d.c.created_at, d.c.send_at]
    unique = sorted(set(recipient_ids))
    in_send = (d.c.experiment_key == key, d.c.send_id == send_id)
    if conn.dialect.name == "postgresql":
        ids = bindparam("ids", unique, type_=postgresql.ARRAY(d.c.recipient_id.type))
        wanted = select(func.unnest(ids).label("rid")).subquery("wanted")
        query = select(*columns).join_from(wanted, d, d.c.recipient_id == wanted.c.rid).where(*in_send)
        return {row.recipient_id: row for row in conn.execute(query)}
    out: dict[str, Any] = {}
    for chunk in chunks(unique):
        query = select(*columns).where(*in_send, d.c.recipient_id.in_(chunk))
        out.update({row.recipient_id: row for row in conn.execute(query)})
    return out


def answer_with_stored(
    decisions: Sequence[Decision],
    contexts: Sequence[Mapping[str, Any]],
    stored: Mapping[str, Any],
    compiled_at: Callable[[int], CompiledExperiment],
) -> list[Decision]:
    """Each decision replaced by the stored one of its recipient when that one was made by another call
    (or by an earlier row of the same batch): its id, variants, propensity, policy version, reason and
    time, with the content rendered for this call's context (``compiled_at(version)`` gives the spec
    the stored decision was made under).

    Raises
    ------
    RuntimeError
        A recipient has no stored decision: its row was neither written nor found (a fault, never input).
    """
    out: list[Decision] = []
    rebuilt: dict[str, Decision] = {}
    version_to_compiled: dict[int, CompiledExperiment] = {}
    for decision, context in zip(decisions, contexts, strict=True):
        row = stored.get(decision.recipient_id)
        if row is None:
            raise RuntimeError(f"no stored decision for recipient {decision.recipient_id!r} of the send")
        if row.id == decision.decision_id:
            out.append(decision)
            continue
        original = rebuilt.get(decision.recipient_id)
        if original is None:
            compiled = version_to_compiled.get(row.version)
            if compiled is None:
                compiled = version_to_compiled[row.version] = compiled_at(row.version)
            original = rebuilt[decision.recipient_id] = _stored_decision(decision, row, context, compiled)
        out.append(original)
    return out


def _stored_decision(
    decision: Decision, row: Any, context: Mapping[str, Any], compiled: CompiledExperiment
) -> Decision:
    variants: dict[str, VariantChoice] = {}
    notes: dict[str, str] = {}
    for slot, variant_id in row.variants.items():
        if slot == SEND_TIME_SLOT and compiled.send_time is not None:
            continue
        position = compiled.slot_ids[slot].index(variant_id)
        text, note = slot_content(compiled, slot, position, context)
        variants[slot] = VariantChoice(variant_id, text)
        if note is not None:
            notes[slot] = note
    return replace(
        decision,
        decision_id=row.id,
        variants=variants,
        propensity=float(row.propensity),
        policy_version=row.policy_version,
        reason=row.reason,
        explored=bool(row.explored),
        created_at=from_db_time(row.created_at),
        content_notes=notes,
        send_at=None if row.send_at is None else from_db_time(row.send_at),
    )
