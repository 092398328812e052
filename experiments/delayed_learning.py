r"""Delay-aware learning (``design.update.delays: model``): learn decisions before their window closes.

Waiting for the reward window (72 hours by default) keeps a daily sender's bandit still for days;
learning young decisions with reward 0 would favour the arms sent longest ago. Following Vernade,
Cappé & Perchet ("Stochastic bandit models for delayed conversions", UAI 2017), a decision sent
:math:`e` hours ago whose event has not arrived counts as :math:`F(e)` of a trial with reward 0,
:math:`F` the delay distribution of the reward's events given that they arrive within the window; a
decision whose event arrived, or whose window closed, counts as a whole trial
(:func:`analysis.delays.arrival_weights`). :math:`F` is fitted with censoring to the experiment's own
log: the time from each recent send to its first rewarded event, or the time followed so far, by the
spec's ``design.update.delay_model`` (:func:`analysis.delays.fit_delay_model`): Chapelle's
delayed-feedback model (KDD 2014) with an exponential (the default) or lognormal delay, or
Kaplan–Meier. Every age is counted from the send,
``coalesce(send_at, created_at)``: a decision made today for tomorrow's send (``send_at``) has had no
time to earn anything until tomorrow, and counts as no trial (weight 0) until it is sent.

One step, in one transaction under the experiment's learning lock, after the ordinary batches of
:func:`experiments.learning.learn_one_batch` (which learn the decisions older than the learning delay
as whole trials):

1. each decision learned as part of a trial (``decisions.learned_weight`` set) is revised from
   (reward 0, its weight) to (its reward now, its weight now): 1 once an event arrived or the window
   closed (``learned_weight`` back to NULL: later outcomes are ordinary late outcomes), else
   :math:`F(e)` at its current age;
2. each younger decision not learned yet is learned with its weight (a decision with weight 0, sent
   just now, waits for the next step);
3. the policy is stored as the next snapshot, and the outcomes learned are marked.

``Policy.revise`` is exact, so once every window has closed the policy equals the one that waited.
Without a rewarded event in the log yet no delay can be estimated: then nothing is learned early.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from analysis.delays import DelayModel, arrival_weights, fit_delay_model
from analysis.errors import AnalysisInputError
from bandit import Policy, load_policy
from experiments.assignment import CompiledExperiment
from experiments.learning import _contexts, decision_days, store_snapshot
from experiments.rewards import decision_reward
from experiments.store import lock_for_learning
from experiments.store.learning_log import (
    REVISED,
    first_reward_events,
    mark_outcomes,
    outcomes_of,
    set_weights,
    weighted_decisions,
)
from experiments.store.repository import latest_snapshot

#: The most recent decisions the delay distribution is fitted on.
FIT_DECISIONS = 20_000
_HOUR = timedelta(hours=1)


def reward_event_types(compiled: CompiledExperiment) -> list[str]:
    """The event types that add to the reward (weighted events and the value event)."""
    reward = compiled.spec.reward
    return [t for t, w in reward.events.items() if w] + ([reward.value] if reward.value else [])


def fit_delay(conn: Connection, compiled: CompiledExperiment, now: datetime) -> DelayModel | None:
    """The delay model of the reward's first event, fitted on the version's most recent learnable
    decisions sent by ``now`` (module docstring); None while no rewarded event has arrived."""
    window = compiled.spec.reward.window_hours
    rows = first_reward_events(conn, compiled, reward_event_types(compiled), now, FIT_DECISIONS)
    observed = np.array([r.first is not None for r in rows], dtype=bool)
    elapsed = np.array([((r.first if r.first is not None else now) - r.sent) / _HOUR for r in rows])
    try:
        return fit_delay_model(np.clip(elapsed, 0.0, window), observed, window,
                               compiled.spec.design.update.delay_model)
    except AnalysisInputError:
        return None


def _weights(rows: Sequence[Any], arrived: np.ndarray, model: DelayModel | None, now: datetime,
             window: float) -> np.ndarray:
    """Each row's trial weight at ``now``, its age counted from its send (a send still to come: age < 0,
    weight 0)."""
    elapsed = np.array([(now - r.sent) / _HOUR for r in rows], dtype=np.float64)
    if model is None:  # no estimate: whole trials once arrived or closed, else unchanged (or 0)
        done = arrived | (elapsed >= window)
        return np.where(done, 1.0, np.array([r.learned_weight or 0.0 for r in rows]))
    return arrival_weights(elapsed, arrived, model)


@dataclass(frozen=True)
class _Unlearned:
    """The outcomes of some decisions not learned yet: each decision's reward from them, whether a
    rewarded event is among them, and the outcomes' ids and ``(type, value)`` per decision."""

    reward: np.ndarray
    arrived: np.ndarray
    outcome_ids: list[list[int]]
    events: list[list[tuple[str, float | None]]]


def _unlearned(conn: Connection, compiled: CompiledExperiment, rows: Sequence[Any]) -> _Unlearned:
    rewarded = set(reward_event_types(compiled))
    decision_to_events: dict[str, list[Any]] = defaultdict(list)
    for event in outcomes_of(conn, compiled.spec.key, [r.id for r in rows], learned=False):
        decision_to_events[event.decision_id].append(event)
    events = [decision_to_events[r.id] for r in rows]
    pairs = [[(e.type, e.value) for e in ev] for ev in events]
    return _Unlearned(
        np.array([decision_reward(compiled.spec.reward, p) for p in pairs], dtype=np.float64),
        np.array([any(e.type in rewarded for e in ev) for ev in events], dtype=bool),
        [[e.id for e in ev] for ev in events],
        pairs,
    )


def _revised_gain(conn: Connection, compiled: CompiledExperiment, decision_to_new: dict[str, list[Any]]
                  ) -> float:
    """The learned reward the listed decisions gain with their new outcomes (``(type, value)`` per
    decision) over the outcomes learned before."""
    decision_to_learned: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for row in outcomes_of(conn, compiled.spec.key, sorted(decision_to_new), learned=True):
        decision_to_learned[row.decision_id].append((row.type, row.value))
    reward = compiled.spec.reward
    gained = 0.0
    for decision, new in decision_to_new.items():
        learned = decision_to_learned[decision]
        gained += decision_reward(reward, learned + new) - decision_reward(reward, learned)
    return gained


def _set_weights(conn: Connection, ids: Sequence[str], weights: np.ndarray, version: int | None) -> None:
    """Record each decision's weight (NULL for a whole trial) and, when first learned, the version that
    learned it (a revision leaves ``learned_version`` as it was, as for late outcomes)."""
    set_weights(conn, ids, [None if w >= 1.0 else float(w) for w in weights], version)


def _pending_rows(conn: Connection, compiled: CompiledExperiment, *, learned: bool,
                  cutoff: datetime) -> list[Any]:
    """Decisions learned as part of a trial, or (``learned`` False) younger ones not learned yet."""
    return weighted_decisions(conn, compiled, learned=learned, cutoff=cutoff)


def learn_pending(conn: Connection, compiled: CompiledExperiment, cutoff: datetime, now: datetime) -> int:
    """One delay-aware step (module docstring) in the caller's fresh transaction; the policy version
    after it. ``cutoff`` is the ordinary learning's (decisions older are learned as whole trials)."""
    key = compiled.spec.key
    lock_for_learning(conn, key)
    snap = latest_snapshot(conn, key, state=True)
    if snap is None or snap.spec_version != compiled.version:
        return 0 if snap is None else int(snap.version)
    window = compiled.spec.reward.window_hours
    model = fit_delay(conn, compiled, now)
    policy: Policy = load_policy(bytes(snap.state))
    version = int(snap.version) + 1
    moved: list[Any] = []
    revised: list[int] = []
    gained = 0.0  # the learned reward of the outcomes marked now, revisions included
    learned = _pending_rows(conn, compiled, learned=True, cutoff=cutoff)
    if learned:
        now_in = _unlearned(conn, compiled, learned)
        old_w = np.array([r.learned_weight for r in learned], dtype=np.float64)
        new_w = _weights(learned, now_in.arrived, model, now, window)
        move = (new_w != old_w) | (now_in.reward != 0)
        moved = [r for r, m in zip(learned, move, strict=True) if m]
        if moved:
            policy.revise(_contexts(compiled, moved), np.array([r.arm for r in moved], dtype=np.int64),
                          np.zeros(len(moved)), now_in.reward[move], old_weights=old_w[move],
                          new_weights=new_w[move], times=decision_days(moved))
            _set_weights(conn, [r.id for r in moved], new_w[move], None)
            revised = [i for ids, m in zip(now_in.outcome_ids, move, strict=True) if m for i in ids]
            gained = _revised_gain(conn, compiled, {r.id: ev for r, m, ev in zip(
                learned, move, now_in.events, strict=True) if m and ev})
    fresh = _pending_rows(conn, compiled, learned=False, cutoff=cutoff) if model is not None else []
    taken: list[Any] = []
    learned_outcomes: list[int] = []
    if fresh:
        found = _unlearned(conn, compiled, fresh)
        weights = _weights(fresh, found.arrived, model, now, window)
        take = weights > 0
        taken = [r for r, t in zip(fresh, take, strict=True) if t]
        if taken:
            policy.update(_contexts(compiled, taken), np.array([r.arm for r in taken], dtype=np.int64),
                          found.reward[take], np.array([r.propensity for r in taken], dtype=np.float64),
                          weights=weights[take], times=decision_days(taken))
            _set_weights(conn, [r.id for r in taken], weights[take], version)
            learned_outcomes = [i for ids, t in zip(found.outcome_ids, take, strict=True) if t for i in ids]
            gained += sum((float(r) for r in found.reward[take]), 0.0)
    if not taken and not moved:
        return int(snap.version)
    mark_outcomes(conn, learned_outcomes, version)
    mark_outcomes(conn, revised, version, REVISED)
    return store_snapshot(conn, compiled, snap, policy, now, outcomes=len(learned_outcomes) + len(revised),
                          decisions=len(taken), reward=gained)


def learn_with_delays(engine: Engine, compiled: CompiledExperiment, cutoff: datetime, now: datetime,
                      version: int) -> int:
    """The service's hook after its ordinary batches: :func:`learn_pending` in its own transaction when
    the spec says ``delays: model``; else ``version`` unchanged."""
    if compiled.spec.design.update.delays != "model":
        return version
    with engine.begin() as conn:
        return learn_pending(conn, compiled, cutoff, now)
