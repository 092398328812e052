"""Is it learning? Where an adaptive experiment's decisions went under each policy version, and what the
policy has learned from, assembled from the grouped counts the database returned. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from experiments.assignment import CompiledExperiment
from experiments.models import LearningSummary, VersionAllocation
from experiments.store.summaries import DecisionGroup


def version_allocations(
    compiled: CompiledExperiment,
    groups: Sequence[DecisionGroup],
    version_to_created: Mapping[int, datetime],
) -> list[VersionAllocation]:
    """Per policy version (oldest first; decisions without one last), the learnable decisions given to
    each slot's variants, and how many explored and were learned from.

    Parameters
    ----------
    compiled : CompiledExperiment
        The spec version the groups belong to (its arms map to slot variants).
    groups : sequence of DecisionGroup
        :func:`experiments.store.summaries.decision_groups` of that version; fallbacks are left out.
    version_to_created : mapping
        When each policy version was stored.
    """
    version_to_totals: dict[int | None, list[int]] = {}
    version_to_arm_counts: dict[int | None, dict[int, int]] = {}
    for g in groups:
        if g.fallback:
            continue
        totals = version_to_totals.setdefault(g.policy_version, [0, 0, 0])
        totals[0] += g.decisions
        totals[1] += g.explored
        totals[2] += g.learned
        arm_counts = version_to_arm_counts.setdefault(g.policy_version, {})
        arm_counts[g.arm] = arm_counts.get(g.arm, 0) + g.decisions
    arm_to_variants = {arm: compiled.arm_variants(arm).items() for arm in range(compiled.n_arms)}
    out = []
    for version in sorted(version_to_totals, key=lambda v: (v is None, v or 0)):
        slot_to_variants = {s: dict.fromkeys(compiled.slot_ids[s], 0) for s in compiled.slot_names}
        for arm, n in version_to_arm_counts[version].items():
            for slot, variant in arm_to_variants[arm]:
                slot_to_variants[slot][variant] += n
        n, explored, learned = version_to_totals[version]
        created = None if version is None else version_to_created.get(version)
        out.append(VersionAllocation(version, created, n, explored, learned, slot_to_variants))
    return out


def build_learning_summary(
    compiled: CompiledExperiment,
    groups: Sequence[DecisionGroup],
    version_to_created: Mapping[int, datetime],
    learned_reward: float,
) -> LearningSummary:
    """The :class:`LearningSummary` of a spec version from its decision groups and learned reward."""
    versions = version_allocations(compiled, groups, version_to_created)
    return LearningSummary(
        key=compiled.spec.key,
        version=compiled.version,
        learnable_decisions=sum(v.decisions for v in versions),
        learned_decisions=sum(v.learned for v in versions),
        learned_reward=learned_reward,
        versions=versions,
    )
