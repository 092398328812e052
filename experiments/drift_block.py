r"""The ``drift`` block of the results: per day and policy version, predicted against earned reward.

What each group of decisions (one day, one policy version) was expected to earn comes from the
per-arm posterior of the reward made from the decisions known before the group was chosen:

- a bandit or contextual design: the decisions the choosing snapshot had learned (``learned_version``
  at most the group's policy version), i.e. what that policy knew when it chose; groups chosen before
  any snapshot, or by a snapshot that had learned nothing (the prior alone), are left out;
- a fixed-split design: the decisions of every earlier day (the arms' rates so far), so a change of
  the arms' rates over time shows the same way; the first day is left out.

A reward that only takes the values 0 and 1 (one rewarded event of weight 1) gets each arm's
Beta(1 + successes, 1 + failures) posterior and the Beta-Binomial predictive of
:func:`analysis.drift.predict_reward`; any other reward the normal approximation with the arm's mean
:math:`m_a` and per-decision variance :math:`s^2_a` over its :math:`N_a` known decisions,

.. math:: E[Y] = \sum_a n_a m_a, \qquad \operatorname{Var}[Y] = \sum_a n_a s^2_a + n_a^2 s^2_a / N_a,

which needs two known decisions of each arm the group sent. A day is judged once the reward windows
of all its decisions have closed, so that every outcome it will earn is in. The residuals go to the
calibrated CUSUM of :func:`analysis.drift.monitor_drift`.

A fixed-split design also watches each arm on its own (``arms``): the arm's reward each day against
the arm's rate over its earlier days, by the same predictive and CUSUM. The block's false alarm rate
is then shared: half to the detector of the days' total, half split equally among the arms, so that on
stationary data any alert of the block (``alert``: the total's or an arm's) comes with at most the
rate (the union bound).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from analysis.drift import (
    DEFAULT_FALSE_ALARM_RATE,
    DEFAULT_HORIZON,
    DriftDay,
    DriftReport,
    monitor_drift,
    predict_reward,
    predict_rewards,
)
from experiments.drift_reader import DriftCell, DriftLog

ADAPTIVE_DESIGNS = frozenset({"bandit", "contextual"})
#: What the block's points mean, in words.
DRIFT_NOTE = (
    "per day and policy version: the reward the decisions were predicted to earn (from what the policy "
    "had learned when it chose; fixed splits: the arms' rates of the earlier days) against what they "
    "earned; residual = (observed - predicted) / predictive sd; days are judged once their reward "
    "window has closed; fixed splits also watch each arm's daily reward against its earlier days (arms), "
    "the false alarm rate shared between the total and the arms"
)


def _arm_totals(cells: Iterable[DriftCell], n_arms: int) -> np.ndarray:
    """Per arm: decisions, reward sum, reward sum of squares; shape (3, n_arms)."""
    out = np.zeros((3, n_arms))
    for c in cells:
        out[:, c.arm] += (c.decisions, c.reward_sum, c.reward_sum_squares)
    return out


def _predict(known: np.ndarray, sends: np.ndarray, binary: bool) -> tuple[float, float] | None:
    """The predicted reward and its variance of ``sends`` (per arm) from the ``known`` totals
    (:func:`_arm_totals`); None when they say nothing about the arms sent."""
    n, s, ss = known
    if n.sum() == 0:
        return None
    if binary:
        return predict_reward(1.0 + s, 1.0 + n - s, sends)
    sent = sends > 0
    if np.any(n[sent] < 2):
        return None
    mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
    var = np.divide(ss - n * mean**2, n - 1, out=np.zeros_like(s), where=n > 1).clip(min=0.0)
    variance = float(np.sum(sends * var + sends**2 * np.divide(var, n, out=np.zeros_like(s), where=n > 0)))
    if variance <= 0:
        return None
    return float(np.sum(sends * mean)), variance


def _totals_by(index: np.ndarray, arm: np.ndarray, values: np.ndarray, groups: int, n_arms: int
               ) -> np.ndarray:
    """Per group: :func:`_arm_totals` of its cells (``index`` each cell's group; the cells added in
    order), shape (groups, 3, n_arms)."""
    out = np.zeros((groups, 3, n_arms))
    for j in range(3):
        np.add.at(out[:, j, :], (index, arm), values[:, j])
    return out


def _running(keys: np.ndarray, arm: np.ndarray, values: np.ndarray, n_arms: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct ``keys`` and the totals of the cells whose key is at most each of them (a
    row of zeros first): what :func:`_running_totals` accumulates, as arrays."""
    distinct, index = np.unique(keys, return_inverse=True)
    per_key = _totals_by(index.reshape(-1), arm, values, len(distinct), n_arms)
    running = np.concatenate([np.zeros((1, 3, n_arms)), np.cumsum(per_key, axis=0)])
    return distinct, running


def _predict_many(known: np.ndarray, sends: np.ndarray, binary: bool) -> tuple[np.ndarray, np.ndarray,
                                                                                 np.ndarray]:
    """:func:`_predict` of many groups: ``known`` (groups, 3, arms), ``sends`` (groups, arms); the
    predicted rewards, their variances and which groups have a prediction."""
    n, s, ss = known[:, 0], known[:, 1], known[:, 2]
    some = n.sum(axis=1) != 0
    if binary:
        mean, variance = (np.zeros(len(n)), np.zeros(len(n)))
        if some.any():
            mean[some], variance[some] = predict_rewards(1.0 + s[some], 1.0 + n[some] - s[some], sends[some])
        return mean, variance, some
    with np.errstate(divide="ignore", invalid="ignore"):
        arm_mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        var = np.divide(ss - n * arm_mean**2, n - 1, out=np.zeros_like(s), where=n > 1).clip(min=0.0)
        per_mean = np.divide(var, n, out=np.zeros_like(s), where=n > 0)
        variance = np.sum(sends * var + sends**2 * per_mean, axis=1)
    enough = ~np.any((sends > 0) & (n < 2), axis=1)
    return np.sum(sends * arm_mean, axis=1), variance, some & enough & (variance > 0)


def drift_days(log: DriftLog, cells: Sequence[DriftCell] | None = None) -> list[DriftDay]:
    """The judged groups of ``log`` (or of its ``cells`` alone, judged by the same cells' earlier
    days: one arm of a fixed split), in time order (module docstring). The cells are summed per group
    and into what each group's prediction knows as arrays, once."""
    cells = log.cells if cells is None else tuple(cells)
    if not cells:
        return []
    n_arms = max(c.arm for c in log.cells) + 1
    binary = all(abs(c.reward_sum - c.reward_sum_squares) < 1e-9 for c in log.cells)
    adaptive = log.design in ADAPTIVE_DESIGNS
    first = log.cells[0].day
    window = timedelta(hours=log.window_hours)
    group_to_index: dict[tuple[Any, int | None], int] = {}
    index = np.array([group_to_index.setdefault((c.day, c.policy_version if adaptive else None),
                                                len(group_to_index)) for c in cells], dtype=np.int64)
    arm = np.array([c.arm for c in cells], dtype=np.int64)
    values = np.array([(c.decisions, c.reward_sum, c.reward_sum_squares) for c in cells], dtype=float)
    groups = list(group_to_index)
    group_totals = _totals_by(index, arm, values, len(groups), n_arms)
    # what each group's prediction knows, as running totals: the cells learned by its snapshot
    # (adaptive) or of the days before it (fixed split), each cell added once, not once per group
    judged = []
    for g in sorted(range(len(groups)), key=lambda g: (groups[g][0], groups[g][1] or 0)):
        day, version = groups[g]
        if datetime.combine(day + timedelta(days=1), datetime.min.time()) + window > log.now:
            continue
        if adaptive and version is None:
            continue
        judged.append(g)
    if not judged:
        return []
    if adaptive:
        learned = np.array([c.learned_version is not None for c in cells], dtype=bool)
        keys, running = _running(np.array([c.learned_version for c in cells if c.learned_version is not None],
                                          dtype=np.int64), arm[learned], values[learned], n_arms)
        at = np.searchsorted(keys, np.array([groups[g][1] for g in judged], dtype=np.int64), side="right")
    else:
        ordinal = np.array([c.day.toordinal() for c in cells], dtype=np.int64)
        keys, running = _running(ordinal, arm, values, n_arms)
        at = np.searchsorted(keys, np.array([groups[g][0].toordinal() for g in judged], dtype=np.int64),
                             side="left")
    sent = group_totals[judged]
    mean, variance, ok = _predict_many(running[at], sent[:, 0], binary)
    decisions, rewards = sent[:, 0].sum(axis=1), sent[:, 1].sum(axis=1)
    return [
        DriftDay((groups[g][0] - first).days, groups[g][1] or 0, int(decisions[i]), float(mean[i]),
                 float(variance[i]), float(rewards[i]))
        for i, g in enumerate(judged) if ok[i]
    ]


@dataclass(frozen=True)
class ArmDrift:
    """One arm of a fixed split watched on its own: its variants and its detector's report."""

    arm: int
    variants: dict[str, str]
    report: DriftReport

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping: the report's fields with the arm and its variants."""
        return {"arm": self.arm, "variants": self.variants, **self.report.to_dict()}


@dataclass(frozen=True)
class DriftVerdict:
    """The drift monitor of one experiment: the detector of the days' totals and, for a fixed split,
    one per arm (module docstring); ``alert`` is any of them, ``false_alarm_rate`` their shared bound."""

    total: DriftReport
    arms: tuple[ArmDrift, ...]
    false_alarm_rate: float

    @property
    def alert(self) -> bool:
        """Any detector raised its alert."""
        return self.total.alert or any(a.report.alert for a in self.arms)

    @property
    def first_alarm_day(self) -> int | None:
        """The first day any detector alarmed."""
        days = [r.first_alarm_day for r in (self.total, *(a.report for a in self.arms))]
        return min((d for d in days if d is not None), default=None)

    def to_dict(self) -> dict[str, object]:
        """The ``drift`` block's fields (without the note)."""
        return {**self.total.to_dict(), "alert": self.alert, "first_alarm_day": self.first_alarm_day,
                "false_alarm_rate": self.false_alarm_rate, "arms": [a.to_dict() for a in self.arms]}


def _monitor(days: list[DriftDay], false_alarm_rate: float) -> DriftReport:
    return monitor_drift(days, horizon=max(DEFAULT_HORIZON, len(days)), false_alarm_rate=false_alarm_rate)


def monitor_log(log: DriftLog, false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE) -> DriftVerdict:
    """The calibrated CUSUMs over :func:`drift_days` (horizon: 90 days, or the days judged if more): of
    the totals and, for a fixed split, of each arm sent (module docstring)."""
    if log.design in ADAPTIVE_DESIGNS or not log.cells:
        return DriftVerdict(_monitor(drift_days(log), false_alarm_rate), (), false_alarm_rate)
    arm_to_cells: dict[int, list[DriftCell]] = defaultdict(list)
    for c in log.cells:
        arm_to_cells[c.arm].append(c)
    share = false_alarm_rate / 2 / len(arm_to_cells)
    arms = tuple(
        ArmDrift(arm, log.arm_to_variants[arm] if arm < len(log.arm_to_variants) else {},
                 _monitor(drift_days(log, cells), share))
        for arm, cells in sorted(arm_to_cells.items())
    )
    total = _monitor(drift_days(log), false_alarm_rate / 2)
    return DriftVerdict(total, arms, false_alarm_rate)


class DriftSource(Protocol):
    """What :func:`experiment_drift_alerts` reads of the service."""

    def read_drift(self, key: str, *, include_machine: bool = False) -> DriftLog: ...


def drift_json(verdict: DriftVerdict) -> dict[str, Any]:
    """The ``drift`` block of the results: :meth:`DriftVerdict.to_dict` and a note."""
    return {**verdict.to_dict(), "note": DRIFT_NOTE}


class DriftCatalog(DriftSource, Protocol):
    """What :class:`DriftAlertCache` needs of the service."""

    def list(self) -> list[Any]: ...


class DriftAlertCache:
    """Each experiment's drift alert, kept for ``ttl_seconds`` of the service's clock.

    Reading an experiment's drift reads its whole log (two ``GROUP BY`` queries), so a scrape of
    ``/metrics`` costs in proportion to the log; days are judged only once their reward window has
    closed, so an alert held for a minute is a minute late at most. Experiments archived or removed
    since are dropped. Safe to share between threads (two concurrent misses may both read the log).
    """

    def __init__(self, ttl_seconds: float = 60.0) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self._key_to_alert: dict[str, tuple[datetime, bool]] = {}
        self._lock = threading.Lock()

    def alerts(self, service: DriftCatalog, now: datetime) -> dict[str, bool]:
        """Each experiment that is not archived: whether its drift monitor has raised the alert, as read
        at most ``ttl_seconds`` before ``now`` (0: read now)."""
        keys = [info.key for info in service.list() if info.status != "archived"]
        with self._lock:
            known = dict(self._key_to_alert)
        fresh = {}
        for key in keys:
            entry = known.get(key)
            if entry is None or not entry[0] <= now < entry[0] + self.ttl:
                entry = (now, monitor_log(service.read_drift(key)).alert)
            fresh[key] = entry
        with self._lock:
            self._key_to_alert = fresh
        return {key: alert for key, (_, alert) in fresh.items()}
