"""What a write adds to the drift monitor's sums (``drift_rollups``): the change of each drift cell.
Pure.

A drift cell is the learnable decisions of one (day, policy version, learned version, arm) with their
rewards' sum and sum of squares. A decision whose reward goes from :math:`r_0` to :math:`r_1` adds
:math:`r_1 - r_0` and :math:`r_1^2 - r_0^2` to the cell of its current learned version. A decision
first learned by snapshot :math:`v` moves, with its current reward :math:`r`, from its cell of learned
version None to that of :math:`v`: :math:`(-1, -r, -r^2)` there, :math:`(+1, +r, +r^2)` here. (The
cells of learned version None are derived on read, not stored: :mod:`experiments.store.drift_rollups`
drops the changes made to them.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: A drift cell's key within a spec version: (day, policy version, learned version, arm).
DriftKey = tuple[date, int | None, int | None, int]


@dataclass
class DriftChange:
    """What one write adds to one drift cell (a mutable accumulator)."""

    decisions: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.decisions or self.reward_sum or self.reward_sum_squares)


def add_drift_reward_change(changes: dict[DriftKey, DriftChange], key: DriftKey, before: float,
                            after: float, n: int = 1) -> None:
    """Add the change of one decision's reward from ``before`` to ``after`` to cell ``key``; ``n`` times,
    for ``n`` decisions changing alike (equal to rounding to ``n`` changes added one by one).

    Examples
    --------
    >>> changes = {}
    >>> add_drift_reward_change(changes, "k", 1.0, 3.0)
    >>> changes["k"]
    DriftChange(decisions=0, reward_sum=2.0, reward_sum_squares=8.0)
    """
    if after != before:
        change = changes.setdefault(key, DriftChange())
        change.reward_sum += n * (after - before)
        change.reward_sum_squares += n * (after * after - before * before)


def move_drift_decision(changes: dict[DriftKey, DriftChange], source: DriftKey, target: DriftKey,
                        reward: float, n: int = 1) -> None:
    """Move ``n`` decisions (one by default), each with reward ``reward``, from cell ``source`` to cell
    ``target``.

    Examples
    --------
    >>> changes = {}
    >>> move_drift_decision(changes, "none", "v2", 2.0)
    >>> changes["none"], changes["v2"]
    (DriftChange(decisions=-1, reward_sum=-2.0, reward_sum_squares=-4.0), \
DriftChange(decisions=1, reward_sum=2.0, reward_sum_squares=4.0))
    >>> move_drift_decision(changes, "none", "v2", 1.5, n=2)
    >>> changes["v2"]
    DriftChange(decisions=3, reward_sum=5.0, reward_sum_squares=8.5)
    """
    if source == target:
        return
    for key, sign in ((source, -n), (target, n)):
        change = changes.setdefault(key, DriftChange())
        change.decisions += sign
        change.reward_sum += sign * reward
        change.reward_sum_squares += sign * reward * reward
