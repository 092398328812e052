"""Reward attribution and summary statistics, computed by SQL aggregation in the database.

Per decision, a subquery over its attributed outcomes (inside the reward window, and not machine-made
unless machine events are asked for) gives, for each event type the spec knows, whether at least one
such event arrived, and the sum of the ``value`` of the spec's value-carrying events. The reward of a
decision is ``sum_t weight_t * [any event of type t] + sum(values)``; decisions without outcomes earn 0. Arm,
fallback and daily statistics are each a ``GROUP BY`` of rewards and event flags summed over the
decisions that have outcomes (the covering index ``ix_outcomes_summary`` feeds the per-decision
subquery in order), beside the decision counts. Outcome rows carry their decision's arm, day, reason
and fallback flag (a decision never changes), so no query joins and only one row per group leaves the
database.

The decisions are counted once per summary, by :func:`decision_groups`: one ``GROUP BY`` over the
columns of the covering index ``ix_decisions_summary``, in its order, so the database reads that
index alone, in order (no table rows, no sort); the arm, fallback and daily counts are sums of its
groups (integers, so exactly the counts of their own ``GROUP BY``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, func, literal, or_, select
from sqlalchemy.engine import Connection

from analysis.stats import SampleStats
from experiments.assignment import CompiledExperiment
from experiments.store.tables import decisions_table as D
from experiments.store.tables import outcomes_table as O


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
    decision_ids: Sequence[str] | None = None,
    include_machine: bool = False,
    learned_only: bool = False,
) -> _Attribution:
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
        .where(
            O.c.experiment_key == spec.key,
            O.c.version == compiled.version,
            O.c.attributed.is_(True),
            O.c.type.in_(types),
        )
        .group_by(*[O.c[name] for name in _GROUP_COLUMNS])
    )
    if not include_machine:
        sub = sub.where(O.c.machine.is_(False))
    if decision_ids is not None:
        sub = sub.where(O.c.decision_id.in_(list(decision_ids)))
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


def _outcome_sums(
    compiled: CompiledExperiment, att: _Attribution, fallback: bool, group: Sequence[str]
) -> Select[Any]:
    # outcome rows carry their decision's arm, day, reason and fallback flag, so no join is needed:
    # decisions without outcomes add nothing to these sums
    return (
        select(
            *[att.sub.c[g] for g in group],
            func.sum(att.reward).label("reward_sum"),
            func.sum(att.reward * att.reward).label("reward_sum_squares"),
            func.sum(att.reward * att.reward * att.reward).label("reward_sum_cubes"),
            *[func.sum(flag).label(f"c{j}") for j, flag in enumerate(att.flags)],
        )
        .where(att.sub.c.fallback.is_(fallback))
        .group_by(*[att.sub.c[g] for g in group])
    )


#: The columns :func:`decision_groups` groups by, in the order of the index ``ix_decisions_summary``.
SCAN_COLUMNS = ("fallback", "reason", "arm", "day", "policy_version")


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


def decision_groups(conn: Connection, compiled: CompiledExperiment) -> list[DecisionGroup]:
    """Every decision of the version counted in one pass, grouped by :data:`SCAN_COLUMNS`."""
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


def _counts_of(
    groups: Sequence[DecisionGroup], fallback: bool, group: Sequence[str]
) -> dict[tuple[Any, ...], tuple[int, int]]:
    key_to_counts: dict[tuple[Any, ...], tuple[int, int]] = {}
    for g in groups:
        if g.fallback is fallback:
            key = tuple(getattr(g, name) for name in group)
            n, explored = key_to_counts.get(key, (0, 0))
            key_to_counts[key] = (n + g.decisions, explored + g.explored)
    return dict(sorted(key_to_counts.items()))


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


def _grouped(
    conn: Connection,
    compiled: CompiledExperiment,
    fallback: bool,
    group: Sequence[str],
    include_machine: bool = False,
    groups: Sequence[DecisionGroup] | None = None,
) -> dict[tuple[Any, ...], GroupStats]:
    att = attribution(compiled, include_machine=include_machine)
    width = len(group)
    query = _outcome_sums(compiled, att, fallback, group)
    sums = {tuple(row[:width]): row._mapping for row in conn.execute(query)}
    if groups is None:
        groups = decision_groups(conn, compiled)
    out = {}
    for key, (n, explored) in _counts_of(groups, fallback, group).items():
        out[key] = group_stats(n, sums.get(key), att.types, explored)
    return out


def arm_stats(
    conn: Connection,
    compiled: CompiledExperiment,
    groups: Sequence[DecisionGroup] | None = None,
    *,
    include_machine: bool = False,
) -> dict[int, GroupStats]:
    """Learnable decisions grouped by arm (combination index); ``groups``: :func:`decision_groups`, if
    already read."""
    grouped = _grouped(conn, compiled, False, ["arm"], include_machine, groups)
    return {int(k[0]): v for k, v in grouped.items()}


def fallback_stats(
    conn: Connection,
    compiled: CompiledExperiment,
    groups: Sequence[DecisionGroup] | None = None,
    *,
    include_machine: bool = False,
) -> dict[str, GroupStats]:
    """Fallback decisions grouped by reason (holdout, ineligible, ...)."""
    grouped = _grouped(conn, compiled, True, ["reason"], include_machine, groups)
    return {str(k[0]): v for k, v in grouped.items()}


def daily_stats(
    conn: Connection,
    compiled: CompiledExperiment,
    groups: Sequence[DecisionGroup] | None = None,
    *,
    include_machine: bool = False,
) -> list[tuple[Any, int, GroupStats]]:
    """Learnable decisions grouped by UTC day and arm: ``(day, arm, stats)``, by day then arm."""
    grouped = _grouped(conn, compiled, False, ["day", "arm"], include_machine, groups)
    return [(day, int(arm), grouped[(day, arm)]) for day, arm in sorted(grouped)]


@dataclass(frozen=True)
class ExcludedCounts:
    """Outcomes of a version that results may leave out, by why.

    ``machine_in_window`` and ``machine_late`` are machine-made events inside and after the reward
    window; ``late`` are the other events after the window.
    """

    machine_in_window: int
    machine_late: int
    late: int


def excluded_counts(conn: Connection, compiled: CompiledExperiment) -> ExcludedCounts:
    """Count the outcomes that are machine-made or outside the reward window, in one query."""
    query = select(
        func.sum(case((and_(O.c.machine.is_(True), O.c.attributed.is_(True)), 1), else_=0)),
        func.sum(case((and_(O.c.machine.is_(True), O.c.attributed.is_(False)), 1), else_=0)),
        func.sum(case((and_(O.c.machine.is_(False), O.c.attributed.is_(False)), 1), else_=0)),
    ).where(O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version)
    in_window, machine_late, late = conn.execute(query).one()
    return ExcludedCounts(int(in_window or 0), int(machine_late or 0), int(late or 0))


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


