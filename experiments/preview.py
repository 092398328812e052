"""What sample recipients would get and why, before a send: rules fired, variants offered, the
probabilities the design would draw from, the rendered content, and a coverage view. Pure, no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit import Policy
from experiments.arms import allowed_mask, combinations
from experiments.assignment import (
    SCREENED_OUT,
    CompiledExperiment,
    content_problems,
    hash_probabilities,
    incumbent_positions,
    policy_batch,
    rule_masks,
    rules_not_evaluated,
    slot_content,
    slot_masks,
)
from experiments.content import try_render
from experiments.rules import NotOf, apply_rules, find_example, holds

_SCREENED = frozenset({"holdout", "ineligible", "no_consent", "paused", "policy_error"})
#: Above this many rules the coverage view looks at single rules and pairs only (2**R combinations).
MAX_RULES_FOR_ALL_COMBINATIONS = 8


@dataclass(frozen=True)
class SlotDetail:
    """One slot for one recipient.

    Attributes
    ----------
    offered : list of str
        The variant ids the design may draw from (allowed by the rules and renderable).
    not_offered : dict of str to str
        The other variants, each with why (a rule, or the template's problem).
    variant_to_content : dict of str to str
        The rendered content of each offered variant.
    variant_to_probability : dict of str to float
        The marginal probability of each offered variant (sums to 1).
    """

    slot: str
    offered: list[str]
    not_offered: dict[str, str]
    variant_to_content: dict[str, str]
    variant_to_probability: dict[str, float]


@dataclass(frozen=True)
class RecipientDetail:
    """One sample recipient: the screening reason, the rules that fired and the per-slot detail.

    ``combination_to_probability`` maps each combination with a positive probability (labelled
    ``slot=variant,slot=variant``) to the probability the design would draw it with.
    ``fallback_only`` is true when the recipient can only ever get the default variants.
    ``rules_not_evaluated`` says why the rules were never applied to a screened-out recipient (no
    consent, ineligible, holdout, paused); ``rules_fired`` is then empty. None when they were applied.
    """

    recipient_id: str
    screening: str
    rules_fired: list[str]
    slots: list[SlotDetail]
    combination_to_probability: dict[str, float]
    fallback_only: bool
    rules_not_evaluated: str | None = None


@dataclass(frozen=True)
class Coverage:
    """What a sample of recipients leaves untested.

    ``unreached_rule_combinations``: sets of rules that can fire together (exactly those, no others;
    the empty set means "no rule fires") that no sample recipient reached, each with an example
    context that reaches it. ``fallback_only``: the recipients that only ever get the default variants,
    with why.
    """

    sample_size: int
    unreached_rule_combinations: list[tuple[list[str], dict[str, Any]]]
    fallback_only: dict[str, str]
    checked_all_combinations: bool


@dataclass(frozen=True)
class PreviewReport:
    """The previews of a sample of recipients (``experiments.models.Preview``, in order) and what the
    sample leaves uncovered."""

    previews: list[Any]
    coverage: Coverage


def combination_label(compiled: CompiledExperiment, arm: int) -> str:
    """``slot=variant,slot=variant`` for combination ``arm``."""
    return ",".join(f"{s}={v}" for s, v in compiled.arm_variants(arm).items())


def combination_probabilities(
    compiled: CompiledExperiment,
    contexts: Sequence[Mapping[str, Any]],
    screening: Sequence[str | None],
    policy: Policy | None,
    apprentice: bool = False,
) -> np.ndarray:
    """The probability of every combination per recipient, shape ``(n, n_arms)``; rows sum to 1.

    Screened-out recipients (a fallback reason) get the default combination with probability 1, as do
    all recipients of an adaptive design without a usable policy (assignment falls back the same way).
    """
    n = len(contexts)
    combos = combinations(compiled.slot_sizes)
    out = np.zeros((n, combos.shape[0]))
    out[:, compiled.default_arm] = 1.0
    idx = [i for i, r in enumerate(screening) if r is None]
    if not idx:
        return out
    ctxs = [contexts[i] for i in idx]
    masks = slot_masks(compiled, ctxs)
    if not compiled.adaptive:
        allowed = rule_masks(compiled, ctxs)
        probs = np.ones((len(idx), combos.shape[0]))
        for s, p in enumerate(hash_probabilities(compiled, allowed)):  # drawn whatever renders
            probs *= p[:, combos[:, s]]
        out[idx] = probs
        return out
    if apprentice or policy is None:
        incumbent = incumbent_positions(compiled, masks)
        out[idx] = 0.0
        for row, positions in zip(idx, incumbent, strict=True):
            arm = int(np.flatnonzero((combos == positions).all(axis=1))[0])
            out[row, arm] = 1.0
        return out
    try:
        mask = allowed_mask(masks, compiled.slot_sizes)
        probs = policy.probabilities(policy_batch(compiled, ctxs), allowed=mask)
    except Exception:  # noqa: BLE001 - assignment gives the defaults when the policy cannot answer
        return out
    out[idx] = probs
    return out


def describe_recipients(
    compiled: CompiledExperiment,
    recipient_ids: Sequence[str],
    contexts: Sequence[Mapping[str, Any]],
    screening: Sequence[str | None],
    policy: Policy | None,
    apprentice: bool = False,
) -> list[RecipientDetail]:
    """Per recipient: rules fired, variants offered (and why the others are not), their rendered
    content and the probabilities the design would draw from.

    ``screening`` is :func:`experiments.assignment.screen`'s result (None: the design chooses).
    """
    probs = combination_probabilities(compiled, contexts, screening, policy, apprentice)
    combos = combinations(compiled.slot_sizes)
    masks = slot_masks(compiled, contexts)
    details = []
    for i, (rid, context) in enumerate(zip(recipient_ids, contexts, strict=True)):
        skipped = screening[i] in SCREENED_OUT  # screened out before any rule is applied
        fired = [] if skipped else [r.name for r in compiled.rules if holds(r.when, context)]
        problems = content_problems(compiled, context) if compiled.has_templates else {}
        allowed_by_rules = apply_rules(compiled.rules, compiled.slot_ids, context)[0]
        slots = []
        for s, slot in enumerate(compiled.slot_names):
            ids = compiled.slot_ids[slot]
            default = ids[int(compiled.default_positions[s])]
            if screening[i] is None and compiled.adaptive:
                offered = [vid for j, vid in enumerate(ids) if masks[s][i, j]]
            elif screening[i] is None:  # hashing: what can be shown
                offered = [vid for j, vid in enumerate(ids) if probs[i, combos[:, s] == j].sum() > 0]
            else:
                offered = [default]
            not_offered = {}
            for vid in ids:
                if vid in offered:
                    continue
                if screening[i] is not None:
                    not_offered[vid] = f"{screening[i]}: the default variant only"
                elif vid in problems.get(slot, {}):
                    not_offered[vid] = f"content: {problems[slot][vid]}"
                elif vid not in allowed_by_rules[slot]:
                    not_offered[vid] = "excluded by the rules"
                else:
                    not_offered[vid] = "nothing else is offered: the slot falls back to its default"
            variants = compiled.variants_of(slot)
            contents = {}
            for vid in offered:
                rendering = try_render(variants[ids.index(vid)].content, context)
                contents[vid] = str(rendering.text) if rendering.ok else slot_content(
                    compiled, slot, ids.index(vid), context
                )[0]
            slots.append(
                SlotDetail(
                    slot=slot,
                    offered=offered,
                    not_offered=not_offered,
                    variant_to_content=contents,
                    variant_to_probability={
                        vid: float(probs[i, combos[:, s] == ids.index(vid)].sum()) for vid in offered
                    },
                )
            )
        details.append(
            RecipientDetail(
                recipient_id=rid,
                screening=screening[i] or ("policy" if compiled.adaptive else "assigned"),
                rules_fired=fired,
                slots=slots,
                combination_to_probability={
                    combination_label(compiled, int(arm)): float(probs[i, arm])
                    for arm in np.flatnonzero(probs[i] > 0)
                },
                fallback_only=_only_defaults(compiled, slots),
                rules_not_evaluated=rules_not_evaluated(str(screening[i])) if skipped else None,
            )
        )
    return details


def _only_defaults(compiled: CompiledExperiment, slots: Sequence[SlotDetail]) -> bool:
    """Whether every slot offers its default variant alone (and some slot has a choice to lose)."""
    defaults = compiled.control
    return any(size > 1 for size in compiled.slot_sizes) and all(
        d.offered == [defaults[d.slot]] for d in slots
    )


def _rule_combinations(n_rules: int) -> tuple[list[tuple[int, ...]], bool]:
    if n_rules <= MAX_RULES_FOR_ALL_COMBINATIONS:
        subsets = [c for k in range(n_rules + 1) for c in itertools.combinations(range(n_rules), k)]
        return subsets, True
    return [c for k in (0, 1, 2) for c in itertools.combinations(range(n_rules), k)], False


def coverage(compiled: CompiledExperiment, details: Sequence[RecipientDetail]) -> Coverage:
    """The rule combinations no recipient in ``details`` reached (that some recipient could reach),
    and the recipients that only ever get the fallback."""
    rules = compiled.rules
    # a screened-out recipient (holdout, ineligible, ...) gets the defaults: it exercises no rule
    reached = {tuple(sorted(d.rules_fired)) for d in details if d.screening not in _SCREENED}
    subsets, complete = _rule_combinations(len(rules))
    unreached = []
    for subset in subsets:
        names = tuple(sorted(rules[i].name for i in subset))
        if names in reached:
            continue
        conditions = [rules[i].when if i in subset else NotOf(rules[i].when) for i in range(len(rules))]
        if not complete:
            conditions = [rules[i].when for i in subset]
        example = find_example(conditions)
        if example is not None:
            unreached.append(([rules[i].name for i in subset], example))
    fallback_only = {}
    for d in details:
        if d.fallback_only:
            if d.screening in _SCREENED:
                fallback_only[d.recipient_id] = d.screening
            else:
                narrowed = [
                    f"{s.slot}: {', '.join(f'{v} ({why})' for v, why in s.not_offered.items())}"
                    for s in d.slots
                    if s.not_offered
                ]
                fallback_only[d.recipient_id] = "; ".join(narrowed) or "only the defaults are offered"
    return Coverage(
        sample_size=len(details),
        unreached_rule_combinations=unreached,
        fallback_only=fallback_only,
        checked_all_combinations=complete,
    )
