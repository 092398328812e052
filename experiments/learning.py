"""One step of the learning loop: learn a batch of outcomes in one transaction, under a lock.

Learning is tracked per outcome (``outcomes.learned_version``), not by an id cursor. A batch, in one
transaction that first takes the experiment's learning lock (:func:`experiments.store.lock_for_learning`):

1. reads the latest policy snapshot;
2. takes up to ``batch_size`` mature decisions not learned yet (older than the cutoff), computes each
   reward from its attributed outcomes, updates the policy, and marks the decisions and exactly those
   outcomes learned;
3. once the mature decisions are all learned (fewer than ``batch_size`` left), takes up to
   ``batch_size`` *late* outcomes: attributed, not yet learned, of a decision learned before. If the
   policy can revise (:attr:`bandit.Policy.can_revise`), each such decision's reward is recomputed
   with them, by the spec's rules, and the policy revises the reward it learned (the reward over the
   decision's learned outcomes) into the new one; the outcomes are marked learned
   (``after_learning = "revised"``). A policy that cannot revise (Vowpal Wabbit) leaves them out, and
   they are marked ``not_learnable`` and counted in the experiment's summary;
4. stores the policy as the next snapshot version, with the reward learned from in all: the
   previous snapshot's, plus the rewards it learned the decisions with and the differences it revised
   (:mod:`experiments.store.snapshot_summaries`).

Killed at any point, the transaction rolls back and nothing is half learned; restarted, it finds the
same unlearned rows. Learners of one experiment take turns on the lock, so no outcome is learned
twice, and an outcome committed while a batch runs is simply late for the next one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from bandit import Policy, load_policy
from experiments.assignment import CompiledExperiment, policy_context
from experiments.errors import Conflict
from experiments.rewards import decision_reward
from experiments.store import insert_snapshot, lock_for_learning
from experiments.store.learning_log import (
    NOT_LEARNABLE,
    REVISED,
    decisions_by_id,
    late_outcomes,
    mark_decisions,
    mark_outcomes,
    outcomes_of,
    unlearned_decisions,
)
from experiments.store.repository import SnapshotRecord, latest_snapshot
from experiments.store.summaries import learned_reward

#: The origin of the times in days that policies which forget are given (``update(..., times=)``).
TIME_ORIGIN = datetime(1970, 1, 1)


@dataclass(frozen=True)
class BatchResult:
    """What one learning batch did.

    ``version`` is the policy version after the batch; ``decisions`` were learned with their outcomes,
    ``revised`` late outcomes were revised into the policy, ``not_learnable`` late outcomes were left
    out because the policy cannot revise; ``full`` is True when a batch limit was reached (there may
    be more to learn).
    """

    version: int
    decisions: int
    revised: int
    not_learnable: int
    full: bool


def decision_days(rows: Sequence[Any]) -> np.ndarray:
    """When each decision's email went out (``sent``: ``coalesce(send_at, created_at)``, naive UTC) in
    days since :data:`TIME_ORIGIN`, shape (n,).

    The ``times`` of ``update`` and ``revise``: policies that forget (``discount``, ``window_days``,
    :mod:`bandit.forgetting`) weight a row by its age behind the newest send learned, so a decision made
    ahead of a later send counts from that send.
    """
    day = timedelta(days=1)
    return np.array([(r.sent - TIME_ORIGIN) / day for r in rows], dtype=np.float64)


def _contexts(compiled: CompiledExperiment, rows: Sequence[Any]) -> Any:
    if compiled.spec.design.type == "contextual":
        return [policy_context(compiled, r.context or {}) for r in rows]
    return len(rows)


def _revise(conn: Connection, compiled: CompiledExperiment, policy: Policy, late: Sequence[Any]) -> float:
    """Revise each late outcome's decision from the reward it was learned with to the reward with them;
    return the learned reward gained (the sum of the differences)."""
    reward = compiled.spec.reward
    decision_to_late: dict[str, list[Any]] = defaultdict(list)
    for row in late:
        decision_to_late[row.decision_id].append(row)
    decision_to_learned: dict[str, list[Any]] = defaultdict(list)
    for row in outcomes_of(conn, compiled.spec.key, sorted(decision_to_late), learned=True):
        decision_to_learned[row.decision_id].append(row)
    rows, old, new = [], [], []
    gained = 0.0
    for decision in decisions_by_id(conn, sorted(decision_to_late)):
        learned = [(r.type, r.value) for r in decision_to_learned[decision.id]]
        before = decision_reward(reward, learned)
        after = decision_reward(reward, learned + [(r.type, r.value) for r in decision_to_late[decision.id]])
        if after != before:  # a second click, an open when clicks pay: nothing to revise
            rows.append(decision)
            old.append(before)
            new.append(after)
            gained += after - before
    if rows:
        policy.revise(
            _contexts(compiled, rows),
            np.array([r.arm for r in rows], dtype=np.int64),
            np.array(old, dtype=np.float64),
            np.array(new, dtype=np.float64),
            times=decision_days(rows),
        )
    return gained


def _learn_decisions(
    conn: Connection, compiled: CompiledExperiment, policy: Policy, rows: Sequence[Any]
) -> tuple[list[int], float]:
    """Update the policy with each decision's reward; return the ids of the outcomes that made them, and
    the sum of the rewards."""
    decision_to_events: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    outcome_ids = []
    for event in outcomes_of(conn, compiled.spec.key, [r.id for r in rows], learned=False):
        decision_to_events[event.decision_id].append((event.type, event.value))
        outcome_ids.append(event.id)
    rewards = [decision_reward(compiled.spec.reward, decision_to_events[r.id]) for r in rows]
    policy.update(
        _contexts(compiled, rows),
        np.array([r.arm for r in rows], dtype=np.int64),
        np.array(rewards, dtype=np.float64),
        np.array([r.propensity for r in rows], dtype=np.float64),
        times=decision_days(rows),
    )
    return outcome_ids, sum(rewards, 0.0)


def store_snapshot(
    conn: Connection, compiled: CompiledExperiment, snap: SnapshotRecord, policy: Policy, now: datetime, *,
    outcomes: int, decisions: int, reward: float,
) -> int:
    """Store ``policy`` as the version after ``snap`` that learned ``outcomes`` more outcomes,
    ``decisions`` more decisions and ``reward`` more reward; return the new version."""
    version = snap.version + 1
    # a snapshot stored before learned rewards were recorded: its total from the log, once
    before = snap.learned_reward if snap.learned_reward is not None else learned_reward(conn, compiled)
    insert_snapshot(conn, compiled.spec.key, version, compiled.version, policy.to_bytes(), now,
                    design=compiled.spec.design.type, learned_reward=before + reward,
                    cursor=snap.cursor + outcomes, learned_decisions=snap.learned_decisions + decisions)
    return version


def learn_one_batch(
    conn: Connection, compiled: CompiledExperiment, cutoff: datetime, batch_size: int, now: datetime
) -> BatchResult:
    """Learn up to ``batch_size`` decisions made before ``cutoff``, then up to ``batch_size`` late outcomes.

    Runs in the caller's transaction, which must not have executed anything yet (the lock comes
    first). ``cutoff`` and ``now`` are naive UTC, as stored.
    """
    key = compiled.spec.key
    lock_for_learning(conn, key)
    snap = latest_snapshot(conn, key, state=True)
    if snap is None or snap.spec_version != compiled.version:
        raise Conflict(f"experiment {key!r}: no policy snapshot for spec version {compiled.version}")
    rows = unlearned_decisions(conn, compiled, cutoff, batch_size)
    # late outcomes once the backlog of decisions is learned: until then the pending outcomes are
    # mostly those of the backlog, which the late query would scan in every batch
    late = [] if len(rows) == batch_size else late_outcomes(conn, compiled, cutoff, batch_size)
    full = len(rows) == batch_size or len(late) == batch_size
    if not late and not rows:
        return BatchResult(snap.version, 0, 0, 0, False)
    policy = load_policy(snap.state)  # type: ignore[arg-type]  # asked for
    revisable = policy.can_revise
    gained = _revise(conn, compiled, policy, late) if late and revisable else 0.0
    learned_outcomes, learned = _learn_decisions(conn, compiled, policy, rows) if rows else ([], 0.0)
    late_ids = [r.id for r in late]
    if not rows and not revisable:  # only outcomes this policy cannot learn: the state is unchanged
        mark_outcomes(conn, late_ids, snap.version, NOT_LEARNABLE)
        return BatchResult(snap.version, 0, 0, len(late), full)
    revised = len(late) if revisable else 0
    version = store_snapshot(conn, compiled, snap, policy, now, outcomes=len(learned_outcomes) + revised,
                             decisions=len(rows), reward=learned + gained)
    mark_decisions(conn, [r.id for r in rows], version)
    mark_outcomes(conn, learned_outcomes, version)
    mark_outcomes(conn, late_ids, version, REVISED if revisable else NOT_LEARNABLE)
    return BatchResult(version, len(rows), revised, len(late) - revised, full)
