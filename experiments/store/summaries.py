"""Reward attribution and summary statistics: what results read (the rollups), and the same computed
from the log in full by SQL aggregation (the reference the rollups are kept equal to).

Per decision, a subquery over its attributed outcomes (inside the reward window, and not machine-made
unless machine events are asked for) gives, for each event type the spec knows, whether at least one
such event arrived, and the sum of the ``value`` of the spec's value-carrying events. The reward of a
decision is ``sum_t weight_t * [any event of type t] + sum(values)``; decisions without outcomes earn 0.

Results group decisions by arm, fallback reason and day: sums of *cells*
(:mod:`experiments.store.cells`), the decisions of one (fallback, reason, arm, day, policy version).
By default the cells are the stored rollups (:func:`decision_groups`), kept in the transactions that
write the log (:mod:`experiments.store.rollups`), so a result reads a few rows per arm and day whatever
the size of the log. :func:`log_cells` computes the same cells from the log in full: the decisions
counted by one ``GROUP BY`` over the covering index ``ix_decisions_summary``, and the per-decision
attribution (fed in order by ``ix_outcomes_summary``) summed per cell. It is what ``include_machine``
reads (the rollups leave machine events out), what ``sendlab verify`` compares the rollups with, and
what rebuilds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Float, Select, and_, case, cast, func, literal, or_, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.store.cells import (
    SCAN_COLUMNS,
    DecisionGroup,
    ExcludedCounts,
    GroupStats,
    RollupCell,
    group_stats,
    grouped_stats,
)
from experiments.store.id_lists import id_match
from experiments.store.index_hints import seek_by_decision
from experiments.store.rollup_tables import (
    LATE,
    MACHINE_IN_WINDOW,
    MACHINE_LATE,
    UNCOUNTED_VALUE,
    stored_cells,
    stored_day_cells,
    stored_outcome_counts,
    stored_version_groups,
)
from experiments.store.tables import decisions_table as D
from experiments.store.tables import outcomes_table as O

__all__ = [
    "SCAN_COLUMNS", "DecisionGroup", "ExcludedCounts", "GroupStats", "RollupCell", "group_stats",
    "attribution", "event_types", "RewardRule", "reward_rule", "log_cells", "decision_groups",
    "summary_day_cells", "version_groups",
    "summary_cells", "arm_stats",
    "fallback_stats", "daily_stats", "excluded_counts", "log_excluded_counts", "log_outcome_counts",
    "rewards_of", "learned_reward", "learnable_decisions", "all_rewards", "outcome_counts",
    "apprentice_agreement",
]


def event_types(compiled: CompiledExperiment) -> list[str]:
    """The event types counted per decision: rewarded ones, the value-carrying ones, then guardrails."""
    reward = compiled.spec.reward
    names = list(reward.events) + reward.value_event_types + list(reward.guardrails)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class _Attribution:
    sub: Any
    types: list[str]
    reward: Any  # SQL expression of a decision's reward (0 without outcomes)
    flags: list[Any]  # SQL expressions, one 0/1 flag per type


_GROUP_COLUMNS = ("decision_id", "arm", "day", "reason", "fallback")


def attribution(
    compiled: CompiledExperiment,
    decision_ids: Sequence[str] | BindParameter[Any] | None = None,
    include_machine: bool = False,
    learned_only: bool = False,
) -> _Attribution:
    """The per-decision subquery of the version's attributed outcomes (see the module docstring).

    ``decision_ids`` (ids, or a bind parameter of them, :func:`experiments.store.id_lists.ids_parameter`)
    restricts it to those decisions of the version: then the outcomes are sought by
    ``(experiment_key, decision_id)`` (``ix_outcomes_experiment``) and the version is not a condition,
    as each outcome row carries its decision's version; a condition on it would let the planner scan the
    version's whole range of ``ix_outcomes_summary`` and filter the ids. SQLite, without statistics,
    scans the experiment's range of that index even so: it is told the index
    (:mod:`experiments.store.index_hints`).
    """
    spec = compiled.spec
    types = event_types(compiled)
    columns = [O.c[name] for name in _GROUP_COLUMNS]
    for j, name in enumerate(types):
        columns.append(func.max(case((O.c.type == name, 1), else_=0)).label(f"e{j}"))
    valued = spec.reward.value_event_types or [""]
    columns.append(
        func.sum(case((O.c.type.in_(valued), func.coalesce(O.c.value, 0.0)), else_=0.0)).label("value_sum")
    )
    sub = (
        select(*columns)
        .where(O.c.experiment_key == spec.key, O.c.attributed.is_(True), O.c.type.in_(types))
        .group_by(*[O.c[name] for name in _GROUP_COLUMNS])
    )
    if decision_ids is None:
        sub = sub.where(O.c.version == compiled.version)
    elif isinstance(decision_ids, BindParameter):  # an expanding list, or an array (PostgreSQL)
        sub = seek_by_decision(sub.where(id_match(O.c.decision_id, decision_ids)), O)
    else:
        sub = seek_by_decision(sub.where(O.c.decision_id.in_(list(decision_ids))), O)
    if not include_machine:
        sub = sub.where(O.c.machine.is_(False))
    if learned_only:  # the outcomes the policy learned: with their decision, or as a revision of it
        sub = sub.where(
            O.c.learned_version.is_not(None),
            or_(O.c.after_learning.is_(None), O.c.after_learning == "revised"),
        )
    sub = sub.subquery("attributed")
    flags = [sub.c[f"e{j}"] for j in range(len(types))]
    reward: Any = cast(sub.c.value_sum, Float)
    for j, name in enumerate(types):
        weight = spec.reward.events.get(name)
        if weight:
            reward = reward + flags[j] * literal(float(weight), Float)
    return _Attribution(sub, types, reward, flags)


@dataclass(frozen=True)
class RewardRule:
    """A decision's reward from its attributed outcomes, computed in Python as :func:`attribution`'s SQL
    computes it (the same operations on the same doubles, in the same order): the sum of the values of
    the ``valued`` types (a missing value counts 0), plus each rewarded type's weight (``weights``: its
    position among the version's :func:`event_types` and its weight) when its flag is set."""

    types: tuple[str, ...]
    valued: frozenset[str]
    weights: tuple[tuple[int, float], ...]

    def reward(self, value_sum: float, flags: Sequence[int]) -> float:
        reward = float(value_sum)
        for j, weight in self.weights:
            reward = reward + flags[j] * weight
        return reward


def reward_rule(compiled: CompiledExperiment) -> RewardRule:
    """The :class:`RewardRule` of the version."""
    reward = compiled.spec.reward
    types = event_types(compiled)
    weights = tuple((j, float(reward.events[t])) for j, t in enumerate(types) if reward.events.get(t))
    return RewardRule(tuple(types), frozenset(reward.value_event_types or [""]), weights)


def _cell_sums(att: _Attribution) -> Select[Any]:
    """The reward sums and event counts of the decisions with attributed outcomes, per cell.

    Outcome rows carry their decision's arm, day, reason and fallback flag; the policy version is the
    decision's, joined (decisions without outcomes add nothing to these sums).
    """
    keys = [att.sub.c.fallback, att.sub.c.reason, att.sub.c.arm, att.sub.c.day, D.c.policy_version]
    return (
        select(
            *keys,
            func.sum(att.reward).label("reward_sum"),
            func.sum(att.reward * att.reward).label("reward_sum_squares"),
            func.sum(att.reward * att.reward * att.reward).label("reward_sum_cubes"),
            *[func.sum(flag).label(f"c{j}") for j, flag in enumerate(att.flags)],
        )
        .select_from(att.sub.join(D, D.c.id == att.sub.c.decision_id))
        .group_by(*keys)
    )


def _log_groups(conn: Connection, compiled: CompiledExperiment) -> list[DecisionGroup]:
    """Every decision of the version counted in one pass over the log, grouped by :data:`SCAN_COLUMNS`
    (the covering index ``ix_decisions_summary``, read in order)."""
    query = (
        select(
            *[D.c[g] for g in SCAN_COLUMNS],
            func.count().label("n"),
            func.sum(case((D.c.explored.is_(True), 1), else_=0)).label("explored"),
            func.count(D.c.learned_version).label("learned"),
        )
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version)
        .group_by(*[D.c[g] for g in SCAN_COLUMNS])
    )
    return [
        DecisionGroup(bool(r.fallback), str(r.reason), int(r.arm), r.day,
                      None if r.policy_version is None else int(r.policy_version),
                      int(r.n), int(r.explored or 0), int(r.learned or 0))
        for r in conn.execute(query)
    ]


def log_cells(conn: Connection, compiled: CompiledExperiment, include_machine: bool = False
              ) -> list[RollupCell]:
    """The version's cells computed from the log in full (the reference the rollups are kept equal to,
    and what ``include_machine`` reads): the decisions counted per cell, and the attributed outcomes
    of each decision summed into its cell. Two passes over the log; in key order."""
    att = attribution(compiled, include_machine=include_machine)
    sums = {}
    for row in conn.execute(_cell_sums(att)):
        policy = None if row.policy_version is None else int(row.policy_version)
        sums[(bool(row.fallback), str(row.reason), int(row.arm), row.day, policy)] = row._mapping
    cells = []
    for g in _log_groups(conn, compiled):
        row = sums.get(g.key)
        if row is None:
            cells.append(RollupCell(**vars(g)))
            continue
        counts = {t: int(row[f"c{j}"] or 0) for j, t in enumerate(att.types)}
        cells.append(RollupCell(
            **vars(g), reward_sum=float(row["reward_sum"] or 0.0),
            reward_sum_squares=float(row["reward_sum_squares"] or 0.0),
            reward_sum_cubes=float(row["reward_sum_cubes"] or 0.0),
            event_counts={t: n for t, n in counts.items() if n},
        ))
    return sorted(cells, key=_cell_order)


def _cell_order(cell: DecisionGroup) -> tuple[Any, ...]:
    return (cell.fallback, cell.reason, cell.arm, cell.day, -1 if cell.policy_version is None
            else cell.policy_version)


def decision_groups(conn: Connection, compiled: CompiledExperiment) -> list[RollupCell]:
    """The version's cells as the rollups keep them (:mod:`experiments.store.rollups`): every decision
    counted per (fallback, reason, arm, day, policy version), with its rewards summed; a read of a few
    rows per arm and day, whatever the size of the log."""
    return stored_cells(conn, compiled.spec.key, compiled.version)


def summary_day_cells(conn: Connection, compiled: CompiledExperiment) -> list[RollupCell]:
    """The rollups' cells with decisions summed over policy versions by the database
    (:func:`experiments.store.rollup_tables.stored_day_cells`): what the arm, fallback and daily
    statistics sum, in rows per arm and day however many policy versions there are."""
    return stored_day_cells(conn, compiled.spec.key, compiled.version)


def version_groups(conn: Connection, compiled: CompiledExperiment) -> list[DecisionGroup]:
    """The rollups' decision counts per (fallback, reason, arm, policy version), summed over days by the
    database (:func:`experiments.store.rollup_tables.stored_version_groups`): what the learning
    summary reads."""
    return stored_version_groups(conn, compiled.spec.key, compiled.version)


def summary_cells(conn: Connection, compiled: CompiledExperiment, include_machine: bool = False
                  ) -> list[RollupCell]:
    """The cells results read: the rollups, or, with machine events included, :func:`log_cells` (the
    rollups leave machine events out, so that answer scans the log)."""
    return log_cells(conn, compiled, True) if include_machine else decision_groups(conn, compiled)


def _grouped(
    conn: Connection,
    compiled: CompiledExperiment,
    fallback: bool,
    group: Sequence[str],
    include_machine: bool,
    cells: Sequence[RollupCell] | None,
) -> dict[tuple[Any, ...], GroupStats]:
    if cells is None:
        cells = summary_cells(conn, compiled, include_machine)
    return grouped_stats(cells, event_types(compiled), fallback, group)


def arm_stats(
    conn: Connection,
    compiled: CompiledExperiment,
    cells: Sequence[RollupCell] | None = None,
    *,
    include_machine: bool = False,
) -> dict[int, GroupStats]:
    """Learnable decisions grouped by arm (combination index); ``cells``: :func:`summary_cells` (or
    :func:`log_cells`), if already read; else they are read (with ``include_machine``)."""
    grouped = _grouped(conn, compiled, False, ["arm"], include_machine, cells)
    return {int(k[0]): v for k, v in grouped.items()}


def fallback_stats(
    conn: Connection,
    compiled: CompiledExperiment,
    cells: Sequence[RollupCell] | None = None,
    *,
    include_machine: bool = False,
) -> dict[str, GroupStats]:
    """Fallback decisions grouped by reason (holdout, ineligible, ...)."""
    grouped = _grouped(conn, compiled, True, ["reason"], include_machine, cells)
    return {str(k[0]): v for k, v in grouped.items()}


def daily_stats(
    conn: Connection,
    compiled: CompiledExperiment,
    cells: Sequence[RollupCell] | None = None,
    *,
    include_machine: bool = False,
) -> list[tuple[Any, int, GroupStats]]:
    """Learnable decisions grouped by UTC day and arm: ``(day, arm, stats)``, by day then arm."""
    grouped = _grouped(conn, compiled, False, ["day", "arm"], include_machine, cells)
    return [(day, int(arm), grouped[(day, arm)]) for day, arm in sorted(grouped)]


def excluded_of(counts: Mapping[tuple[str, str], int]) -> ExcludedCounts:
    """The :class:`ExcludedCounts` of a version's outcome counts (per ``(kind, type)``)."""
    totals = dict.fromkeys((MACHINE_IN_WINDOW, MACHINE_LATE, LATE), 0)
    for (kind, _), n in counts.items():
        if kind in totals:
            totals[kind] += n
    return ExcludedCounts(totals[MACHINE_IN_WINDOW], totals[MACHINE_LATE], totals[LATE])


def excluded_counts(conn: Connection, compiled: CompiledExperiment) -> ExcludedCounts:
    """The outcomes that are machine-made or outside the reward window, as the rollups count them."""
    return excluded_of(stored_outcome_counts(conn, compiled.spec.key, compiled.version))


def log_excluded_counts(conn: Connection, compiled: CompiledExperiment) -> ExcludedCounts:
    """:func:`excluded_counts` from the log in full (:func:`log_outcome_counts`)."""
    return excluded_of(log_outcome_counts(conn, compiled))


def log_outcome_counts(conn: Connection, compiled: CompiledExperiment) -> dict[tuple[str, str], int]:
    """The version's outcome counts per ``(kind, event type)`` from the log in full (the reference of
    the stored ``rollup_counts``): machine-made ones inside and after the window, other late ones, and
    those carrying a value the reward does not count."""
    kind = case(
        (and_(O.c.machine.is_(True), O.c.attributed.is_(True)), MACHINE_IN_WINDOW),
        (O.c.machine.is_(True), MACHINE_LATE),
        (O.c.attributed.is_(False), LATE),
        else_="",
    )
    out: dict[tuple[str, str], int] = {}
    query = select(kind, O.c.type, func.count()).where(
        O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version
    ).group_by(kind, O.c.type)
    for k, t, n in conn.execute(query):
        if k:
            out[(str(k), str(t))] = int(n)
    valued = compiled.spec.reward.value_event_types
    uncounted = [O.c.type.not_in(valued)] if valued else []
    for t, n in outcome_counts(conn, compiled, O.c.type, O.c.value.is_not(None), *uncounted).items():
        out[(UNCOUNTED_VALUE, t)] = n
    return out


def rewards_of(
    conn: Connection, compiled: CompiledExperiment, decision_ids: Sequence[str]
) -> dict[str, float]:
    """The reward of each listed decision (0 for those without attributed outcomes)."""
    att = attribution(compiled, decision_ids)
    found = {row[0]: float(row[1]) for row in conn.execute(select(att.sub.c.decision_id, att.reward))}
    return {d: found.get(d, 0.0) for d in decision_ids}


def learned_reward(conn: Connection, compiled: CompiledExperiment) -> float:
    """The total reward the policy has learned from so far: each learned decision's reward from the
    outcomes it learned (with the decision, or later as a revision of its reward). Outcomes not learned
    yet, and those a policy that cannot revise (VW) left out, do not count.

    A full scan: the pages read the total the learning transaction records with each snapshot
    (:mod:`experiments.store.snapshot_summaries`), equal to it.
    """
    att = attribution(compiled, learned_only=True)
    query = select(func.sum(att.reward)).where(att.sub.c.fallback.is_(False))
    return float(conn.execute(query).scalar() or 0.0)


def learnable_decisions(compiled: CompiledExperiment) -> Select[Any]:
    """The learnable decisions of the version, oldest first: id, arm, propensity, context, variants, time
    and the send-time choice's own propensity."""
    return (
        select(D.c.id, D.c.arm, D.c.propensity, D.c.context, D.c.variants, D.c.created_at,
               D.c.send_time_propensity)
        .where(
            D.c.experiment_key == compiled.spec.key,
            D.c.version == compiled.version,
            D.c.fallback.is_(False),
        )
        .order_by(D.c.created_at, D.c.id)
    )


def all_rewards(conn: Connection, compiled: CompiledExperiment) -> dict[str, float]:
    """The reward of every decision of the version that has attributed outcomes (the others earn 0)."""
    att = attribution(compiled)
    return {row[0]: float(row[1]) for row in conn.execute(select(att.sub.c.decision_id, att.reward))}


def outcome_counts(conn: Connection, compiled: CompiledExperiment, column: Any, *conditions: Any
                   ) -> dict[str, int]:
    """The version's outcomes counted per value of ``column`` (of the outcomes table), over those
    where every one of ``conditions`` holds, by value."""
    query = (
        select(column, func.count())
        .where(O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version, *conditions)
        .group_by(column)
        .order_by(column)
    )
    return {str(value): int(n) for value, n in conn.execute(query)}


def apprentice_agreement(
    conn: Connection, compiled: CompiledExperiment, last: int | None = None
) -> tuple[int, float | None]:
    """How often the apprentice policy would have chosen as the incumbent did: ``(decisions, rate)``.

    The rate is the mean, over apprentice decisions of the version (or only the ``last`` ones), of the
    probability the policy gave the incumbent's combination: the expected share of agreeing draws.
    """
    inner = select(D.c.agreement).where(
        D.c.experiment_key == compiled.spec.key,
        D.c.version == compiled.version,
        D.c.fallback.is_(False),  # always so for apprentice decisions; it lets the index seek to them
        D.c.reason == "apprentice",
        D.c.agreement.is_not(None),
    )
    if last is not None:
        inner = inner.order_by(D.c.created_at.desc(), D.c.id.desc()).limit(last)
    sub = inner.subquery("apprentice")
    n, total = conn.execute(select(func.count(), func.sum(sub.c.agreement))).one()
    return int(n), (float(total) / int(n) if n else None)


# ---------------------------------------------------------------- by a context attribute


