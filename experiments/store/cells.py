"""The summary statistics of a spec version's decisions, as cells and as the groups results read. Pure.

A *cell* is the finest group the results read: the decisions of one (fallback, reason, arm, day,
policy version) of a spec version, with how many explored and were learned from, the sum, sum of
squares and sum of cubes of their rewards, and per event type how many had at least one such event.
The same cells come from the stored rollups (:mod:`experiments.store.rollup_tables`) or from a full
scan of the log (:func:`experiments.store.summaries.log_cells`); the arm, fallback and daily statistics
are sums of cells (:func:`grouped_stats`), whichever source they came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.stats import SampleStats

#: The columns a cell is keyed by, in the order of the index ``ix_decisions_summary``.
SCAN_COLUMNS = ("fallback", "reason", "arm", "day", "policy_version")
#: A cell's key: the values of :data:`SCAN_COLUMNS`.
CellKey = tuple[bool, str, int, Any, "int | None"]


@dataclass(frozen=True)
class DecisionGroup:
    """The decisions of one (fallback, reason, arm, day, policy version) group of a spec version.

    ``explored`` counts those whose draw was not the policy's greedy choice, ``learned`` those learned
    from (``learned_version`` set).
    """

    fallback: bool
    reason: str
    arm: int
    day: Any
    policy_version: int | None
    decisions: int
    explored: int
    learned: int

    @property
    def key(self) -> CellKey:
        return (self.fallback, self.reason, self.arm, self.day, self.policy_version)


@dataclass(frozen=True)
class RollupCell(DecisionGroup):
    """A :class:`DecisionGroup` with the sums of its decisions' rewards (0 for a decision without
    attributed outcomes) and, per event type, the decisions with at least one event of it."""

    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    reward_sum_cubes: float = 0.0
    event_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupStats:
    """Aggregates of one group of decisions: the per-decision reward as
    :class:`analysis.stats.SampleStats` (its ``n`` the decisions; the cubes give the skewness behind
    the Welch test's note), the decisions with each event type, and those that explored.

    Mergeable: the statistics of two groups add up (``+``) to those of their union.
    """

    reward: SampleStats
    event_counts: dict[str, int]
    explored: int = 0

    @property
    def decisions(self) -> int:
        return self.reward.n

    def __add__(self, other: GroupStats) -> GroupStats:
        if not isinstance(other, GroupStats):
            return NotImplemented
        counts = dict(self.event_counts)
        for t, c in other.event_counts.items():
            counts[t] = counts.get(t, 0) + c
        return GroupStats(self.reward + other.reward, counts, self.explored + other.explored)

    @classmethod
    def empty(cls, types: Sequence[str]) -> GroupStats:
        """No decisions, with a zero count of each event type."""
        return cls(SampleStats(0, 0.0, 0.0, 0.0), dict.fromkeys(types, 0))


def group_stats(n: int, sums: Any, types: Sequence[str], explored: int = 0) -> GroupStats:
    """The :class:`GroupStats` of ``n`` decisions from one row of reward sums (``reward_sum``,
    ``reward_sum_squares``, ``reward_sum_cubes``) and event counts (``c0``, ``c1``, ... in the order of
    ``types``); None when no decision of the group has an outcome."""
    if sums is None:
        return GroupStats(SampleStats(n, 0.0, 0.0, 0.0), dict.fromkeys(types, 0), explored)
    reward = SampleStats(
        n,
        float(sums["reward_sum"] or 0.0),
        float(sums["reward_sum_squares"] or 0.0),
        float(sums["reward_sum_cubes"] or 0.0),
    )
    return GroupStats(reward, {t: int(sums[f"c{j}"] or 0) for j, t in enumerate(types)}, explored)


def cell_stats(cell: RollupCell, types: Sequence[str]) -> GroupStats:
    """The :class:`GroupStats` of one cell, with a count (0 if none) for each of ``types``."""
    reward = SampleStats(cell.decisions, cell.reward_sum, cell.reward_sum_squares, cell.reward_sum_cubes)
    return GroupStats(reward, {t: int(cell.event_counts.get(t, 0)) for t in types}, cell.explored)


def grouped_stats(
    cells: Iterable[RollupCell], types: Sequence[str], fallback: bool, group: Sequence[str]
) -> dict[tuple[Any, ...], GroupStats]:
    """The cells of ``fallback`` decisions summed per value of the ``group`` columns, by key.

    Only groups with decisions appear; each has a count of every one of ``types``.
    """
    key_to_stats: dict[tuple[Any, ...], GroupStats] = {}
    for cell in cells:
        if cell.fallback is not fallback or cell.decisions == 0:
            continue
        key = tuple(getattr(cell, name) for name in group)
        stats = cell_stats(cell, types)
        found = key_to_stats.get(key)
        key_to_stats[key] = stats if found is None else found + stats
    return dict(sorted(key_to_stats.items()))


@dataclass(frozen=True)
class ExcludedCounts:
    """Outcomes of a version that results may leave out, by why.

    ``machine_in_window`` and ``machine_late`` are machine-made events inside and outside the reward
    window; ``late`` are the other events outside it (timed before their decision or after the window).
    """

    machine_in_window: int
    machine_late: int
    late: int
