"""One step of the learning loop: learn a batch of mature decisions in one transaction.

The step reads the latest policy snapshot, takes the oldest learnable decisions that are not learned
yet and older than the cutoff, computes their rewards in SQL, updates the policy, stores it as the
next snapshot version (unique per experiment) and marks the decisions learned, all in the caller's
transaction. Killed at any point, the transaction rolls back and nothing is half learned; two learners
cannot both commit the same next version, so no decision is learned twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bandit import load_policy
from experiments.assignment import CompiledExperiment, policy_context
from experiments.errors import Conflict
from experiments.store import decisions_table, outcomes_table, snapshots_table
from experiments.summaries import rewards_of, unlearned_decisions

IN_CHUNK = 1000


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    """``items`` in consecutive pieces of at most ``size`` (for IN lists)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def latest_snapshot(conn: Connection, key: str) -> Any:
    """The latest policy snapshot row of an experiment, or None."""
    return conn.execute(
        select(snapshots_table)
        .where(snapshots_table.c.experiment_key == key)
        .order_by(snapshots_table.c.version.desc())
        .limit(1)
    ).first()


def learn_one_batch(
    conn: Connection, compiled: CompiledExperiment, cutoff: datetime, batch_size: int, now: datetime
) -> tuple[int, int]:
    """Learn up to ``batch_size`` decisions made before ``cutoff``; return ``(policy version, learned)``.

    ``cutoff`` and ``now`` are naive UTC, as stored.
    """
    key = compiled.spec.key
    snap = latest_snapshot(conn, key)
    if snap is None or snap.spec_version != compiled.version:
        raise Conflict(f"experiment {key!r}: no policy snapshot for spec version {compiled.version}")
    rows = conn.execute(unlearned_decisions(compiled, cutoff, batch_size)).all()
    if not rows:
        return snap.version, 0
    ids = [r.id for r in rows]
    id_to_reward: dict[str, float] = {}
    for chunk in chunks(ids):
        id_to_reward.update(rewards_of(conn, compiled, chunk))
    policy = load_policy(bytes(snap.state))
    batch: Any = (
        [policy_context(compiled, r.context or {}) for r in rows]
        if compiled.spec.design.type == "contextual"
        else len(rows)
    )
    policy.update(
        batch,
        np.array([r.arm for r in rows], dtype=np.int64),
        np.array([id_to_reward[i] for i in ids], dtype=np.float64),
        np.array([r.propensity for r in rows], dtype=np.float64),
    )
    cursor = conn.execute(
        select(func.max(outcomes_table.c.id)).where(outcomes_table.c.experiment_key == key)
    ).scalar()
    new_version = snap.version + 1
    conn.execute(
        snapshots_table.insert().values(
            experiment_key=key,
            version=new_version,
            spec_version=compiled.version,
            state=policy.to_bytes(),
            cursor=cursor or 0,
            learned_decisions=snap.learned_decisions + len(rows),
            created_at=now,
        )
    )
    for chunk in chunks(ids):
        conn.execute(
            update(decisions_table).where(decisions_table.c.id.in_(chunk)).values(learned_version=new_version)
        )
    return new_version, len(rows)
