"""Assignment: choose and log the variants of one recipient or a whole send, check a send before it
is split into batches, and preview what recipients would get (nothing logged)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from bandit import PolicyError
from experiments.assignment import CompiledExperiment, assign, explain, render_batch, screen
from experiments.consent import consent_flags, withhold_contexts
from experiments.decision_rows import decision_rows
from experiments.errors import AssignmentError, Conflict
from experiments.feature_context import FeatureContexts
from experiments.frequency_caps import log_capped
from experiments.group_commit import GroupCommit
from experiments.models import Decision, Preview
from experiments.preview import PreviewReport, coverage, describe_recipients
from experiments.send_time import check_send_date, decided_send_times
from experiments.sends import (
    answer_with_stored,
    check_send_id,
    first_of_each_recipient,
    send_times,
    stored_sends,
    write_decisions,
)
from experiments.service.core import ServiceCore
from experiments.service.inputs import Recipients, check_recipients, stored_contexts
from experiments.store import decision_encoding, to_db_time
from experiments.store.repository import AssignState
from experiments.store.writes import pipelined_transaction

log = logging.getLogger(__name__)


def preview_seed(key: str, recipient_ids: Sequence[str]) -> int:
    """The seed of a preview's own generator: a hash of the experiment key and the recipient ids."""
    digest = hashlib.sha256("\x1f".join(["preview", key, *recipient_ids]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Decided:
    """What choosing for a list of recipients gives: the compiled spec and the experiment's state it
    was made under, the rows to store (:data:`experiments.store.DECISION_COLUMNS`, encoded) and the
    decisions to answer with."""

    compiled: CompiledExperiment
    state: AssignState
    rows: list[tuple]
    decisions: list[Decision]
    #: the recipients as decided on (contexts filled from the feature table) and their screening
    recipients: Recipients = ()
    screening: list[str | None] | None = None


class Assigner:
    """Assign recipients (one, or a whole send) and preview assignments."""

    def __init__(self, core: ServiceCore) -> None:
        self._core = core
        self._encoding = decision_encoding(core.engine.dialect)
        # SQLite has one writer at a time: concurrent requests share transactions; PostgreSQL takes
        # concurrent commits and groups their flushes itself, and gets each request's writes at once
        self._postgres = core.engine.dialect.name == "postgresql"
        self._decision_writer = GroupCommit(
            core.engine, self._write_decisions, grouped=not self._postgres,
            transaction=pipelined_transaction if self._postgres else None,
        )
        self.features = FeatureContexts()

    def _write_decisions(self, conn: Connection, rows: list[tuple]) -> None:
        """:func:`experiments.sends.write_decisions`, the rollups computed with the compiled specs the
        repository keeps (those the decisions were made with: the spec text is not read again)."""
        write_decisions(conn, rows, lambda on, key, version: self._core.repo.compiled(key, version, conn=on))

    def check_recipients(self, key: str, recipients: Recipients) -> None:
        """Raise what :meth:`assign_batch` would raise for this input, and store nothing.

        The pairs and their ids, the experiment (:class:`NotFound`, or :class:`Conflict` when archived)
        and the contexts (no NUL in a string; stored attributes JSON values that every database keeps),
        with the same :class:`InvalidInput` (``recipients[i]...``). A send split into several batches is
        checked whole first, so that a bad recipient in a later batch does not leave the earlier ones
        assigned.
        """
        check_recipients(recipients)
        with self._core.engine.connect() as conn:
            state, compiled = self._core.repo.assign_state(conn, key)
        if state.status == "archived":
            raise Conflict(f"experiment {key!r} is archived: no more assignments")
        stored_contexts(compiled, [context for _, context in recipients])

    def decide(
        self,
        conn: Connection,
        key: str,
        recipients: Recipients,
        rng: np.random.Generator | None = None,
        single: bool = False,
        send_id: str | None = None,
        send_at: Any = None,
        send_date: Any = None,
    ) -> Decided:
        """Choose for ``recipients`` (see :class:`Decided`).

        ``rng`` draws instead of the service's generator (a preview's own, so that it leaves the next
        assignments' draws unchanged); ``single``: the call names one recipient (problems are reported
        at ``recipient_id`` and ``context``, not under ``recipients[0]``). ``send_id`` and ``send_at``
        are stored with each row, and ``send_date`` read, as in :meth:`assign`.

        Raises
        ------
        AssignmentError
            The design gave a propensity that is not a probability (a fault of the service, not of the
            input); no row is handed on, so no other call's transaction can fail for it.
        """
        check_recipients(recipients, single)
        times = send_times(send_at, len(recipients), single)
        state, compiled = self._core.repo.assign_state(conn, key)
        local_date = check_send_date(send_date, compiled.send_time is not None)
        if state.status == "archived":
            raise Conflict(f"experiment {key!r} is archived: no more assignments")
        filled = self.features.fill(conn, compiled, recipients)  # context_from: features
        recipients = filled.recipients
        ids = [r[0] for r in recipients]
        contexts = [r[1] for r in recipients]
        stored = stored_contexts(compiled, contexts, single)
        rendered, groups = render_batch(compiled, contexts) if compiled.has_templates else (None, [])
        reasons = filled.screen(screen(compiled, ids, contexts, paused=state.status == "paused"))
        screening = list(reasons)
        consented = consent_flags(compiled.spec.consent, contexts)
        policy_version, policy = None, None
        if compiled.adaptive and any(r is None for r in reasons):
            try:
                current = self._core.repo.restored_policy(
                    conn, key, compiled.version, state.policy_version, state.policy_spec_version
                )
            except (PolicyError, ValueError) as exc:
                log.warning("experiment %s: cannot load the policy: %s", key, exc)
                current = None
            if current is not None:
                policy_version, policy = current
        with self._core.draw_lock:
            result = assign(
                compiled,
                ids,
                withhold_contexts(contexts, consented),  # no rule or policy reads a context without consent
                reasons,
                policy,
                rng if rng is not None else self._core.rng,
                apprentice=state.apprentice,
                rendered=rendered,
            )
        sound = (result.propensities >= 0.0) & (result.propensities <= 1.0 + 1e-9)  # NaN fails both
        if not sound.all():
            first, n_bad = float(result.propensities[np.argmin(sound)]), int((~sound).sum())
            raise AssignmentError(
                f"experiment {key!r}: the design gave {n_bad} recipient{'s' if n_bad != 1 else ''} a "
                f"propensity outside [0, 1] (such as {first}); nothing was logged"
            )
        now = self._core.clock()
        sent = decided_send_times(compiled, contexts, result, times, local_date, now)
        rows, decisions = decision_rows(
            compiled, recipients, result, policy_version, stored, consented, rendered, groups,
            to_db_time(now), self._encoding, send_id, sent.times, sent.hour_propensities, sent.notes,
            filled.version,
        )
        return Decided(compiled, state, rows, decisions, recipients, screening)

    def assign(
        self,
        key: str,
        recipients: Recipients,
        single: bool = False,
        *,
        send_id: str | None = None,
        send_at: datetime | Sequence[datetime | None] | None = None,
        send_date: date | None = None,
    ) -> list[Decision]:
        """Choose and log the variants of ``recipients``; return once the decisions are committed.

        ``send_at`` is when the email goes out (one time for the send, or one per recipient, None for
        "now"; naive times are UTC): stored with each decision, the reward window and the learning
        delay run from it instead of from the decision. An experiment with ``send_time`` chooses it
        (:mod:`experiments.send_time`): ``send_date`` is then the recipients' local date (default: today
        in each one's zone, or tomorrow when the chosen hour has passed; a given date already past is
        kept, with a note).

        With a ``send_id`` (the send the decisions belong to) each recipient is logged once per send:
        a recipient already logged for it, by this call or any earlier one on any worker, gets the stored
        decision back and nothing new is logged (:mod:`experiments.sends`).

        The state of the experiment is read in one query; the decisions are written by
        :class:`experiments.group_commit.GroupCommit` (on SQLite concurrent calls share one transaction;
        on PostgreSQL each commits its own) and each call returns only after the transaction holding its
        decisions committed (:class:`~experiments.group_commit.GroupCommitError` when it did not: then
        none of them is stored). An experiment with a ``frequency`` cap writes its decisions and their
        counts in one transaction of their own instead (:mod:`experiments.frequency_caps`). A bad input
        is reported at ``recipients[i].<field>`` (at ``recipient_id`` or ``context.<name>`` when
        ``single``).
        """
        check_send_id(send_id)
        with self._core.engine.connect() as conn:
            if self._postgres:
                # PostgreSQL: the reads need no transaction (no BEGIN round trip); the decisions and
                # their rollups commit in one, sent with its writes (pipelined_transaction)
                conn.execution_options(isolation_level="AUTOCOMMIT")
            decided = self.decide(
                conn, key, recipients, single=single, send_id=send_id, send_at=send_at, send_date=send_date
            )
            rows, decisions = decided.rows, decided.decisions
            if decided.compiled.spec.frequency is not None:
                # the counts and the decisions in one transaction of their own (not a group's)
                decisions = log_capped(
                    self._core.engine, decided.compiled, rows, decisions, self._encoding, self._core.clock(),
                    send_id, write_decisions,
                )
            else:
                self._decision_writer.submit(rows if send_id is None else first_of_each_recipient(rows), conn)
            if send_id is None:
                return decisions
            stored = stored_sends(conn, key, send_id, [d.recipient_id for d in decisions])
            return answer_with_stored(
                decisions,
                [context for _, context in recipients],
                stored,
                lambda version: self._core.repo.compiled(key, version, conn=conn),
            )

    def preview(self, key: str, recipients: Recipients) -> list[Preview]:
        """What each recipient would get and why (rendered); nothing is logged.

        Each preview holds the decision a draw would give now, the explanation lines, and the detail:
        the rules that fired (or why they were not evaluated), the variants offered per slot (and why
        the others are not), their rendered content and the probabilities the design would draw with.
        The draw uses a generator of the preview's own, seeded by the experiment key and the recipient
        ids (:func:`preview_seed`): the same request shows the same draw, and the generator that
        assignments draw with is not touched.
        """
        check_recipients(recipients)
        ids = [r[0] for r in recipients]
        rng = np.random.default_rng(preview_seed(key, ids))
        with self._core.engine.connect() as conn:
            decided = self.decide(conn, key, recipients, rng=rng)
            compiled, state = decided.compiled, decided.state
            recipients, screening = decided.recipients, decided.screening or []
            contexts = [r[1] for r in recipients]
            policy = None
            if compiled.adaptive:
                try:
                    current = self._core.repo.current_policy(conn, key, compiled.version)
                except (PolicyError, ValueError):
                    current = None
                policy = None if current is None else current[1]
        # a randomized recipient without consent: no rule or policy reads their context
        decided_on = (
            withhold_contexts(contexts, consent_flags(compiled.spec.consent, contexts))
            if compiled.spec.consent.without_consent == "randomize" else contexts
        )
        with self._core.draw_lock:
            details = describe_recipients(
                compiled, ids, decided_on, screening, policy, apprentice=state.apprentice
            )
        previews = []
        for d, detail, reason, (rid, context) in zip(
            decided.decisions, details, screening, recipients, strict=True
        ):
            lines = explain(compiled, rid, context, screening=reason) + [f"reason: {d.reason}"]
            lines += [f"content {slot}: {note}" for slot, note in d.content_notes.items()]
            previews.append(Preview(d, lines, detail))
        return previews

    def preview_report(self, key: str, recipients: Recipients) -> PreviewReport:
        """:meth:`preview` for a sample, with its coverage: rule combinations no sample recipient
        reached and the recipients that only ever get the fallback. Nothing is logged."""
        previews = self.preview(key, recipients)
        with self._core.engine.connect() as conn:
            _, compiled = self._core.repo.current(conn, key)
        details = [p.detail for p in previews if p.detail is not None]
        return PreviewReport(previews, coverage(compiled, details))


