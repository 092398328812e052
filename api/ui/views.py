"""What the pages show, gathered from the service's domain objects (formatting, no statistics).

The statistics come from ``analysis/`` (through :func:`experiments.result_analysis.analyze_summary`
and the small functions it exposes); the SQL stays in ``experiments/``. These helpers only regroup and label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import numpy as np

from analysis.errors import AnalysisInputError
from analysis.results import SlotAnalysis
from analysis.srm import check_sample_ratio
from analysis.timeseries import ObservedRate
from experiments.arms import combinations
from experiments.models import (
    ArmSummary,
    ExperimentInfo,
    ExperimentSummary,
    ExperimentTraffic,
    PolicySnapshotInfo,
    VersionAllocation,
)
from experiments.result_analysis import ADAPTIVE_DESIGNS

SrmStatus = Literal["ok", "flagged", "not applicable", "too early"]


@dataclass(frozen=True)
class SrmFlag:
    """The sample-ratio check of an experiment's slots, worst slot first.

    ``status`` is ``not applicable`` for bandits (their split moves as they learn) and for an experiment
    whose every slot has a single variant (no split to check), and ``too early`` while no slot has two
    variants with traffic yet.
    """

    status: SrmStatus
    p_value: float | None
    slot: str | None
    message: str


@dataclass(frozen=True)
class ExperimentRow:
    """One line of the experiments list."""

    key: str
    name: str
    status: str
    design: str
    policy: str | None
    version: int
    traffic: int
    srm: SrmFlag


@dataclass(frozen=True)
class RateRow:
    """A variant of a slot with its decisions and its rate of each rate metric."""

    variant: str
    decisions: int
    reward_mean: float
    metric_to_cell: dict[str, ObservedRate]


def traffic(summary: ExperimentSummary) -> int:
    """Decisions logged for the current version: the first slot's arms plus every fallback (holdout, ...)."""
    first = next(iter(summary.slots), None)
    learnable = sum(a.decisions for a in summary.arms if a.slot == first)
    return learnable + sum(summary.fallbacks.values())


def srm_flag(summary: ExperimentSummary | ExperimentTraffic) -> SrmFlag:
    """Run the sample-ratio check on each slot's variant counts against their intended shares (from a
    summary, or from the experiments list's traffic: the same counts and shares)."""
    if summary.design in ADAPTIVE_DESIGNS:
        return SrmFlag("not applicable", None, None, "a bandit's split moves as it learns")
    if all(len(variants) < 2 for variants in summary.slots.values()):
        return SrmFlag("not applicable", None, None, "one variant per slot: no split to check")
    worst: tuple[float, str, str] | None = None
    for slot in summary.slots:
        arms = [a for a in summary.arms if a.slot == slot and a.intended_share > 0]
        if len(arms) < 2 or sum(a.decisions for a in arms) == 0:
            continue
        try:
            result = check_sample_ratio([a.decisions for a in arms], [a.intended_share for a in arms])
        except AnalysisInputError:
            continue
        if worst is None or result.p_value < worst[0]:
            worst = (result.p_value, slot, result.message)
        if result.flagged:
            return SrmFlag("flagged", result.p_value, slot, result.message)
    if worst is None:
        return SrmFlag("too early", None, None, "no slot has traffic on two variants yet")
    return SrmFlag("ok", worst[0], worst[1], worst[2])


def experiment_row(info: ExperimentInfo, counts: ExperimentTraffic) -> ExperimentRow:
    """The list's line for one experiment, from its traffic (:meth:`ExperimentService.traffic`)."""
    return ExperimentRow(
        key=info.key, name=info.spec.name or info.key, status=info.status, design=info.spec.design.type,
        policy=info.spec.design.policy, version=info.version, traffic=counts.decisions, srm=srm_flag(counts),
    )


def rate_rows(arms: Sequence[ArmSummary], slot: str, metrics: Sequence[str], alpha: float) -> list[RateRow]:
    """Per variant of ``slot`` (in the summary's order): decisions, mean reward and each metric's rate."""
    rows = []
    for arm in arms:
        if arm.slot != slot:
            continue
        cells = {metric: ObservedRate.of(int(arm.event_counts.get(metric, 0)), arm.decisions, alpha)
                 for metric in metrics}
        rows.append(RateRow(arm.variant, arm.decisions, arm.reward_mean, cells))
    return rows


def rate_metrics(summary: ExperimentSummary, analysis: SlotAnalysis | None = None) -> list[str]:
    """The rate metrics worth a column: those compared by the analysis, else the reward's events and
    guardrails seen so far."""
    if analysis is not None:
        found = [c.metric for c in analysis.comparisons if c.kind == "rate"]
        found += [g.metric for g in analysis.guardrails]
        return list(dict.fromkeys(found))
    seen = {e for a in summary.arms for e, n in a.event_counts.items() if n}
    return [e for e in [*summary.reward_events, *summary.guardrails] if e in seen]


@dataclass(frozen=True)
class PolicyPoint:
    """One policy version of the current spec version with each slot's variant probabilities."""

    version: int
    created_at: datetime
    learned_decisions: int
    slot_to_marginals: dict[str, dict[str, float]]


@dataclass(frozen=True)
class ExploredDay:
    """The learnable decisions of one UTC day and how many of them explored."""

    day: date
    decisions: int
    explored: int

    @property
    def share(self) -> float:
        return self.explored / self.decisions if self.decisions else 0.0


def policy_points(summary: ExperimentSummary, history: Sequence[PolicySnapshotInfo]) -> list[PolicyPoint]:
    """The snapshots of the summary's spec version that have arm probabilities, as slot marginals.

    An arm is a combination of one variant per slot (``experiments.arms.combinations`` order); a
    variant's probability is the sum over the arms that contain it. Contextual snapshots (no arm
    probabilities) and those of older spec versions are left out.
    """
    names = list(summary.slots)
    combos = combinations([len(summary.slots[s]) for s in names])
    points = []
    for snap in history:
        probs = snap.arm_probabilities
        if snap.spec_version != summary.version or probs is None or len(probs) != len(combos):
            continue
        marginals: dict[str, dict[str, float]] = {}
        for k, slot in enumerate(names):
            acc = dict.fromkeys(summary.slots[slot], 0.0)
            for arm, p in enumerate(probs):
                acc[summary.slots[slot][int(combos[arm, k])]] += p
            marginals[slot] = acc
        points.append(PolicyPoint(snap.version, snap.created_at, snap.learned_decisions, marginals))
    return points


def explored_days(summary: ExperimentSummary) -> list[ExploredDay]:
    """Per UTC day, the learnable decisions and those that explored (counted on the first slot, where each
    decision appears once)."""
    first = next(iter(summary.slots), None)
    day_to_counts: dict[date, list[int]] = {}
    for row in summary.daily:
        if row.slot == first:
            acc = day_to_counts.setdefault(row.day, [0, 0])
            acc[0] += row.decisions
            acc[1] += row.explored
    return [ExploredDay(day, n, x) for day, (n, x) in sorted(day_to_counts.items())]


#: Policy versions a chart draws at most: the policy history's drawn versions (evenly spread, the latest
#: included), and the runs of consecutive versions of the per-version chart.
HISTORY_POINTS = 100


@dataclass(frozen=True)
class VersionShares:
    """The decisions on a slot under a run of consecutive policy versions (``first`` to ``version``; one
    version when they are equal): each variant's share and the share that explored, over the run's
    decisions together; ``created_at`` is when its last version was stored."""

    version: int
    created_at: datetime
    decisions: int
    explored_share: float
    variant_to_share: dict[str, float]
    first: int


def version_shares(versions: Sequence[VersionAllocation], slot: str, points: int = HISTORY_POINTS
                   ) -> list[VersionShares]:
    """Per policy version with decisions and a stored time (oldest first), the share of the slot's
    decisions given to each variant and the share of its decisions that explored; with more than
    ``points`` such versions, per run of consecutive ones (as even as can be, at most ``points`` runs),
    the shares of the run's decisions summed (a chart of thousands of versions draws no more)."""
    kept = [v for v in versions if v.policy_version is not None and v.created_at is not None and v.decisions]
    runs = max(1, min(points, len(kept)))
    out = []
    edges = np.linspace(0, len(kept), runs + 1).round().astype(int).tolist()
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        run = kept[start:end]
        if not run:
            continue
        counts: dict[str, int] = {}
        for v in run:
            for variant, n in v.slot_to_variant_decisions.get(slot, {}).items():
                counts[variant] = counts.get(variant, 0) + n
        total = sum(counts.values())
        decisions = sum(v.decisions for v in run)
        explored = sum(v.explored for v in run) / decisions
        shares = {variant: n / total if total else 0.0 for variant, n in counts.items()}
        last = run[-1]
        out.append(VersionShares(last.policy_version, last.created_at, decisions, explored, shares,  # type: ignore[arg-type]
                                 run[0].policy_version))  # type: ignore[arg-type]
    return out
