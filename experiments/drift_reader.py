"""What the drift monitor reads from the store: the policy's decisions and their rewards, per cell.

A cell is the learnable decisions of one (day, policy version, learned version, arm): how many there
were, and the sum and sum of squares of their rewards (the spec's reward of each decision's attributed
outcomes, :func:`experiments.summaries.attribution`). ``learned_version`` is the snapshot that first
learned the decisions (None: not learned yet), so the decisions a snapshot had learned when it chose
are the cells with ``learned_version`` at most its version; the decision rows store no predicted
reward, so the monitor rebuilds each snapshot's per-arm posterior from them
(:mod:`experiments.drift_block`).

Two ``GROUP BY`` queries, written once here: the decisions' counts, and the attributed rewards joined
to their decisions. Fallback decisions (holdout, ineligible, paused) are not the policy's and are left
out. No row leaves the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.store import decisions_table as D
from experiments.store.summaries import attribution

_GROUP = ("day", "policy_version", "learned_version", "arm")


@dataclass(frozen=True)
class DriftCell:
    """The learnable decisions of one (day, policy version, learned version, arm) and their rewards."""

    day: date
    policy_version: int | None
    learned_version: int | None
    arm: int
    decisions: int
    reward_sum: float
    reward_sum_squares: float


@dataclass(frozen=True)
class DriftLog:
    """The cells of an experiment's current version, and what judging them needs.

    ``now`` is the service's clock when the cells were read (naive UTC, as stored); ``window_hours``
    the reward window: a day is judged once the windows of all its decisions have closed;
    ``arm_to_variants`` each arm's variant per slot.
    """

    key: str
    design: str
    window_hours: float
    now: datetime
    cells: tuple[DriftCell, ...]
    arm_to_variants: tuple[dict[str, str], ...] = ()


def _as_date(day: Any) -> date:
    return date.fromisoformat(day) if isinstance(day, str) else day


def decision_counts(compiled: CompiledExperiment) -> Select[Any]:
    """The learnable decisions of the version, counted per (day, policy version, learned version, arm)."""
    return (
        select(*[D.c[g] for g in _GROUP], func.count().label("n"))
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version,
               D.c.fallback.is_(False))
        .group_by(*[D.c[g] for g in _GROUP])
    )


def read_drift_cells(
    conn: Connection, compiled: CompiledExperiment, *, include_machine: bool = False
) -> tuple[DriftCell, ...]:
    """Every cell of the version (module docstring), ordered by day, policy version, learned version, arm."""
    att = attribution(compiled, include_machine=include_machine)
    per_decision = (
        select(*[D.c[g] for g in _GROUP], att.reward.label("r"))
        .select_from(att.sub.join(D, D.c.id == att.sub.c.decision_id))
        .where(att.sub.c.fallback.is_(False))
        .subquery("drift_rewards")
    )
    c = per_decision.c
    sums_query = (
        select(*[c[g] for g in _GROUP], func.sum(c.r).label("s"), func.sum(c.r * c.r).label("ss"))
        .group_by(*[c[g] for g in _GROUP])
    )
    sums = {tuple(row[:4]): (float(row.s or 0.0), float(row.ss or 0.0)) for row in conn.execute(sums_query)}
    cells = []
    for row in conn.execute(decision_counts(compiled)):
        s, ss = sums.get(tuple(row[:4]), (0.0, 0.0))
        cells.append(DriftCell(
            _as_date(row.day), None if row.policy_version is None else int(row.policy_version),
            None if row.learned_version is None else int(row.learned_version), int(row.arm), int(row.n),
            s, ss,
        ))
    cells.sort(key=lambda x: (x.day, x.policy_version or 0, x.learned_version or 0, x.arm))
    return tuple(cells)
