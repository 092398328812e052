"""Assembling an experiment's summary from the grouped statistics the database returned. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np

from analysis.stats import RegressionStats
from experiments.arms import combinations
from experiments.assignment import CompiledExperiment
from experiments.models import (
    ArmSummary,
    CombinationSummary,
    CovariateArmSummary,
    CovariateSummary,
    DailyArmSummary,
    ExperimentSummary,
    SegmentedSummary,
)
from experiments.store.segments import CovariateStats
from experiments.store.summaries import ExcludedCounts, GroupStats, event_types


@dataclass(frozen=True)
class ResultGroups:
    """What the result queries returned for one experiment version.

    ``by_arm`` maps an arm (combination index) to its learnable decisions' statistics, ``by_reason`` a
    fallback reason to its decisions', ``by_day`` lists ``(day, arm, stats)``; ``excluded`` counts the
    machine-made and late outcomes, ``apprentice`` is ``(decisions, agreement rate or None)`` and
    ``after_learning`` is ``(revised, not learnable)``: outcomes that arrived after their decision was
    learned; ``uncounted_values`` counts, per event type, the outcomes whose value the reward does not
    count (:mod:`experiments.event_values`).
    """

    by_arm: Mapping[int, GroupStats]
    by_reason: Mapping[str, GroupStats]
    by_day: Sequence[tuple[Any, int, GroupStats]]
    excluded: ExcludedCounts
    apprentice: tuple[int, float | None]
    after_learning: tuple[int, int] = (0, 0)
    uncounted_values: Mapping[str, int] = field(default_factory=dict)


def intended_shares(
    compiled: CompiledExperiment, arm_probabilities: np.ndarray | None = None
) -> dict[tuple[str, str], float]:
    """Each (slot, variant)'s intended share of the learnable decisions.

    Hash designs: the variant's weight over its slot's weights. Adaptive designs: the marginal of
    ``arm_probabilities`` (shape ``(n_arms,)``, a bandit's current distribution), or uniform without it.
    """
    shares: dict[tuple[str, str], float] = {}
    if not compiled.adaptive:
        for slot in compiled.slot_names:
            w = compiled.weights[slot]
            for vid, wi in zip(compiled.slot_ids[slot], w, strict=True):
                shares[(slot, vid)] = float(wi / w.sum())
        return shares
    probs = (
        np.full(compiled.n_arms, 1.0 / compiled.n_arms) if arm_probabilities is None else arm_probabilities
    )
    combos = combinations(compiled.slot_sizes)
    for s, slot in enumerate(compiled.slot_names):
        for j, vid in enumerate(compiled.slot_ids[slot]):
            shares[(slot, vid)] = float(probs[combos[:, s] == j].sum())
    return shares


def _as_date(day: Any) -> date:
    return date.fromisoformat(day) if isinstance(day, str) else day


def build_summary(
    compiled: CompiledExperiment,
    groups: ResultGroups,
    shares: Mapping[tuple[str, str], float],
    *,
    include_machine: bool = False,
) -> ExperimentSummary:
    """Per-arm (per slot variant), per-combination, holdout and daily summaries of one version.

    A slot variant's statistics are the sums over the combinations that contain it (sums, sums of
    squares and sums of cubes merge by addition); combinations and variants without decisions appear
    with zeros. ``include_machine`` says whether ``groups`` counted machine-made outcomes inside the
    window: then only late ones are left out, machine-made or not; otherwise every machine-made one is
    too.
    """
    types = event_types(compiled)
    empty = GroupStats.empty(types)
    totals = {(s, v): empty for s in compiled.slot_names for v in compiled.slot_ids[s]}
    combos = []
    for arm in range(compiled.n_arms):
        stats = groups.by_arm.get(arm, empty)
        variants = compiled.arm_variants(arm)
        combos.append(CombinationSummary(variants, dict(stats.event_counts), stats.reward))
        for slot_variant in variants.items():
            totals[slot_variant] = totals[slot_variant] + stats
    arms = [
        ArmSummary(slot, vid, shares[(slot, vid)], dict(st.event_counts), st.reward)
        for (slot, vid), st in totals.items()
    ]
    holdout = None
    if compiled.spec.holdout > 0:
        h = groups.by_reason.get("holdout", empty)
        holdout = ArmSummary("holdout", "holdout", compiled.spec.holdout, dict(h.event_counts), h.reward)
    daily_acc: dict[tuple[date, str, str], list[Any]] = {}
    for day, arm, stats in groups.by_day:
        for slot, vid in compiled.arm_variants(arm).items():
            acc = daily_acc.setdefault((_as_date(day), slot, vid), [0, dict.fromkeys(types, 0), 0])
            acc[0] += stats.decisions
            acc[2] += stats.explored
            for t, c in stats.event_counts.items():
                acc[1][t] += c
    daily = [
        DailyArmSummary(day, slot, vid, acc[0], acc[1], acc[2]) for (day, slot, vid), acc in daily_acc.items()
    ]
    ex = groups.excluded
    machine_events = ex.machine_in_window + ex.machine_late
    excluded_machine = 0 if include_machine else machine_events
    excluded_late = ex.late + ex.machine_late if include_machine else ex.late
    n_apprentice, agreement = groups.apprentice
    return ExperimentSummary(
        key=compiled.spec.key,
        version=compiled.version,
        design=compiled.spec.design.type,
        slots={s: list(ids) for s, ids in compiled.slot_ids.items()},
        control=compiled.control,
        arms=arms,
        combinations=combos,
        holdout=holdout,
        daily=daily,
        guardrails=list(compiled.spec.reward.guardrails),
        reward_events=list(compiled.spec.reward.events),
        fallbacks={reason: s.decisions for reason, s in sorted(groups.by_reason.items())},
        excluded_machine_events=excluded_machine,
        excluded_late_events=excluded_late,
        machine_events=machine_events,
        machine_included=include_machine,
        apprentice_decisions=n_apprentice,
        apprentice_agreement=agreement,
        explored_decisions=sum(s.explored for s in groups.by_arm.values()),
        revised_outcomes=groups.after_learning[0],
        unlearnable_outcomes=groups.after_learning[1],
        uncounted_value_events=dict(groups.uncounted_values),
        value_event_types=compiled.spec.reward.value_event_types,
    )


def build_segmented_summary(
    compiled: CompiledExperiment,
    attribute: str,
    by_segment_arm: Mapping[tuple[str | None, int], GroupStats],
    shares: Mapping[tuple[str, str], float],
) -> SegmentedSummary:
    """One summary per value of ``attribute`` (segments in sorted order), from ``(segment, arm)`` groups.

    Decisions whose segment is None (no value) are counted in ``missing``, not summarised.
    """
    missing = sum(s.decisions for (seg, _), s in by_segment_arm.items() if seg is None)
    labels = sorted({seg for seg, _ in by_segment_arm if seg is not None})
    segments = {}
    for label in labels:
        groups = ResultGroups(
            by_arm={arm: s for (seg, arm), s in by_segment_arm.items() if seg == label},
            by_reason={}, by_day=[], excluded=ExcludedCounts(0, 0, 0), apprentice=(0, None),
        )
        segments[label] = replace(build_summary(compiled, groups, shares), holdout=None)
    return SegmentedSummary(attribute, segments, missing)


def build_covariate_summary(
    compiled: CompiledExperiment, attribute: str, by_arm: Mapping[int, CovariateStats]
) -> CovariateSummary:
    """Each slot variant's CUPED sums: the sums over the combinations (arms) that contain it."""
    empty = CovariateStats(0, RegressionStats(0, 0.0, 0.0, 0.0, 0.0, 0.0))
    totals = {(s, v): empty for s in compiled.slot_names for v in compiled.slot_ids[s]}
    for arm, stats in by_arm.items():
        for slot_variant in compiled.arm_variants(arm).items():
            totals[slot_variant] = totals[slot_variant] + stats
    arms = [CovariateArmSummary(slot, vid, st.decisions, st.xy) for (slot, vid), st in totals.items()]
    return CovariateSummary(attribute, arms)
