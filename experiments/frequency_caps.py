"""Applying an experiment's frequency cap to the decisions of a batch, in the transaction that logs them.

Each recipient who would be sent to is counted in the cap's scope (:mod:`experiments.store.frequency`, at
the decision's ``send_at``, else now); a recipient over the cap is logged as a fallback with the reason
``frequency_cap``, no variants and no send time, and answered so. The counts and the decisions are
written in one transaction (:func:`log_capped`): a count is stored if and only if its decision is.

The recipients' count rows are locked first (in recipient order on PostgreSQL, the write lock on
SQLite), and only then are the send's stored decisions read: of two calls racing with the same
``send_id``, the second waits for the first to commit, finds its decisions and counts no one again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from experiments.compiled import CompiledExperiment
from experiments.frequency import FREQUENCY_CAP, Frequency, cap_scope
from experiments.group_commit import GroupCommitError
from experiments.models import Decision
from experiments.sends import first_of_each_recipient, stored_sends
from experiments.store import DECISION_COLUMNS, DecisionEncoding, to_db_time
from experiments.store.frequency import add_missing_counts, claim_sends, lock_counts

_AT = {name: DECISION_COLUMNS.index(name) for name in DECISION_COLUMNS}
Rows = list[tuple[Any, ...]]


def log_capped(
    engine: Engine,
    compiled: CompiledExperiment,
    rows: Rows,
    decisions: list[Decision],
    encoding: DecisionEncoding,
    now: datetime,
    send_id: str | None,
    write: Callable[[Connection, Rows], None],
) -> list[Decision]:
    """Count the batch against the spec's ``frequency`` cap, turn each recipient over it into a
    ``frequency_cap`` fallback and ``write`` the rows (one recipient once per ``send_id``), all in one
    transaction; the decisions as logged, once committed.

    Raises
    ------
    GroupCommitError
        The transaction did not commit (the cause is chained): no decision and no count of it is stored.
    """
    spec = compiled.spec
    if spec.frequency is None:
        raise ValueError(f"experiment {spec.key!r} has no frequency cap")
    scope = cap_scope(spec.key, spec.channel, spec.program)
    ids = sorted({d.recipient_id for d in decisions})
    try:
        add_missing_counts(engine, scope, ids)
        with engine.begin() as conn:
            locked = lock_counts(conn, scope, ids)
            logged = () if send_id is None else stored_sends(conn, spec.key, send_id, ids)
            rows, decisions = _apply_cap(
                conn, compiled, spec.frequency, scope, locked, rows, decisions, encoding, now, logged,
                once=send_id is not None,
            )
            write(conn, rows if send_id is None else first_of_each_recipient(rows))
    except Exception as exc:
        raise GroupCommitError(
            f"the transaction did not commit ({exc.__class__.__name__}: {exc}); nothing of it was written"
        ) from exc
    return decisions


def _apply_cap(
    conn: Connection,
    compiled: CompiledExperiment,
    cap: Frequency,
    scope: str,
    locked: dict[str, list[datetime]],
    rows: Rows,
    decisions: list[Decision],
    encoding: DecisionEncoding,
    now: datetime,
    counted_already: Collection[str],
    once: bool,
) -> tuple[Rows, list[Decision]]:
    """The rows and decisions with every recipient over the cap turned into a ``frequency_cap``
    fallback, the sends of the others recorded on ``conn``.

    ``counted_already``: recipients not to count (their decision for this send is stored already);
    ``once``: a recipient named twice is counted once (a send logs one decision per recipient).
    """
    skipped = set(counted_already)
    counted = []
    for i, d in enumerate(decisions):
        if d.recipient_id not in skipped:
            counted.append(i)
            if once:
                skipped.add(d.recipient_id)
    ids = [decisions[i].recipient_id for i in counted]
    times = [
        to_db_time(decisions[i].send_at) if decisions[i].send_at is not None else to_db_time(now)
        for i in counted
    ]
    allowed = claim_sends(conn, scope, cap, locked, ids, times)
    rows, decisions = list(rows), list(decisions)
    capped_row = _capped_values(compiled, encoding)
    for i, ok in zip(counted, allowed, strict=True):
        if not ok:
            row = list(rows[i])
            for name, value in capped_row.items():
                row[_AT[name]] = value
            rows[i] = tuple(row)
            decisions[i] = replace(
                decisions[i], variants={}, propensity=1.0, policy_version=None, reason=FREQUENCY_CAP,
                explored=False, content_notes={}, send_at=None,
            )
    return rows, decisions


def _capped_values(compiled: CompiledExperiment, encoding: DecisionEncoding) -> dict[str, Any]:
    """The columns a capped recipient's row takes: no variants, the default arm, a fallback."""
    return {
        "variants": encoding.json({}),
        "arm": compiled.default_arm,
        "propensity": 1.0,
        "policy_version": None,
        "explored": encoding.flag(False),
        "fallback": encoding.flag(True),
        "reason": FREQUENCY_CAP,
        "agreement": None,
        "send_at": None,
        "send_time_propensity": None,
    }
