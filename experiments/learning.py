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
4. stores the policy as the next snapshot version.

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
from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.engine import Connection

from bandit import Policy, load_policy
from experiments.assignment import CompiledExperiment, policy_context
from experiments.errors import Conflict
from experiments.rewards import decision_reward
from experiments.store import (
    OUTCOME_PENDING,
    decisions_table,
    lock_for_learning,
    outcomes_table,
    snapshots_table,
)
from experiments.store.repository import chunks, latest_snapshot
from experiments.store.summaries import unlearned_decisions

REVISED = "revised"
NOT_LEARNABLE = "not_learnable"

#: The origin of the times in days that policies which forget are given (``update(..., times=)``).
TIME_ORIGIN = datetime(1970, 1, 1)

D = decisions_table
O = outcomes_table  # noqa: E741 - the table alias used throughout the store's queries


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


def _pending(compiled: CompiledExperiment) -> Any:
    """Outcomes of the version still to learn (the predicate of the partial index)."""
    return and_(O.c.experiment_key == compiled.spec.key, O.c.version == compiled.version, OUTCOME_PENDING)


def pending_outcomes(conn: Connection, compiled: CompiledExperiment) -> int:
    """How many attributed outcomes of learnable decisions of the version are not learned yet."""
    return int(conn.execute(select(func.count()).where(_pending(compiled))).scalar_one())


def late_outcomes(compiled: CompiledExperiment, cutoff: datetime, limit: int) -> Select[Any]:
    """Up to ``limit`` outcomes not learned yet whose decision is learned as a whole trial, oldest row
    first (a decision learned as part of one, ``learned_weight`` set, is revised by
    :mod:`experiments.delayed_learning`).

    A learned decision was made before the cutoff of the run that learned it, so no later than the
    day of ``cutoff``: the day bound keeps the scan off the outcomes of recent, unlearned decisions.
    """
    return (
        select(O.c.id, O.c.decision_id, O.c.type, O.c.value)
        .join(D, D.c.id == O.c.decision_id)
        .where(_pending(compiled), O.c.day <= cutoff.date(), D.c.learned_version.is_not(None),
               D.c.learned_weight.is_(None))
        .order_by(O.c.id)
        .limit(limit)
    )


def after_learning_counts(conn: Connection, compiled: CompiledExperiment) -> tuple[int, int]:
    """Outcomes of the version that arrived after their decision was learned: ``(revised, not learnable)``."""
    query = (
        select(O.c.after_learning, func.count())
        .where(
            O.c.experiment_key == compiled.spec.key,
            O.c.version == compiled.version,
            O.c.after_learning.is_not(None),
        )
        .group_by(O.c.after_learning)
    )
    counts = {kind: int(n) for kind, n in conn.execute(query)}
    return counts.get(REVISED, 0), counts.get(NOT_LEARNABLE, 0)


def _events_of(conn: Connection, key: str, decision_ids: Sequence[str], learned: bool) -> list[Any]:
    """Attributed outcomes of the decisions: the ones learned into their reward, or the unlearned ones."""
    state = (
        and_(
            O.c.learned_version.is_not(None),
            or_(O.c.after_learning.is_(None), O.c.after_learning == REVISED),
        )
        if learned
        else O.c.learned_version.is_(None)
    )
    rows: list[Any] = []
    for chunk in chunks(decision_ids):
        rows.extend(
            conn.execute(
                select(O.c.id, O.c.decision_id, O.c.type, O.c.value).where(
                    O.c.experiment_key == key,
                    O.c.decision_id.in_(chunk),
                    O.c.attributed.is_(True),
                    O.c.machine.is_(False),
                    state,
                )
            )
        )
    return rows


def _decisions(conn: Connection, decision_ids: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for chunk in chunks(decision_ids):
        rows.extend(
            conn.execute(
                select(D.c.id, D.c.arm, D.c.context, D.c.created_at).where(D.c.id.in_(chunk)).order_by(D.c.id)
            )
        )
    return rows


def decision_days(rows: Sequence[Any]) -> np.ndarray:
    """Each decision's time (``created_at``, naive UTC) in days since :data:`TIME_ORIGIN`, shape (n,).

    The ``times`` of ``update`` and ``revise``: policies that forget (``discount``, ``window_days``,
    :mod:`bandit.forgetting`) weight a row by its age behind the newest decision learned.
    """
    day = timedelta(days=1)
    return np.array([(r.created_at - TIME_ORIGIN) / day for r in rows], dtype=np.float64)


def _contexts(compiled: CompiledExperiment, rows: Sequence[Any]) -> Any:
    if compiled.spec.design.type == "contextual":
        return [policy_context(compiled, r.context or {}) for r in rows]
    return len(rows)


def _revise(conn: Connection, compiled: CompiledExperiment, policy: Policy, late: Sequence[Any]) -> None:
    """Revise each late outcome's decision from the reward it was learned with to the reward with them."""
    reward = compiled.spec.reward
    decision_to_late: dict[str, list[Any]] = defaultdict(list)
    for row in late:
        decision_to_late[row.decision_id].append(row)
    decision_to_learned: dict[str, list[Any]] = defaultdict(list)
    for row in _events_of(conn, compiled.spec.key, sorted(decision_to_late), learned=True):
        decision_to_learned[row.decision_id].append(row)
    rows, old, new = [], [], []
    for decision in _decisions(conn, sorted(decision_to_late)):
        learned = [(r.type, r.value) for r in decision_to_learned[decision.id]]
        before = decision_reward(reward, learned)
        after = decision_reward(reward, learned + [(r.type, r.value) for r in decision_to_late[decision.id]])
        if after != before:  # a second click, an open when clicks pay: nothing to revise
            rows.append(decision)
            old.append(before)
            new.append(after)
    if rows:
        policy.revise(
            _contexts(compiled, rows),
            np.array([r.arm for r in rows], dtype=np.int64),
            np.array(old, dtype=np.float64),
            np.array(new, dtype=np.float64),
            times=decision_days(rows),
        )


def _learn_decisions(
    conn: Connection, compiled: CompiledExperiment, policy: Policy, rows: Sequence[Any]
) -> list[int]:
    """Update the policy with each decision's reward; return the ids of the outcomes that made them."""
    decision_to_events: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    outcome_ids = []
    for event in _events_of(conn, compiled.spec.key, [r.id for r in rows], learned=False):
        decision_to_events[event.decision_id].append((event.type, event.value))
        outcome_ids.append(event.id)
    reward = compiled.spec.reward
    policy.update(
        _contexts(compiled, rows),
        np.array([r.arm for r in rows], dtype=np.int64),
        np.array([decision_reward(reward, decision_to_events[r.id]) for r in rows], dtype=np.float64),
        np.array([r.propensity for r in rows], dtype=np.float64),
        times=decision_days(rows),
    )
    return outcome_ids


def _mark(conn: Connection, table: Any, ids: Sequence[Any], **values: Any) -> None:
    for chunk in chunks(ids):
        conn.execute(update(table).where(table.c.id.in_(chunk)).values(**values))


def store_snapshot(
    conn: Connection, compiled: CompiledExperiment, snap: Any, policy: Policy, now: datetime, *,
    outcomes: int, decisions: int,
) -> int:
    """Store ``policy`` as the version after ``snap`` that learned ``outcomes`` more outcomes and
    ``decisions`` more decisions; return the new version."""
    version = int(snap.version) + 1
    conn.execute(
        snapshots_table.insert().values(
            experiment_key=compiled.spec.key,
            version=version,
            spec_version=compiled.version,
            state=policy.to_bytes(),
            cursor=snap.cursor + outcomes,
            learned_decisions=snap.learned_decisions + decisions,
            created_at=now,
        )
    )
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
    rows = conn.execute(unlearned_decisions(compiled, cutoff, batch_size)).all()
    # late outcomes once the backlog of decisions is learned: until then the pending outcomes are
    # mostly those of the backlog, which the late query would scan in every batch
    late = [] if len(rows) == batch_size else conn.execute(late_outcomes(compiled, cutoff, batch_size)).all()
    full = len(rows) == batch_size or len(late) == batch_size
    if not late and not rows:
        return BatchResult(snap.version, 0, 0, 0, False)
    policy = load_policy(snap.state)  # type: ignore[arg-type]  # asked for
    revisable = policy.can_revise
    if late and revisable:
        _revise(conn, compiled, policy, late)
    learned_outcomes = _learn_decisions(conn, compiled, policy, rows) if rows else []
    late_ids = [r.id for r in late]
    if not rows and not revisable:  # only outcomes this policy cannot learn: the state is unchanged
        _mark(conn, O, late_ids, learned_version=snap.version, after_learning=NOT_LEARNABLE)
        return BatchResult(snap.version, 0, 0, len(late), full)
    revised = len(late) if revisable else 0
    version = store_snapshot(conn, compiled, snap, policy, now, outcomes=len(learned_outcomes) + revised,
                             decisions=len(rows))
    _mark(conn, D, [r.id for r in rows], learned_version=version)
    _mark(conn, O, learned_outcomes, learned_version=version)
    _mark(conn, O, late_ids, learned_version=version, after_learning=REVISED if revisable else NOT_LEARNABLE)
    return BatchResult(version, len(rows), revised, len(late) - revised, full)
