"""The learning loop's reads and writes of the log: which decisions and outcomes are still to learn,
the outcomes that made a learned reward, the marks that record what a batch learned, and the policy
snapshot it stores. The orchestration (what is learned when, and how) is :mod:`experiments.learning`'s
and :mod:`experiments.delayed_learning`'s; each query is written here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, null, or_, select, update
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.store.id_lists import column_in, id_pages, rows_by_ids
from experiments.store.repository import chunks
from experiments.store.rollups import record_learned
from experiments.store.summaries import outcome_counts
from experiments.store.tables import OUTCOME_PENDING
from experiments.store.tables import decisions_table as D
from experiments.store.tables import outcomes_table as O

#: ``outcomes.after_learning`` of a late outcome revised into the policy, and of one left out because
#: the policy cannot revise.
REVISED = "revised"
NOT_LEARNABLE = "not_learnable"
#: When a decision's email went out: its scheduled ``send_at``, else when it was made.
SENT = func.coalesce(D.c.send_at, D.c.created_at)


def _pending(compiled: CompiledExperiment) -> Any:
    """Outcomes of the version still to learn (the predicate of the partial index)."""
    return and_(O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version, OUTCOME_PENDING)


def pending_outcomes(conn: Connection, compiled: CompiledExperiment) -> int:
    """How many attributed outcomes of learnable decisions of the version are not learned yet."""
    return int(conn.execute(select(func.count()).where(_pending(compiled))).scalar_one())


def unlearned_decisions(conn: Connection, compiled: CompiledExperiment, cutoff: datetime, limit: int
                        ) -> list[Any]:
    """The oldest ``limit`` learnable decisions not yet learned, made (and sent, when ``send_at`` is
    later) before ``cutoff``: ``id, arm, propensity, context, created_at, sent`` (``context`` None
    unless the design is contextual, the only one that learns from it: not parsed for nothing)."""
    contextual = compiled.spec.design.type == "contextual"
    context = D.c.context if contextual else null().label("context")
    return conn.execute(
        select(D.c.id, D.c.arm, D.c.propensity, context, D.c.created_at, SENT.label("sent"))
        .where(
            D.c.experiment_key == compiled.spec.key,
            D.c.version == compiled.version,
            D.c.fallback.is_(False),
            D.c.learned_version.is_(None),
            D.c.created_at <= cutoff,
            or_(D.c.send_at.is_(None), D.c.send_at <= cutoff),  # a later send matures later
        )
        .order_by(D.c.created_at, D.c.id)
        .limit(limit)
    ).all()


def late_outcomes(conn: Connection, compiled: CompiledExperiment, cutoff: datetime, limit: int) -> list[Any]:
    """Up to ``limit`` outcomes not learned yet whose decision is learned as a whole trial, oldest row
    first (a decision learned as part of one, ``learned_weight`` set, is revised by
    :mod:`experiments.delayed_learning`): ``id, decision_id, type, value``.

    A learned decision was made before the cutoff of the run that learned it, so no later than the
    day of ``cutoff``: the day bound keeps the scan off the outcomes of recent, unlearned decisions.
    """
    return conn.execute(
        select(O.c.id, O.c.decision_id, O.c.type, O.c.value)
        .join(D, D.c.id == O.c.decision_id)
        .where(_pending(compiled), O.c.day <= cutoff.date(), D.c.learned_version.is_not(None),
               D.c.learned_weight.is_(None))
        .order_by(O.c.id)
        .limit(limit)
    ).all()


def after_learning_counts(conn: Connection, compiled: CompiledExperiment) -> tuple[int, int]:
    """Outcomes of the version that arrived after their decision was learned: ``(revised, not learnable)``."""
    counts = outcome_counts(conn, compiled, O.c.after_learning, O.c.after_learning.is_not(None))
    return counts.get(REVISED, 0), counts.get(NOT_LEARNABLE, 0)


def outcomes_of(conn: Connection, key: str, decision_ids: Sequence[str], *, learned: bool) -> list[Any]:
    """Attributed outcomes of the decisions (``id, decision_id, type, value``): the ones learned into
    their reward, or (``learned`` False) the unlearned ones."""
    state = (
        and_(
            O.c.learned_version.is_not(None),
            or_(O.c.after_learning.is_(None), O.c.after_learning == REVISED),
        )
        if learned
        else O.c.learned_version.is_(None)
    )
    query = select(O.c.id, O.c.decision_id, O.c.type, O.c.value).where(
        O.c.experiment_key == key,
        column_in(conn, O.c.decision_id),
        O.c.attributed.is_(True),
        O.c.machine.is_(False),
        state,
    )
    return list(rows_by_ids(conn, query, decision_ids))


def decisions_by_id(conn: Connection, decision_ids: Sequence[str]) -> list[Any]:
    """The listed decisions (``id, arm, context, created_at, sent``), by id."""
    rows: list[Any] = []
    for chunk in chunks(decision_ids):
        rows.extend(
            conn.execute(
                select(D.c.id, D.c.arm, D.c.context, D.c.created_at, SENT.label("sent"))
                .where(D.c.id.in_(chunk)).order_by(D.c.id)
            )
        )
    return rows


def weighted_decisions(conn: Connection, compiled: CompiledExperiment, *, learned: bool,
                       cutoff: datetime) -> list[Any]:
    """Learnable decisions of the version learned as part of a trial (``learned_weight`` set), or
    (``learned`` False) the ones not learned yet that the ordinary learning leaves (made or sent after
    ``cutoff``: :func:`experiments.store.summaries.unlearned_decisions`), in order of their send: ``id,
    arm, propensity, context, created_at, sent, learned_weight``."""
    where = (D.c.learned_weight.is_not(None) if learned
             else (D.c.learned_version.is_(None)) & ((D.c.created_at > cutoff) | (SENT > cutoff)))
    return conn.execute(
        select(D.c.id, D.c.arm, D.c.propensity, D.c.context, D.c.created_at, SENT.label("sent"),
               D.c.learned_weight)
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version,
               D.c.fallback.is_(False), where)
        .order_by(SENT, D.c.id)
    ).all()


def first_reward_events(conn: Connection, compiled: CompiledExperiment, types: Sequence[str], now: datetime,
                        limit: int) -> list[Any]:
    """The version's latest ``limit`` learnable decisions sent by ``now``, newest first, each with the
    time of its first attributed event of ``types`` (``sent, first``; ``first`` None without one)."""
    first = (
        select(O.c.decision_id, func.min(O.c.time).label("first"))
        .where(O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version,
               O.c.attributed.is_(True), O.c.machine.is_(False), O.c.type.in_(list(types)))
        .group_by(O.c.decision_id)
        .subquery("first_events")
    )
    return conn.execute(
        select(SENT.label("sent"), first.c.first)
        .select_from(D.outerjoin(first, first.c.decision_id == D.c.id))
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version,
               D.c.fallback.is_(False), SENT <= now)
        .order_by(SENT.desc())
        .limit(limit)
    ).all()


# ---------------------------------------------------------------------------------- writes


def _mark(conn: Connection, table: Any, ids: Sequence[Any], **values: Any) -> None:
    for chunk in chunks(ids):
        conn.execute(update(table).where(table.c.id.in_(chunk)).values(**values))


def mark_decisions(conn: Connection, ids: Sequence[str], version: int) -> None:
    """Record that snapshot ``version`` learned the decisions (and count them in the rollups); the ids
    bound as :mod:`experiments.store.id_lists` binds them (on PostgreSQL an array: an ``IN`` list of
    1,000 parameters cost more on the client than the update)."""
    record_learned(conn, ids, version)
    statement = update(D).where(column_in(conn, D.c.id)).values(learned_version=version)
    for page in id_pages(conn.dialect.name, ids):
        conn.execute(statement, {"ids": page})


def mark_outcomes(conn: Connection, ids: Sequence[int], version: int, after_learning: str | None = None
                  ) -> None:
    """Record that snapshot ``version`` learned the outcomes (a late one ``after_learning``
    :data:`REVISED` or :data:`NOT_LEARNABLE`)."""
    if after_learning is None:
        _mark(conn, O, ids, learned_version=version)
    else:
        _mark(conn, O, ids, learned_version=version, after_learning=after_learning)


def set_weights(conn: Connection, ids: Sequence[str], weights: Sequence[float | None], version: int | None
                ) -> None:
    """Record each decision's ``learned_weight`` (None for a whole trial) and, when ``version`` is
    given, the version that learned it (else ``learned_version`` stays as it was)."""
    params = [{"row_id": i, "w": w} for i, w in zip(ids, weights, strict=True)]
    values: dict[str, Any] = {"learned_weight": bindparam("w")}
    if version is not None:
        values["learned_version"] = version
        record_learned(conn, ids, version)
    if params:
        conn.execute(update(D).where(D.c.id == bindparam("row_id")).values(**values), params)
