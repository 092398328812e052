"""One recipient's data: everything stored about them, and its erasure.

A recipient appears in the store only through their decisions (``decisions.recipient_id`` and the
context stored with each), the outcomes of those decisions (by decision id) and the times of their recent
sends kept for frequency caps (``frequency_counts``). Erasure, in one transaction: every context of
theirs is dropped, their id is replaced by an irreversible token (a keyed hash with the server's secret,
the same token for each of their rows, so counts per unit hold), the event ids of their outcomes
likewise, and their send times deleted. Decisions and outcomes stay as rows, so every count, arm, reward
and result is unchanged. Hash designs stay sticky for a recipient who returns: the hash reads the id
sent with the assignment, never a stored row. The erasure is logged with its counts, never the id.

The feature table (``sendlab features refresh``) holds a row of attributes per recipient and version:
shown with the decisions, and deleted by the erasure (a later refresh from a history that still holds
the recipient stores them again). ``ExperimentService.erase_recipient`` (the HTTP route) also forgets the
rows its process keeps in memory; another process (a worker of the service, ``sendlab recipients erase``
while the service runs) may answer from the rows it keeps until they are evicted or a new version is
stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, null, select, update
from sqlalchemy.engine import Engine

from experiments.errors import NUL_REASON, InvalidInput
from experiments.limits import MAX_ID_LENGTH
from experiments.store import decisions_table, existing_keys, from_db_time, outcomes_table
from experiments.store.context_drops import drop_contexts, lock_for_drop
from experiments.store.tables import features_table, frequency_table

log = logging.getLogger(__name__)

#: The prefix of an erased recipient's token (and of an erased event id).
ERASED_PREFIX = "erased-"
#: The shortest accepted erasure secret, in bytes.
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class RecipientOutcome:
    """One outcome of a recipient's decision."""

    event_id: str
    type: str
    value: float | None
    time: datetime


@dataclass(frozen=True)
class RecipientDecision:
    """One decision about a recipient, with the context stored with it and its outcomes."""

    decision_id: str
    experiment: str
    version: int
    variants: dict[str, str]
    propensity: float
    reason: str
    context: dict[str, Any] | None
    created_at: datetime
    outcomes: list[RecipientOutcome]
    #: ``context_from: features``: the feature version the context was filled from (else None).
    feature_version: int | None = None


@dataclass(frozen=True)
class RecipientFeatureRow:
    """The recipient's attributes in one version of the feature table."""

    version: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class RecipientData:
    """Everything stored about one recipient (empty ``decisions`` and ``features``: nothing is)."""

    recipient_id: str
    decisions: list[RecipientDecision]
    features: list[RecipientFeatureRow]


@dataclass(frozen=True)
class Erasure:
    """What an erasure changed: the decisions whose id and context went, their outcomes kept, and the
    rows of the feature table deleted."""

    decisions: int
    outcomes: int
    features: int


def erasure_token(secret: bytes, value: str) -> str:
    """The irreversible token that replaces ``value``: an HMAC-SHA256 with the server's secret.

    Examples
    --------
    >>> erasure_token(b"0123456789abcdef", "ana")[:7], len(erasure_token(b"0123456789abcdef", "ana"))
    ('erased-', 39)
    """
    return ERASED_PREFIX + hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def _check_id(recipient_id: str) -> None:
    if not recipient_id or len(recipient_id) > MAX_ID_LENGTH:
        raise InvalidInput("recipient_id", f"must be a non-empty string of at most {MAX_ID_LENGTH} chars")
    if "\x00" in recipient_id:
        raise InvalidInput("recipient_id", NUL_REASON)


def read_recipient(engine: Engine, recipient_id: str) -> RecipientData:
    """Everything stored about ``recipient_id``: their decisions, contexts and outcomes, oldest first."""
    _check_id(recipient_id)
    d, o = decisions_table.c, outcomes_table.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(d.id, d.experiment_key, d.version, d.variants, d.propensity, d.reason, d.context,
                   d.created_at, d.feature_version)
            .where(d.recipient_id == recipient_id)
            .order_by(d.created_at, d.id)
        ).all()
        ids = [r.id for r in rows]
        outcomes = conn.execute(
            select(o.decision_id, o.event_id, o.type, o.value, o.time)
            .where(o.decision_id.in_(ids))
            .order_by(o.time, o.id)
        ).all() if ids else []
        f = features_table.c
        features = [RecipientFeatureRow(int(r.version), dict(r.attributes)) for r in conn.execute(
            select(f.version, f.attributes).where(f.recipient_id == recipient_id).order_by(f.version))]
    decision_to_outcomes: dict[str, list[RecipientOutcome]] = {}
    for out in outcomes:
        decision_to_outcomes.setdefault(out.decision_id, []).append(
            RecipientOutcome(out.event_id, out.type, out.value, from_db_time(out.time))
        )
    return RecipientData(recipient_id, [
        RecipientDecision(
            decision_id=r.id, experiment=r.experiment_key, version=r.version, variants=dict(r.variants),
            propensity=r.propensity, reason=r.reason, context=r.context,
            created_at=from_db_time(r.created_at),
            outcomes=decision_to_outcomes.get(r.id, []), feature_version=r.feature_version,
        )
        for r in rows
    ], features)


def erase_recipient(engine: Engine, recipient_id: str, secret: bytes) -> Erasure:
    """Erase ``recipient_id`` (see the module): contexts dropped, id and event ids tokenised.

    Raises
    ------
    InvalidInput
        A bad id, or a secret shorter than :data:`MIN_SECRET_BYTES`.
    """
    _check_id(recipient_id)
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidInput("secret", f"the erasure secret must hold at least {MIN_SECRET_BYTES} bytes")
    d, o = decisions_table.c, outcomes_table.c
    with engine.begin() as conn:
        lock_for_drop(conn)
        ids = conn.execute(select(d.id).where(d.recipient_id == recipient_id)).scalars().all()
        events = conn.execute(
            select(o.id, o.event_id).where(o.decision_id.in_(ids))
        ).all() if ids else []
        tokens = {row.id: erasure_token(secret, row.event_id) for row in events}
        taken = existing_keys(conn, outcomes_table, "event_id", sorted(set(tokens.values())))
        for row in events:
            # an event id erased before and posted again for a later decision (a client that reuses ids)
            # would take the same token: that copy's token also reads its row, so both stay, each once
            token = tokens[row.id]
            if token in taken:
                token = erasure_token(secret, f"{row.event_id}\x1f{row.id}")
            conn.execute(update(outcomes_table).where(o.id == row.id).values(event_id=token))
        if ids:  # the contexts go with their breakdown rollups moved, then the id
            drop_contexts(conn, ids)
            token = erasure_token(secret, recipient_id)
            # a send that holds an erased decision of theirs already (the recipient was erased, then the
            # same send id was assigned again: their repeat could not be recognised) keeps one decision
            # per send and recipient: the later one's send id is cleared (send ids only ever recognise
            # repeats, which a token can no longer match; every count stays)
            for experiment_key, send_id in conn.execute(
                select(d.experiment_key, d.send_id).where(d.recipient_id == token, d.send_id.is_not(None))
            ).all():
                conn.execute(update(decisions_table).where(
                    d.recipient_id == recipient_id, d.experiment_key == experiment_key, d.send_id == send_id,
                ).values(send_id=null()))
            conn.execute(
                update(decisions_table).where(d.recipient_id == recipient_id)
                .values(recipient_id=token, context=null())
            )
        # the recent send times of frequency caps go too (the decisions keep the counts)
        conn.execute(delete(frequency_table).where(frequency_table.c.recipient_id == recipient_id))
        features = conn.execute(
            delete(features_table).where(features_table.c.recipient_id == recipient_id)
        ).rowcount
    log.info("erased a recipient: %d decisions, %d outcomes kept as counts, %d feature rows deleted",
             len(ids), len(events), features)
    return Erasure(decisions=len(ids), outcomes=len(events), features=features)
