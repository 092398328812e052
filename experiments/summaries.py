"""Reward attribution and summary statistics, computed by SQL aggregation in the database.

Per decision, a subquery over its attributed outcomes (inside the reward window, not machine-made)
gives, for each event type the spec knows, whether at least one such event arrived, and the sum of the
``value`` of the spec's value event. The reward of a decision is
``sum_t weight_t * [any event of type t] + sum(values)``; decisions without outcomes earn 0. Arm,
fallback and daily statistics are ``GROUP BY`` queries over decisions joined to that subquery, so only
one row per group leaves the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, func, literal, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.store import decisions_table as D
from experiments.store import outcomes_table as O


def event_types(compiled: CompiledExperiment) -> list[str]:
    """The event types counted per decision: rewarded ones, the value event, then guardrails."""
    reward = compiled.spec.reward
    names = list(reward.events) + ([reward.value] if reward.value else []) + list(reward.guardrails)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class _Attribution:
    sub: Any
    types: list[str]
    reward: Any  # SQL expression of a decision's reward (0 without outcomes)
    flags: list[Any]  # SQL expressions, one 0/1 flag per type


def _attribution(compiled: CompiledExperiment) -> _Attribution:
    spec = compiled.spec
    types = event_types(compiled)
    columns = [O.c.decision_id]
    for j, name in enumerate(types):
        columns.append(func.max(case((O.c.type == name, 1), else_=0)).label(f"e{j}"))
    value_type = spec.reward.value or ""
    columns.append(
        func.sum(case((O.c.type == value_type, func.coalesce(O.c.value, 0.0)), else_=0.0)).label("value_sum")
    )
    sub = (
        select(*columns)
        .where(
            O.c.experiment_key == spec.key,
            O.c.version == compiled.version,
            O.c.attributed.is_(True),
            O.c.type.in_(types),
        )
        .group_by(O.c.decision_id)
        .subquery("attributed")
    )
    flags = [func.coalesce(sub.c[f"e{j}"], 0) for j in range(len(types))]
    reward: Any = cast(func.coalesce(sub.c.value_sum, 0.0), Float)
    for j, name in enumerate(types):
        weight = spec.reward.events.get(name)
        if weight:
            reward = reward + flags[j] * literal(float(weight), Float)
    return _Attribution(sub, types, reward, flags)


def _grouped(compiled: CompiledExperiment, att: _Attribution, *group: Any) -> Select[Any]:
    return (
        select(
            *group,
            func.count().label("n"),
            func.sum(att.reward).label("reward_sum"),
            func.sum(att.reward * att.reward).label("reward_sum_squares"),
            *[func.sum(flag).label(f"c{j}") for j, flag in enumerate(att.flags)],
        )
        .select_from(D.outerjoin(att.sub, att.sub.c.decision_id == D.c.id))
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version)
        .group_by(*group)
    )


@dataclass(frozen=True)
class GroupStats:
    """Aggregates of one group of decisions."""

    decisions: int
    reward_sum: float
    reward_sum_squares: float
    event_counts: dict[str, int]


def _stats(row: Any, types: Sequence[str]) -> GroupStats:
    m = row._mapping
    return GroupStats(
        decisions=int(m["n"]),
        reward_sum=float(m["reward_sum"] or 0.0),
        reward_sum_squares=float(m["reward_sum_squares"] or 0.0),
        event_counts={t: int(m[f"c{j}"] or 0) for j, t in enumerate(types)},
    )


def arm_stats(conn: Connection, compiled: CompiledExperiment) -> dict[int, GroupStats]:
    """Learnable decisions grouped by arm (combination index)."""
    att = _attribution(compiled)
    query = _grouped(compiled, att, D.c.arm).where(D.c.fallback.is_(False))
    return {int(row.arm): _stats(row, att.types) for row in conn.execute(query)}


def fallback_stats(conn: Connection, compiled: CompiledExperiment) -> dict[str, GroupStats]:
    """Fallback decisions grouped by reason (holdout, ineligible, ...)."""
    att = _attribution(compiled)
    query = _grouped(compiled, att, D.c.reason).where(D.c.fallback.is_(True))
    return {str(row.reason): _stats(row, att.types) for row in conn.execute(query)}


def daily_stats(conn: Connection, compiled: CompiledExperiment) -> list[tuple[Any, int, GroupStats]]:
    """Learnable decisions grouped by UTC day and arm: ``(day, arm, stats)``, by day then arm."""
    att = _attribution(compiled)
    query = _grouped(compiled, att, D.c.day, D.c.arm).where(D.c.fallback.is_(False))
    query = query.order_by(D.c.day, D.c.arm)
    return [(row.day, int(row.arm), _stats(row, att.types)) for row in conn.execute(query)]


def excluded_counts(conn: Connection, compiled: CompiledExperiment) -> tuple[int, int]:
    """Outcomes stored but left out: ``(machine-made, outside the reward window)``."""
    query = select(
        func.sum(case((O.c.machine.is_(True), 1), else_=0)),
        func.sum(case((and_(O.c.machine.is_(False), O.c.attributed.is_(False)), 1), else_=0)),
    ).where(O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version)
    machine, late = conn.execute(query).one()
    return int(machine or 0), int(late or 0)


def decision_rewards(compiled: CompiledExperiment) -> Select[Any]:
    """Per learnable decision of the version: id, arm, propensity, context, variants, time and reward."""
    att = _attribution(compiled)
    return (
        select(
            D.c.id, D.c.arm, D.c.propensity, D.c.context, D.c.variants, D.c.created_at,
            att.reward.label("reward"),
        )
        .select_from(D.outerjoin(att.sub, att.sub.c.decision_id == D.c.id))
        .where(
            D.c.experiment_key == compiled.spec.key,
            D.c.version == compiled.version,
            D.c.fallback.is_(False),
        )
        .order_by(D.c.created_at, D.c.id)
    )
