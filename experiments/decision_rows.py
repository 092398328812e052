"""The rows a batch of decisions is logged as, and the decisions answered with: one pass over the
assignment's result that binds each value once (per arm, per rendering group) for the database."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from experiments.assignment import Assignment, CompiledExperiment, slot_content
from experiments.content import Rendering
from experiments.decision_ids import new_decision_ids
from experiments.models import FALLBACK_REASONS, Decision, VariantChoice
from experiments.send_time import SEND_TIME_SLOT
from experiments.store import DecisionEncoding, from_db_time


def plain_choices(compiled: CompiledExperiment) -> list[list[VariantChoice]]:
    """Per slot and position, the choice as shown when the variant's content is plain text."""
    return [
        [VariantChoice(v.id, v.content) for v in compiled.variants_of(slot)]
        for slot in compiled.slot_names
    ]


def decision_rows(
    compiled: CompiledExperiment,
    recipients: Sequence[tuple[str, Mapping[str, Any]]],
    result: Assignment,
    policy_version: int | None,
    stored_contexts: Sequence[Mapping[str, Any]] | None,
    consented: Sequence[bool],
    rendered: Sequence[Sequence[Mapping[int, Rendering]]] | None,
    groups: Sequence[int],
    db_now: datetime,
    encoding: DecisionEncoding,
    send_id: str | None = None,
    sent_at: Sequence[datetime | None] | None = None,
    hour_propensities: Sequence[float | None] | None = None,
    send_time_notes: Sequence[str | None] | None = None,
    feature_version: int | None = None,
) -> tuple[list[tuple[Any, ...]], list[Decision]]:
    """The rows to store (:data:`experiments.store.DECISION_COLUMNS`, bound by ``encoding``) and the
    decisions of ``recipients``, made at ``db_now`` (naive UTC) by ``result`` under ``policy_version``.

    ``stored_contexts`` are the context attributes each decision keeps (None: the spec keeps none);
    a recipient without consent (``consented[i]`` false, :func:`experiments.consent.consent_flags`)
    keeps no context at all, whatever their reason;
    ``rendered`` and ``groups`` come from :func:`experiments.assignment.render_batch` (None and empty
    when no variant is a template). ``send_id`` is the send every row belongs to and ``sent_at`` each
    recipient's send time, naive UTC (None: the decisions belong to no send and go out at once;
    :mod:`experiments.sends`). With a ``send_time`` choice (:mod:`experiments.send_time`),
    ``hour_propensities`` are the chosen hours' own probabilities and ``send_time_notes`` the notes on
    each send time (:attr:`experiments.send_time.SendTimes.notes`), answered in ``content_notes``; the
    choice is stored with the variants and answered as ``send_at``, not among the variants.
    ``feature_version`` is the stored feature version the contexts were filled from (``context_from:
    features``; :mod:`experiments.feature_context`).
    """
    key = compiled.spec.key
    created_at = from_db_time(db_now)
    bound_time, bound_day = encoding.time(db_now), encoding.day(db_now.date())
    true, false = encoding.flag(True), encoding.flag(False)
    no_context = encoding.json(None)
    no_attributes = encoding.json({})
    empty_context = no_attributes if stored_contexts is None else None
    arm_to_variants: dict[int, tuple[dict[str, str], Any]] = {}
    plain = plain_choices(compiled)
    choices: dict[tuple[int, int, str], VariantChoice] = {}
    arm_group_to_shown: dict[tuple[int, int], tuple[dict[str, VariantChoice], dict[str, str]]] = {}
    decision_ids = new_decision_ids(len(recipients), db_now)
    version, adaptive = compiled.version, compiled.adaptive
    arms = result.arms.tolist()
    propensities = result.propensities.tolist()
    explored = result.explored.tolist()
    agreement = [None if math.isnan(a) else a for a in result.agreement.tolist()]
    positions = result.positions.tolist()
    timed = compiled.send_time is not None
    bound_sent = [None] * len(recipients) if sent_at is None else [
        None if t is None else encoding.time(t) for t in sent_at
    ]
    rows, decisions = [], []
    for i, (rid, context) in enumerate(recipients):
        reason = result.reasons[i]
        fallback = reason in FALLBACK_REASONS
        arm = arms[i]
        known = arm_to_variants.get(arm)
        if known is None:
            chosen = {
                s: compiled.slot_ids[s][p] for s, p in zip(compiled.slot_names, positions[i], strict=True)
            }
            known = arm_to_variants[arm] = (chosen, encoding.json(chosen))
        if not consented[i]:
            bound_context = no_context
        elif empty_context is not None:
            bound_context = empty_context
        else:
            stored_context = stored_contexts[i]  # type: ignore[index]  # not None here
            bound_context = encoding.json(stored_context) if stored_context else no_attributes
        decision_id = decision_ids[i]
        version_used = None if fallback or not adaptive else policy_version
        rows.append(
            (
                decision_id,
                key,
                version,
                rid,
                known[1],
                arm,
                propensities[i],
                version_used,
                true if explored[i] else false,
                true if fallback else false,
                reason,
                bound_context,
                bound_time,
                bound_day,
                None,
                agreement[i],
                send_id,
                bound_sent[i],
                None,
                None if hour_propensities is None else hour_propensities[i],
                feature_version,
            )
        )
        if rendered is None:
            variants = {s: plain[k][positions[i][k]] for k, s in enumerate(compiled.slot_names)}
            notes: dict[str, str] = {}
        else:  # the same arm and rendering group: the same content and notes
            shown = arm_group_to_shown.get((arm, groups[i]))
            if shown is None:
                shown = arm_group_to_shown[(arm, groups[i])] = rendered_choices(
                    compiled, positions[i], context, rendered[i], plain, choices
                )
            variants, notes = dict(shown[0]), dict(shown[1])
        if timed:
            del variants[SEND_TIME_SLOT]
            if send_time_notes is not None and send_time_notes[i] is not None:
                notes[SEND_TIME_SLOT] = str(send_time_notes[i])
        decisions.append(
            Decision(
                decision_id=decision_id,
                experiment=key,
                recipient_id=rid,
                variants=variants,
                propensity=propensities[i],
                policy_version=version_used,
                reason=reason,
                explored=explored[i],
                created_at=created_at,
                content_notes=notes,
                send_at=None if sent_at is None or sent_at[i] is None else from_db_time(sent_at[i]),
                feature_version=feature_version,
            )
        )
    return rows, decisions


def rendered_choices(
    compiled: CompiledExperiment,
    positions: Sequence[int],
    context: Mapping[str, Any],
    rendered: Sequence[Mapping[int, Rendering]],
    plain: Sequence[Sequence[VariantChoice]],
    choices: dict[tuple[int, int, str], VariantChoice],
) -> tuple[dict[str, VariantChoice], dict[str, str]]:
    """The rendered content per slot and, per slot where content fell back, a note saying how.

    ``rendered`` is :func:`experiments.assignment.render_templated` of this recipient; ``plain`` the
    choice per slot and position for variants that are plain text; ``choices`` the rendered choices
    made so far in this batch (recipients who see the same text share one).
    """
    variants, notes = {}, {}
    for s, slot in enumerate(compiled.slot_names):
        p = positions[s]
        by_position = rendered[s]
        if not by_position:  # no template in this slot
            variants[slot] = plain[s][p]
            continue
        own = by_position.get(p)
        note = None
        if own is None:
            variants[slot] = plain[s][p]
        elif own.text is not None:
            choice = choices.get((s, p, own.text))
            if choice is None:
                choice = choices[(s, p, own.text)] = VariantChoice(compiled.slot_ids[slot][p], own.text)
            variants[slot] = choice
        else:
            text, note = slot_content(compiled, slot, p, context, first=own)
            variants[slot] = VariantChoice(compiled.slot_ids[slot][p], text)
        parts = [  # a policy draws among what renders; a hash design draws whatever renders
            f"not offered {compiled.slot_ids[slot][j]!r}: {r.problem}"
            for j, r in by_position.items()
            if r.text is None and j != p and compiled.adaptive
        ]
        if note is not None:
            parts.append(note)
        if parts:
            notes[slot] = "; ".join(parts)
    return variants, notes
