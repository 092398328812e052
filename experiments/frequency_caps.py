"""Applying an experiment's frequency cap to the decisions of a batch before they are logged.

Each recipient who would be sent to is counted in the cap's scope (:func:`experiments.store.frequency.
claim_sends`, at the decision's ``send_at``, else now); a recipient over the cap is logged as a fallback
with the reason ``frequency_cap``, no variants and no send time, and answered so. A recipient whose
decision the send already holds (a retried ``send_id``) is not counted again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from experiments.compiled import CompiledExperiment
from experiments.frequency import FREQUENCY_CAP, cap_scope
from experiments.models import Decision
from experiments.store import DECISION_COLUMNS, DecisionEncoding, to_db_time
from experiments.store.frequency import claim_sends, release_sends

_AT = {name: DECISION_COLUMNS.index(name) for name in DECISION_COLUMNS}


class CapClaim:
    """The sends a batch recorded against its cap, so that they can be taken back if the batch's
    decisions are not stored (:meth:`release`)."""

    def __init__(self, engine: Engine, scope: str, recipient_ids: list[str], times: list[datetime]) -> None:
        self._engine, self._scope, self._ids, self._times = engine, scope, recipient_ids, times

    def release(self) -> None:
        release_sends(self._engine, self._scope, self._ids, self._times)


def apply_frequency_cap(
    engine: Engine,
    compiled: CompiledExperiment,
    rows: list[tuple[Any, ...]],
    decisions: list[Decision],
    encoding: DecisionEncoding,
    now: datetime,
    counted_already: Collection[str] = (),
    once: bool = False,
) -> tuple[list[tuple[Any, ...]], list[Decision], CapClaim | None]:
    """The rows and decisions with every recipient over the spec's ``frequency`` cap turned into a
    ``frequency_cap`` fallback, and the sends recorded for the others (None without a cap).

    ``counted_already``: recipients not to count (their decision for this send is stored already);
    ``once``: a recipient named twice is counted once (a send logs one decision per recipient).
    """
    spec = compiled.spec
    if spec.frequency is None:
        return rows, decisions, None
    scope = cap_scope(spec.key, spec.channel, spec.program)
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
    allowed = claim_sends(engine, scope, spec.frequency, ids, times)
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
    kept = [(rid, t) for rid, t, ok in zip(ids, times, allowed, strict=True) if ok]
    return rows, decisions, CapClaim(engine, scope, [k[0] for k in kept], [k[1] for k in kept])


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
