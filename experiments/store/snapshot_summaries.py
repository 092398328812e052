"""What the pages show of a policy snapshot, kept in its row so that no page restores a state or
scans the log for it.

- ``arm_probabilities``: a bandit design's distribution over the arms in the snapshot's state,
  :func:`chart_probabilities`, written with the state (a snapshot never changes);
- ``learned_reward``: the total reward the spec version's policy has learned from up to the snapshot,
  :func:`experiments.store.summaries.learned_reward` over the log. The learning transaction that stores
  a snapshot adds what it learned to its predecessor's: the reward of each decision it learns, and for
  each decision it revises the reward with the new outcomes minus the reward before
  (:func:`experiments.rewards.decision_reward`, the rule the SQL applies, on the rows it marks learned),
  so the latest snapshot of a spec version holds the total the full scan gives, whatever the size of
  the log (up to the order in which floating-point sums add).

:func:`rebuild_snapshot_summaries` recomputes both from the states and the log: the migration that
added the columns fills existing stores with it, and a bulk load that bypasses the learner calls it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bandit import PolicyError, load_policy
from experiments.compiled import CompiledExperiment, compile_experiment
from experiments.spec import ExperimentSpec
from experiments.store.summaries import learned_reward
from experiments.store.tables import snapshots_table as S
from experiments.store.tables import versions_table as V


def chart_probabilities(design: str, state: bytes) -> list[float] | None:
    """``probabilities(1)[0]`` of the policy restored from ``state`` when ``design`` is ``"bandit"``;
    None for other designs (a contextual policy's distribution depends on the recipient) or a state
    that cannot be read."""
    if design != "bandit":
        return None
    try:
        return [float(p) for p in load_policy(state).probabilities(1)[0]]
    except (PolicyError, ValueError):
        return None


def recorded_learned_reward(conn: Connection, key: str, spec_version: int) -> float:
    """The reward learned from under spec version ``spec_version`` of ``key``, as its latest snapshot
    records it (0 without a snapshot: nothing was learned)."""
    value = conn.execute(
        select(S.c.learned_reward)
        .where(S.c.experiment_key == key, S.c.spec_version == spec_version)
        .order_by(S.c.version.desc())
        .limit(1)
    ).scalar()
    return float(value or 0.0)


def _latest_per_spec_version(conn: Connection) -> list[Any]:
    """``(experiment_key, spec_version, version)`` of the latest snapshot of every spec version."""
    return conn.execute(
        select(S.c.experiment_key, S.c.spec_version, func.max(S.c.version).label("version"))
        .group_by(S.c.experiment_key, S.c.spec_version)
    ).all()


def rebuild_snapshot_summaries(conn: Connection) -> int:
    """Recompute every snapshot's ``arm_probabilities`` from its state, and the ``learned_reward`` of
    the latest snapshot of every spec version from the log (the full scan); older snapshots' learned
    reward, which nothing reads, is left as it is. Return the snapshots written.

    Reads one state at a time (bounded memory); the spec of each version is compiled once.
    """
    compiled: dict[tuple[str, int], CompiledExperiment] = {}

    def compiled_of(key: str, version: int) -> CompiledExperiment:
        if (key, version) not in compiled:
            text = conn.execute(select(V.c.spec).where(V.c.key == key, V.c.version == version)).scalar_one()
            compiled[(key, version)] = compile_experiment(ExperimentSpec.model_validate_json(text), version)
        return compiled[(key, version)]

    ids = conn.execute(select(S.c.id, S.c.experiment_key, S.c.spec_version).order_by(S.c.id)).all()
    for row_id, key, spec_version in ids:
        state = conn.execute(select(S.c.state).where(S.c.id == row_id)).scalar_one()
        design = compiled_of(key, spec_version).spec.design.type
        conn.execute(update(S).where(S.c.id == row_id)
                     .values(arm_probabilities=chart_probabilities(design, bytes(state))))
    for key, spec_version, version in _latest_per_spec_version(conn):
        total = learned_reward(conn, compiled_of(key, spec_version))
        conn.execute(update(S).where(S.c.experiment_key == key, S.c.version == version)
                     .values(learned_reward=total))
    return len(ids)
