"""An experiment's spec compiled once per version for assignment: slots and their variant ids, the
arms (combinations), rules and eligibility parsed, and what the spec stores with each decision.
Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.arms import arm_index, combinations
from experiments.content import is_template, template_fields
from experiments.rules import Condition, TargetingRule, attributes, compile_rules, parse_condition
from experiments.send_time import SEND_TIME_SLOT, SendTime
from experiments.spec import ExperimentSpec, Variant


@dataclass(frozen=True)
class CompiledExperiment:
    """A spec version ready for assignment: slots in order, weights, compiled conditions."""

    spec: ExperimentSpec
    version: int
    slot_names: list[str]
    slot_ids: dict[str, list[str]]
    slot_sizes: list[int]
    weights: dict[str, np.ndarray]
    default_positions: np.ndarray
    eligibility: Condition | None
    rules: list[TargetingRule]
    stored_attributes: frozenset[str]
    templated: dict[str, tuple[bool, ...]]
    # per slot (in order), the (position, source) of each variant whose content is a template
    templates: tuple[tuple[tuple[int, str], ...], ...] = ()
    # the context attributes any template reads, sorted
    template_fields: tuple[str, ...] = ()
    # per slot (in order), its variants: the spec's slots, then the send-time choice when declared
    slot_variants: dict[str, list[Variant]] | None = None

    @property
    def send_time(self) -> SendTime | None:
        """The spec's ``send_time``, whose choice is the slot :data:`SEND_TIME_SLOT` (the last)."""
        return self.spec.send_time

    @property
    def control(self) -> dict[str, str]:
        """Each slot's default variant id, in slot order (the send-time choice's: its first hour)."""
        positions = zip(self.slot_names, self.default_positions, strict=True)
        return {s: self.slot_ids[s][int(p)] for s, p in positions}

    def variants_of(self, slot: str) -> list[Variant]:
        """The variants of ``slot``, the send-time choice included."""
        return self.slot_variants[slot] if self.slot_variants is not None else self.spec.slots[slot].variants

    @property
    def has_templates(self) -> bool:
        """Whether any variant's content is a Liquid template (rendered per recipient)."""
        return any(any(flags) for flags in self.templated.values())

    @property
    def n_arms(self) -> int:
        return int(np.prod(self.slot_sizes))

    @property
    def default_arm(self) -> int:
        return int(arm_index(self.default_positions.reshape(1, -1), self.slot_sizes)[0])

    @property
    def adaptive(self) -> bool:
        return self.spec.design.type in ("bandit", "contextual")

    def arm_variants(self, arm: int) -> dict[str, str]:
        """The variant id per slot of combination ``arm``."""
        combo = combinations(self.slot_sizes)[arm]
        return {s: self.slot_ids[s][int(p)] for s, p in zip(self.slot_names, combo, strict=True)}


def compile_experiment(spec: ExperimentSpec, version: int) -> CompiledExperiment:
    """Compile a validated spec."""
    variants = {name: list(slot.variants) for name, slot in spec.slots.items()}
    control = dict(spec.control)
    if spec.send_time is not None:
        variants[SEND_TIME_SLOT] = hour_variants(spec.send_time)
        control[SEND_TIME_SLOT] = variants[SEND_TIME_SLOT][0].id
    names = list(variants)
    slot_ids = {name: [v.id for v in vs] for name, vs in variants.items()}
    eligibility = None
    if spec.eligibility is not None:
        eligibility, problems = parse_condition(spec.eligibility, "eligibility")
        if eligibility is None:
            raise ValueError("; ".join(map(str, problems)))
    rules = compile_rules(spec.rules)
    stored = set(spec.design.context) | set(spec.record)
    for rule in rules:
        stored |= attributes(rule.when)
    if eligibility is not None:
        stored |= attributes(eligibility)
    if spec.consent.attribute:
        stored.add(spec.consent.attribute)
    if spec.send_time is not None and spec.send_time.timezone_attr is not None:
        stored.add(spec.send_time.timezone_attr)
    return CompiledExperiment(
        spec=spec,
        version=version,
        slot_names=names,
        slot_ids=slot_ids,
        slot_sizes=[len(slot_ids[s]) for s in names],
        weights={s: np.array([v.weight for v in variants[s]]) for s in names},
        default_positions=np.array([slot_ids[s].index(control[s]) for s in names], dtype=np.int64),
        eligibility=eligibility,
        rules=rules,
        stored_attributes=frozenset(stored),
        templated={s: tuple(is_template(v.content) for v in variants[s]) for s in names},
        templates=tuple(
            tuple((j, v.content) for j, v in enumerate(variants[s]) if is_template(v.content))
            for s in names
        ),
        template_fields=tuple(
            sorted({f for s in names for v in variants[s] for f in template_fields(v.content)})
        ),
        slot_variants=variants,
    )


def hour_variants(send_time: SendTime) -> list[Variant]:
    """The send-time choice's variants: one per hour or window, its id and content the local time
    (``"09:00"``, ``"09:00-11:00"``), its feature the hour it is sent at (a contextual policy's action
    feature)."""
    return [Variant(id=vid, content=vid, features={"hour": at.hour + at.minute / 60})
            for vid, at in zip(send_time.variant_ids, send_time.starts, strict=True)]
