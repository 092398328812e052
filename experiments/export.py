"""The decision log of an experiment for offline replay, read in chunks so memory stays bounded.

Decisions are read oldest first with the database cursor fetching ``chunk_rows`` rows at a time
(``yield_per``: a server-side cursor on PostgreSQL); the reward of each chunk's decisions is one
aggregation query over their attributed outcomes (:func:`experiments.store.summaries.rewards_of`), so no
query ever loads the whole log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.models import LoggedDecision
from experiments.send_time import SEND_TIME_SLOT
from experiments.store import decisions_table as D
from experiments.store import from_db_time
from experiments.store.summaries import learnable_decisions, rewards_of


@dataclass(frozen=True)
class LogExport:
    """What an export of the decision log will hold.

    Attributes
    ----------
    key : str
    version : int
        The spec version whose decisions are exported.
    rows : int
        Learnable decisions when asked (decisions made later come after them).
    arms : list of dict
        The variant id per slot of each arm, in arm order.
    """

    key: str
    version: int
    rows: int
    arms: list[dict[str, str]]


#: Decisions per chunk: also the number of ids in one reward query (well under SQLite's bound).
EXPORT_CHUNK_ROWS = 5000


def count_learnable(conn: Connection, compiled: CompiledExperiment) -> int:
    """How many learnable decisions (not fallbacks) the version has."""
    query = select(func.count()).where(
        D.c.experiment_key == compiled.spec.key,
        D.c.version == compiled.version,
        D.c.fallback.is_(False),
    )
    return int(conn.execute(query).scalar_one())


def arm_variants(compiled: CompiledExperiment) -> list[dict[str, str]]:
    """The variant id per slot of every arm, in arm order."""
    return [compiled.arm_variants(arm) for arm in range(compiled.n_arms)]


def logged_decision(row: Any, reward: float) -> LoggedDecision:
    """A row of :func:`experiments.store.summaries.learnable_decisions` with its reward."""
    return LoggedDecision(
        decision_id=row.id,
        context=row.context,
        arm=int(row.arm),
        variants=dict(row.variants),
        propensity=float(row.propensity),
        reward=reward,
        created_at=from_db_time(row.created_at),
        send_time_propensity=row.send_time_propensity,
    )


def iter_logged_decisions(
    conn: Connection, compiled: CompiledExperiment, chunk_rows: int = EXPORT_CHUNK_ROWS
) -> Iterator[list[LoggedDecision]]:
    """The version's learnable decisions with their rewards, oldest first, ``chunk_rows`` at a time."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows: must be at least 1, got {chunk_rows}")
    result = conn.execution_options(yield_per=chunk_rows).execute(learnable_decisions(compiled))
    try:
        for rows in result.partitions():
            id_to_reward = rewards_of(conn, compiled, [r.id for r in rows])
            yield [logged_decision(r, id_to_reward[r.id]) for r in rows]
    finally:
        result.close()


def send_time_records(decisions: list[LoggedDecision]) -> list[dict[str, Any]]:
    """The decisions as logged sends of the send-time choice alone, for replaying a timing policy: the
    chosen hour (``"09:00"``) as the action and its own logged probability as the propensity (the
    combination's propensity also holds the other slots' draws)."""
    return [
        {"context": d.context, "action": d.variants.get(SEND_TIME_SLOT), "propensity": d.send_time_propensity,
         "reward": d.reward}
        for d in decisions
    ]
