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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from analysis.drift import DEFAULT_HORIZON, DriftDay, DriftReport, monitor_drift, predict_reward
from experiments.drift_reader import DriftCell, DriftLog

ADAPTIVE_DESIGNS = frozenset({"bandit", "contextual"})
#: What the block's points mean, in words.
DRIFT_NOTE = (
    "per day and policy version: the reward the decisions were predicted to earn (from what the policy "
    "had learned when it chose; fixed splits: the arms' rates of the earlier days) against what they "
    "earned; residual = (observed - predicted) / predictive sd; days are judged once their reward "
    "window has closed"
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


def drift_days(log: DriftLog) -> list[DriftDay]:
    """The judged groups of ``log``, in time order (module docstring)."""
    if not log.cells:
        return []
    n_arms = max(c.arm for c in log.cells) + 1
    binary = all(abs(c.reward_sum - c.reward_sum_squares) < 1e-9 for c in log.cells)
    adaptive = log.design in ADAPTIVE_DESIGNS
    first = log.cells[0].day
    window = timedelta(hours=log.window_hours)
    groups: dict[tuple[Any, int | None], list[DriftCell]] = defaultdict(list)
    for c in log.cells:
        groups[(c.day, c.policy_version if adaptive else None)].append(c)
    days = []
    for (day, version), cells in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        if datetime.combine(day + timedelta(days=1), datetime.min.time()) + window > log.now:
            continue
        if adaptive:
            if version is None:
                continue
            known = [c for c in log.cells if c.learned_version is not None and c.learned_version <= version]
        else:
            known = [c for c in log.cells if c.day < day]
        group = _arm_totals(cells, n_arms)
        predicted = _predict(_arm_totals(known, n_arms), group[0], binary)
        if predicted is None:
            continue
        days.append(DriftDay((day - first).days, version or 0, int(group[0].sum()), predicted[0],
                             predicted[1], float(group[1].sum())))
    return days


def monitor_log(log: DriftLog) -> DriftReport:
    """The calibrated CUSUM over :func:`drift_days` (horizon: 90 days, or the days judged if more)."""
    days = drift_days(log)
    return monitor_drift(days, horizon=max(DEFAULT_HORIZON, len(days)))


class DriftSource(Protocol):
    """What :func:`experiment_drift_alerts` reads of the service."""

    def read_drift(self, key: str, *, include_machine: bool = False) -> DriftLog: ...


def drift_json(report: DriftReport) -> dict[str, Any]:
    """The ``drift`` block of the results: :meth:`analysis.drift.DriftReport.to_dict` and a note."""
    return {**report.to_dict(), "note": DRIFT_NOTE}


class DriftCatalog(DriftSource, Protocol):
    """What :func:`experiment_drift_alerts` needs of the service."""

    def list(self) -> list[Any]: ...


def experiment_drift_alerts(service: DriftCatalog) -> dict[str, bool]:
    """Each experiment that is not archived: whether its drift monitor has raised the alert."""
    return {info.key: monitor_log(service.read_drift(info.key)).alert
            for info in service.list() if info.status != "archived"}
