"""Outcome recording: store outcome events once each, attributed to their decisions (or kept aside as
orphans), with the change they make to the rollups (:mod:`experiments.store.rollups`), committed in one
transaction before the answer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from experiments.models import OutcomeCounts, OutcomeEvent
from experiments.recipients import ERASED_PREFIX
from experiments.service.core import ServiceCore
from experiments.service.inputs import check_outcome_events
from experiments.spec import Reward
from experiments.store import (
    existing_keys,
    insert_ignoring_duplicates,
    orphans_table,
    outcomes_table,
    to_db_time,
)
from experiments.store.breakdown_rollups import (
    ARM,
    CREATED_AT,
    DAY,
    EXPERIMENT_KEY,
    FALLBACK,
    REASON,
    RECIPIENT_ID,
    SEND_AT,
    VERSION,
)
from experiments.store.rollups import OutcomeRollup, begin_write
from experiments.store.writes import write_transaction

log = logging.getLogger(__name__)


class OutcomeRecording:
    """Record outcome events."""

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    def record(self, events: Sequence[OutcomeEvent]) -> OutcomeCounts:
        """Store outcome events; idempotent on ``event_id``, committed before returning.

        Events of unknown decisions go to the orphan table. Events of a decision whose recipient was
        erased are not stored (counted as ``erased``): they would store what the recipient asked to be
        forgotten, and a repeat of an event erased before (its id now a token) would count twice.
        Events timed before their decision or later than the reward window after it are stored but not
        attributed (``attributed`` false);
        machine-made ones (flagged, or a user agent the spec lists) are stored with ``machine`` true, and
        rewards, learning and results leave them out (results include them when asked).
        """
        check_outcome_events(events)
        unique: dict[str, OutcomeEvent] = {}
        for e in events:
            unique.setdefault(e.event_id, e)
        now = self._core.now()
        repo = self._core.repo
        known, orphans = [], []
        erased = 0
        with write_transaction(self._core.engine) as conn:
            begin_write(conn)  # SQLite: what the rollups read below cannot change before the write
            rollup = OutcomeRollup(lambda key, version: repo.compiled(key, version, conn=conn))
            id_to_decision = rollup.read(conn, {e.decision_id for e in unique.values()})
            # per spec version: its reward definition's machine test and attribution window
            rules: dict[tuple[str, int], tuple[Reward, timedelta]] = {}
            for e in unique.values():
                time = to_db_time(e.timestamp) if e.timestamp is not None else now
                value = None if e.value is None else float(e.value)
                d = id_to_decision.get(e.decision_id)
                if d is None:
                    orphans.append({"event_id": e.event_id, "decision_id": e.decision_id, "type": e.type,
                                    "value": value, "time": time, "received_at": now,
                                    "machine": bool(e.machine)})
                    continue
                if d[RECIPIENT_ID].startswith(ERASED_PREFIX):
                    erased += 1
                    continue
                version = (d[EXPERIMENT_KEY], d[VERSION])
                rule = rules.get(version)
                if rule is None:
                    reward = repo.compiled(*version, conn=conn).spec.reward
                    rule = rules[version] = (reward, timedelta(hours=reward.window_hours))
                reward, window = rule
                # the attribution window runs from the send (``send_at``, else the decision) to
                # ``window_hours`` after it; an event counts from the decision on (a send may go out
                # early). An event without a timestamp is stamped on receipt, after its decision was
                # logged, whatever the skew between the clocks of the workers that logged the two.
                # Machine events are left out by the queries (``machine`` true), not here.
                created_at = d[CREATED_AT]
                after = e.timestamp is None or time >= created_at
                known.append(
                    {
                        "event_id": e.event_id,
                        "decision_id": e.decision_id,
                        "type": e.type,
                        "value": value,
                        "time": time,
                        "received_at": now,
                        "machine": reward.is_machine(bool(e.machine), e.user_agent),
                        "experiment_key": d[EXPERIMENT_KEY],
                        "version": d[VERSION],
                        "attributed": after and time - (d[SEND_AT] or created_at) <= window,
                        "arm": d[ARM],
                        "fallback": d[FALLBACK],
                        "reason": d[REASON],
                        "day": d[DAY],
                    }
                )
            rollup.before(conn, known)
            accepted = insert_ignoring_duplicates(conn, outcomes_table, known, "event_id")
            rollup.after(conn, accepted)
            if orphans:  # an event id already accepted for a decision is a duplicate, not a new orphan
                taken = existing_keys(conn, outcomes_table, "event_id", [o["event_id"] for o in orphans])
                orphans = [o for o in orphans if o["event_id"] not in taken]
            kept = insert_ignoring_duplicates(conn, orphans_table, orphans, "event_id")
        duplicates = len(events) - len(accepted) - len(kept) - erased
        return OutcomeCounts(len(accepted), duplicates, len(kept), erased)
