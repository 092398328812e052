"""Choosing variants for a batch of recipients: screening, rules, hashing or a policy. Pure, no I/O.

Order of the checks per recipient (the first that applies gives the reason): ``paused``, then
``no_consent`` (no consent as the spec's ``consent`` reads it, see :mod:`experiments.consent`; with
``without_consent: randomize`` such a recipient skips eligibility and is chosen for without context),
``ineligible`` (the eligibility condition does not hold), ``holdout`` (hash below the holdout share).
Those get the default variants with propensity 1. The others get ``assigned`` (A/B, multivariate:
sticky hash per slot, propensity the product of the per-slot probabilities) or ``policy`` (bandit,
contextual: the policy's draw over the combinations the rules allow); a policy that raises gives
everyone in the batch ``policy_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit import Policy
from experiments.arms import allowed_mask, arm_index, combinations
from experiments.compiled import CompiledExperiment, compile_experiment
from experiments.consent import consent_flags, consent_line
from experiments.content import (
    Rendering,
    default_fallback,
    render_leniently,
    render_markup,
    try_render,
)
from experiments.hashing import bucket_variants, in_holdout
from experiments.merge_fields import CONTENT_FALLBACK, with_merge_defaults
from experiments.rules import (
    apply_rules,
    evaluate,
    holds,
)

__all__ = ["Assignment", "CompiledExperiment", "assign", "compile_experiment", "explain", "screen"]

log = logging.getLogger(__name__)


def screen(
    compiled: CompiledExperiment,
    recipient_ids: Sequence[str],
    contexts: Sequence[Mapping[str, Any]],
    paused: bool,
) -> list[str | None]:
    """The fallback reason per recipient, or None for those the design chooses for.

    A recipient without consent gets ``no_consent``, or with ``without_consent: randomize`` goes on to
    the holdout check without eligibility (which reads their attributes); the caller then hands the
    design an empty context for them (:func:`experiments.consent.withhold_contexts`).
    """
    n = len(recipient_ids)
    if paused:
        return ["paused"] * n
    consented = consent_flags(compiled.spec.consent, contexts)
    randomize = compiled.spec.consent.without_consent == "randomize"
    holdout = in_holdout(compiled.spec.hash_salt, recipient_ids, compiled.spec.holdout)
    reasons: list[str | None] = []
    for i, context in enumerate(contexts):
        if not consented[i] and not randomize:
            reasons.append("no_consent")
        elif not consented[i]:
            reasons.append("holdout" if holdout[i] else None)
        elif compiled.eligibility is not None and not holds(compiled.eligibility, context):
            reasons.append("ineligible")
        elif holdout[i]:
            reasons.append("holdout")
        else:
            reasons.append(None)
    return reasons


def render_templated(compiled: CompiledExperiment, context: Mapping[str, Any]) -> list[dict[int, Rendering]]:
    """Per slot (in order), the rendering of each templated variant for one recipient, by position.

    Plain text is never rendered (it always renders as itself), so a slot without templates maps to an
    empty dict. Assignment renders once per recipient and passes the result to the functions below. A
    field the recipient lacks takes its value from the spec's ``merge_defaults``, if declared.
    """
    context = with_merge_defaults(compiled.spec.merge_defaults, context)
    return [
        {j: render_markup(source, context) for j, source in templates}
        for templates in compiled.templates
    ]


def render_batch(
    compiled: CompiledExperiment, contexts: Sequence[Mapping[str, Any]]
) -> tuple[list[list[dict[int, Rendering]]], list[int]]:
    """:func:`render_templated` for every recipient, and each recipient's rendering group.

    Recipients whose template fields (all templates' together) hold the same strings (or are missing)
    share one result, the same list (read only), and one group number: what they are shown can differ
    only by the variant drawn. Anyone else gets a result and a group of their own.
    """
    fields = compiled.template_fields
    key_to_group: dict[tuple[Any, ...], int] = {}
    results: list[list[dict[int, Rendering]]] = []
    groups: list[int] = []
    out: list[list[dict[int, Rendering]]] = []
    for context in contexts:
        key = tuple(map(context.get, fields))
        shareable = True
        for value in key:
            if value is not None and type(value) is not str:
                shareable = False
                break
        group = key_to_group.get(key) if shareable else None
        if group is None:
            group = len(results)
            results.append(render_templated(compiled, context))
            if shareable:
                key_to_group[key] = group
        groups.append(group)
        out.append(results[group])
    return out, groups


def content_problems(
    compiled: CompiledExperiment,
    context: Mapping[str, Any],
    rendered: Sequence[Mapping[int, Rendering]] | None = None,
) -> dict[str, dict[str, str]]:
    """Per slot, the variants whose content does not render for ``context``, with the reason.

    Plain text always renders; a template does unless it outputs a missing field without a default,
    reaches a sandbox limit or renders blank (see :func:`experiments.content.render_template`).
    ``rendered`` is :func:`render_templated` of ``context`` when the caller has it already.
    """
    if rendered is None:
        rendered = render_templated(compiled, context)
    out: dict[str, dict[str, str]] = {}
    for slot, by_position in zip(compiled.slot_names, rendered, strict=True):
        for j, rendering in by_position.items():
            if not rendering.ok:
                out.setdefault(slot, {})[compiled.slot_ids[slot][j]] = str(rendering.problem)
    return out


def renderable_masks(
    compiled: CompiledExperiment,
    contexts: Sequence[Mapping[str, Any]],
    rendered: Sequence[Sequence[Mapping[int, Rendering]]] | None = None,
) -> list[np.ndarray]:
    """Per slot, the variants whose content renders for each recipient: ``(n, m_s)`` boolean arrays.

    ``rendered`` is :func:`render_templated` per recipient when the caller has it already.
    """
    n = len(contexts)
    masks = [np.ones((n, m), dtype=bool) for m in compiled.slot_sizes]
    for i, context in enumerate(contexts):
        per_slot = rendered[i] if rendered is not None else render_templated(compiled, context)
        for s, by_position in enumerate(per_slot):
            for j, rendering in by_position.items():
                if not rendering.ok:
                    masks[s][i, j] = False
    return masks


def hash_probabilities(compiled: CompiledExperiment, masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per slot, each variant's probability under weighted hashing given the allowed ``(n, m_s)``
    masks (as :func:`experiments.hashing.bucket_variants` draws: weight share among the allowed, equal
    shares where every allowed weight is zero)."""
    out = []
    for s, slot in enumerate(compiled.slot_names):
        w = np.where(masks[s], compiled.weights[slot][None, :], 0.0)
        dead = w.sum(axis=1) <= 0
        w[dead] = masks[s][dead].astype(float)
        out.append(w / w.sum(axis=1, keepdims=True))
    return out


def slot_masks(
    compiled: CompiledExperiment,
    contexts: Sequence[Mapping[str, Any]],
    rendered: Sequence[Sequence[Mapping[int, Rendering]]] | None = None,
) -> list[np.ndarray]:
    """Per slot, the variants a policy may choose per recipient: a list of ``(n, m_s)`` boolean arrays.

    A variant is offered when the rules allow it and its content renders for the recipient. When that
    leaves a slot with nothing, the slot falls back to its default variant alone. (Hash designs draw
    among the variants the rules allow, whatever renders: see :func:`assign`.)
    """
    masks = rule_masks(compiled, contexts)
    if not compiled.has_templates:
        return masks
    for s, renderable in enumerate(renderable_masks(compiled, contexts, rendered)):
        offered = masks[s] & renderable
        empty = ~offered.any(axis=1)
        offered[empty] = False
        offered[empty, compiled.default_positions[s]] = True
        masks[s] = offered
    return masks


def slot_content(
    compiled: CompiledExperiment,
    slot: str,
    position: int,
    context: Mapping[str, Any],
    first: Rendering | None = None,
) -> tuple[str, str | None]:
    """The text a recipient sees for variant ``position`` of ``slot``, and a note when it fell back.

    The chain: the variant itself; else the slot's default variant rendered for the recipient; else
    the default rendered without any field (its merge tags' defaults); else the default with the
    recipient's missing fields left out; else the default with every field left out, which the spec
    check makes sure renders (:func:`experiments.content.default_fallback`). A variant id is never
    shown: for a spec stored before that check, the last resort is the first variant of the slot that
    renders without any field, else the empty string, and the note says so.
    """
    variants = compiled.variants_of(slot)
    context = with_merge_defaults(compiled.spec.merge_defaults, context)
    first = try_render(variants[position].content, context)
    if first.ok:
        return str(first.text), None
    default = int(compiled.default_positions[compiled.slot_names.index(slot)])
    attempts: list[tuple[str, Rendering]] = [(variants[position].id, first)]
    for ctx in (context, {}):
        if default == position and ctx is context:
            continue
        rendering = try_render(variants[default].content, ctx)
        if rendering.ok:
            why = "; ".join(f"{vid}: {r.problem}" for vid, r in attempts)
            scope = "" if ctx is context else " without recipient fields"
            return str(rendering.text), f"content fell back to {variants[default].id!r}{scope} ({why})"
        attempts.append((variants[default].id, rendering))
    why = "; ".join(f"{vid}: {r.problem}" for vid, r in attempts)
    lenient = render_leniently(variants[default].content, context)
    if lenient is not None:
        return lenient, f"content fell back to {variants[default].id!r} with missing fields left out ({why})"
    for j in (default, *range(len(variants))):
        text = default_fallback(variants[j].content)
        if text is not None:
            return text, f"content fell back to {variants[j].id!r} without any field ({why})"
    return "", f"content could not be rendered, so it is empty ({why})"


def rule_masks(compiled: CompiledExperiment, contexts: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
    """Per slot, the variants the rules allow per recipient: a list of ``(n, m_s)`` boolean arrays."""
    n = len(contexts)
    masks = [np.ones((n, m), dtype=bool) for m in compiled.slot_sizes]
    if not compiled.rules:
        return masks
    position = {s: {vid: j for j, vid in enumerate(compiled.slot_ids[s])} for s in compiled.slot_names}
    for i, context in enumerate(contexts):
        allowed, _ = apply_rules(compiled.rules, compiled.slot_ids, context)
        for s, slot in enumerate(compiled.slot_names):
            if len(allowed[slot]) < compiled.slot_sizes[s]:
                masks[s][i] = False
                masks[s][i, [position[slot][v] for v in allowed[slot]]] = True
    return masks


def policy_context(compiled: CompiledExperiment, context: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes named in ``design.context`` that a policy can read (str, number, bool)."""
    return {
        name: context[name]
        for name in compiled.spec.design.context
        if isinstance(context.get(name), str | int | float | bool)
    }


@dataclass(frozen=True)
class Assignment:
    """What a batch of ``n`` recipients got.

    Attributes
    ----------
    positions : ndarray of int, shape (n, n_slots)
        The chosen variant's position per slot.
    arms : ndarray of int, shape (n,)
        The combination index (``itertools.product`` order).
    propensities : ndarray of float, shape (n,)
        The probability of the whole combination (1.0 for fallbacks and apprentice decisions).
    explored : ndarray of bool, shape (n,)
    reasons : list of str, length n
    agreement : ndarray of float, shape (n,)
        For apprentice decisions, the probability that the policy would have drawn the incumbent's
        combination (so its mean is the expected agreement rate); NaN elsewhere.
    hour_propensities : ndarray of float, shape (n,), or None
        With a ``send_time`` choice (the last slot), the probability of the chosen hour alone (the
        combination's, summed over the other slots' variants); None without one.
    """

    positions: np.ndarray
    arms: np.ndarray
    propensities: np.ndarray
    explored: np.ndarray
    reasons: list[str]
    agreement: np.ndarray
    hour_propensities: np.ndarray | None = None


def incumbent_positions(compiled: CompiledExperiment, masks: Sequence[np.ndarray]) -> np.ndarray:
    """The choice without a policy: each slot's default, or its first allowed variant when a rule
    excludes the default. Shape ``(n, n_slots)``."""
    n = masks[0].shape[0]
    positions = np.tile(compiled.default_positions, (n, 1))
    for s, mask in enumerate(masks):
        excluded = ~mask[np.arange(n), positions[:, s]]
        positions[excluded, s] = np.argmax(mask[excluded], axis=1)
    return positions


def policy_batch(compiled: CompiledExperiment, ctxs: Sequence[Mapping[str, Any]]) -> Any:
    """What a policy takes for these recipients: their policy contexts (contextual) or their count."""
    return (
        [policy_context(compiled, c) for c in ctxs]
        if compiled.spec.design.type == "contextual"
        else len(ctxs)
    )


def assign(
    compiled: CompiledExperiment,
    recipient_ids: Sequence[str],
    contexts: Sequence[Mapping[str, Any]],
    reasons: Sequence[str | None],
    policy: Policy | None,
    rng: np.random.Generator,
    apprentice: bool = False,
    rendered: Sequence[Sequence[Mapping[int, Rendering]]] | None = None,
) -> Assignment:
    """Choose for every recipient whose ``reasons`` entry is None; the others get the defaults.

    With ``apprentice`` (adaptive designs only) the active recipients get the incumbent choice with
    propensity 1, and the policy only says how likely it would have been to choose the same.
    ``rendered`` is :func:`render_templated` per recipient (all of them) when the caller has it.
    """
    n, n_slots = len(recipient_ids), len(compiled.slot_names)
    positions = np.tile(compiled.default_positions, (n, 1))
    propensities = np.ones(n)
    explored = np.zeros(n, dtype=bool)
    out_reasons = [r if r is not None else "" for r in reasons]
    agreement = np.full(n, np.nan)
    timed = compiled.send_time is not None
    hour_propensities = np.ones(n) if timed else None
    idx = np.flatnonzero(np.array([r is None for r in reasons], dtype=bool))
    if idx.size:
        ids = [recipient_ids[i] for i in idx]
        ctxs = [contexts[i] for i in idx]
        active_rendered = None if rendered is None else [rendered[i] for i in idx]
        masks = slot_masks(compiled, ctxs, active_rendered)
        combos = combinations(compiled.slot_sizes)
        reason = "assigned"
        content_fallback = np.zeros(len(idx), dtype=bool)
        if not compiled.adaptive:
            # intent to treat: the hash's variant stands even when its content cannot render for the
            # recipient (it is then shown with the default's content, reason "content_fallback")
            salt = compiled.spec.hash_salt
            allowed = rule_masks(compiled, ctxs)
            renderable = renderable_masks(compiled, ctxs, active_rendered) if compiled.has_templates else None
            for s, slot in enumerate(compiled.slot_names):
                variant_ids, weights = compiled.slot_ids[slot], compiled.weights[slot]
                chosen, prob = bucket_variants(salt, slot, ids, variant_ids, weights, allowed[s])
                if renderable is not None:
                    content_fallback |= ~renderable[s][np.arange(len(idx)), chosen]
                positions[idx, s] = chosen
                propensities[idx] *= prob
            if hour_propensities is not None:
                hour_propensities[idx] = prob  # the send-time choice is the last slot
        elif apprentice:
            reason = "apprentice"
            incumbent = incumbent_positions(compiled, masks)
            positions[idx] = incumbent
            try:
                if policy is None:
                    raise RuntimeError("no policy")
                mask = allowed_mask(masks, compiled.slot_sizes)
                probabilities = policy.probabilities(policy_batch(compiled, ctxs), allowed=mask)
                incumbent_arms = arm_index(incumbent, compiled.slot_sizes)
                agreement[idx] = probabilities[np.arange(len(idx)), incumbent_arms]
            except Exception:  # the incumbent does not need the policy; agreement stays unknown
                log.warning("experiment %s: the apprentice policy could not score %d recipients",
                            compiled.spec.key, len(idx), exc_info=True)
        else:
            reason = "policy"
            try:
                if policy is None:
                    raise RuntimeError("no policy")
                mask = allowed_mask(masks, compiled.slot_sizes)
                choices = policy.choose(policy_batch(compiled, ctxs), rng, allowed=mask)
                positions[idx] = combos[np.asarray(choices.actions, dtype=np.int64)].reshape(-1, n_slots)
                propensities[idx] = choices.propensities
                explored[idx] = choices.explored
                if hour_propensities is not None:
                    hour_propensities[idx] = hour_marginals(
                        compiled, positions[idx], choices.propensities,
                        lambda: policy.probabilities(policy_batch(compiled, ctxs), allowed=mask),
                    )
            except Exception:  # the policy could not answer: defaults, and the reason says so
                log.warning("experiment %s: the policy could not answer for %d recipients",
                            compiled.spec.key, len(idx), exc_info=True)
                reason = "policy_error"
        for k, i in enumerate(idx):
            out_reasons[i] = CONTENT_FALLBACK if content_fallback[k] else reason
    return Assignment(
        positions=positions,
        arms=arm_index(positions, compiled.slot_sizes),
        propensities=propensities,
        explored=explored,
        reasons=out_reasons,
        agreement=agreement,
        hour_propensities=hour_propensities,
    )


def hour_marginals(
    compiled: CompiledExperiment, positions: np.ndarray, joint: np.ndarray, probabilities: Any
) -> np.ndarray:
    """The probability of each recipient's chosen hour (the last slot) under a policy's draw: the joint
    propensity when no other slot has a choice, else ``probabilities()`` (the policy's ``(n, k)``
    distribution) summed over the combinations with that hour."""
    if all(size == 1 for size in compiled.slot_sizes[:-1]):
        return np.asarray(joint, dtype=float)
    hours = combinations(compiled.slot_sizes)[:, -1]
    p = np.asarray(probabilities())
    return np.array([p[i, hours == h].sum() for i, h in enumerate(positions[:, -1])])


#: Why a screened-out recipient (a reason of :func:`screen`) gets the defaults without any rule applied.
SCREENED_OUT = {
    "paused": "the experiment is paused",
    "no_consent": "the recipient has not consented",
    "ineligible": "the recipient is not eligible",
    "holdout": "the recipient is in the holdout",
}


def rules_not_evaluated(reason: str) -> str:
    """Why a screened-out recipient's rules were not evaluated.

    Examples
    --------
    >>> rules_not_evaluated("no_consent")
    'not evaluated: the recipient has not consented, so the default variants'
    """
    return f"not evaluated: {SCREENED_OUT[reason]}, so the default variants"


def explain(
    compiled: CompiledExperiment,
    recipient_id: str,
    context: Mapping[str, Any],
    screening: str | None = None,
) -> list[str]:
    """Why a recipient would get what they get: consent, eligibility, holdout and rule lines.

    With ``screening``, a reason of :func:`screen` (``no_consent``, ``ineligible``, ...), the rules
    were never applied to the recipient: one line says so instead of the rule lines.
    """
    spec = compiled.spec
    lines = []
    line = consent_line(spec.consent, context)
    if line is not None:
        lines.append(line)
    if not consent_flags(spec.consent, [context])[0] and spec.consent.without_consent == "randomize":
        held = spec.holdout > 0 and bool(in_holdout(spec.hash_salt, [recipient_id], spec.holdout)[0])
        return lines + [
            "without consent: randomize, so no eligibility, rule or context is read"
            + (" (in holdout)" if held else " (a non-personalised arm)")
        ]
    if compiled.eligibility is not None:
        ok, why = evaluate(compiled.eligibility, context)
        lines.append(f"eligibility: {'eligible' if ok else 'ineligible'} ({'; '.join(why)})")
    if spec.holdout > 0:
        held = bool(in_holdout(spec.hash_salt, [recipient_id], spec.holdout)[0])
        lines.append(f"holdout {spec.holdout:g}: {'in holdout' if held else 'not in holdout'}")
    if screening in SCREENED_OUT:
        lines.append(f"rules: {rules_not_evaluated(screening)}")
    else:
        lines += apply_rules(compiled.rules, compiled.slot_ids, context, explain=True)[1]
    return lines
