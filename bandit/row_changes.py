r"""Learned rows as weighted trials, and the changes ``update`` and ``revise`` make to them.

A policy whose state is a sufficient statistic of its rewards learns each row ``i`` as a trial of
weight :math:`w_i \ge 0` with reward :math:`r_i` at time :math:`t_i`: the row adds :math:`w_i` to its
arm's count and :math:`w_i r_i` to its arm's reward sum (for Beta-Bernoulli Thompson sampling,
:math:`w_i r_i` successes and :math:`w_i (1 - r_i)` failures). A weight of 1 is an ordinary row; a
weight below 1 is a fractional trial. ``update`` adds rows (from weight 0); ``revise`` moves rows from
the weight and reward they were learned with to new ones. Both are one :class:`RowChanges`.

Fractional trials are what delay-aware learning needs (Vernade, Cappé & Perchet, "Stochastic bandit
models for delayed conversions", UAI 2017): a decision sent ``e`` hours ago whose outcome has not
arrived yet is learned as :math:`F(e)` of a trial with reward 0, where :math:`F` is the delay CDF of
the rewarded event; when the outcome arrives, or the window closes, ``revise`` moves it to weight 1
with its final reward.

Times are in days on any fixed origin (only differences matter): policies that forget
(``discount``, ``window_days``) weight each row by its age; the others check and ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit.inputs import Feedback, Revision, float_array
from bandit.policy import PolicyError

#: The largest time accepted, in days from the caller's origin (about 2.7 million years): hour buckets
#: of the sliding window stay exact integers far below this.
MAX_ABS_DAYS = 1e9


@dataclass(frozen=True)
class RowChanges:
    """Rows that move from ``(old_weights, old_rewards)`` to ``(new_weights, new_rewards)``.

    Attributes
    ----------
    actions : ndarray of int64, shape (n,)
    old_weights, old_rewards : ndarray of float64, shape (n,)
        What each row was learned with (weight 0 for a row ``update`` adds).
    new_weights, new_rewards : ndarray of float64, shape (n,)
    times : ndarray of float64, shape (n,), or None
        Each row's time in days, when the caller gave them.
    """

    actions: np.ndarray
    old_weights: np.ndarray
    old_rewards: np.ndarray
    new_weights: np.ndarray
    new_rewards: np.ndarray
    times: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def reweighted(self, factors: np.ndarray) -> RowChanges:
        """The same changes with both weights of row ``i`` multiplied by ``factors[i]`` (shape (n,))."""
        return RowChanges(self.actions, self.old_weights * factors, self.old_rewards,
                          self.new_weights * factors, self.new_rewards, self.times)

    def subset(self, rows: np.ndarray) -> RowChanges:
        """The changes of the rows selected by ``rows`` (a boolean mask or indices)."""
        times = None if self.times is None else self.times[rows]
        return RowChanges(self.actions[rows], self.old_weights[rows], self.old_rewards[rows],
                          self.new_weights[rows], self.new_rewards[rows], times)


def check_row_weights(name: str, weights: object, n: int) -> np.ndarray:
    """Per-row trial weights: finite and >= 0, shape ``(n,)``; None means 1 for every row."""
    if weights is None:
        return np.ones(n)
    arr = float_array(name, weights, n)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        raise PolicyError(f"{name}: must be finite and >= 0, found {float(arr[bad][0])!r} "
                          f"({int(bad.sum())} such rows)")
    return arr


def check_times(times: object, n: int) -> np.ndarray | None:
    """Per-row times in days, finite and within :data:`MAX_ABS_DAYS`, shape ``(n,)``; None stays None."""
    if times is None:
        return None
    arr = float_array("times", times, n, expected="numbers of days")
    bad = ~(np.abs(arr) <= MAX_ABS_DAYS)  # also catches NaN
    if bad.any():
        raise PolicyError(f"times: must be finite days within +-{MAX_ABS_DAYS:g}, found "
                          f"{float(arr[bad][0])!r} ({int(bad.sum())} such rows)")
    return arr


def added_rows(feedback: Feedback, weights: object = None, times: object = None) -> RowChanges:
    """The changes ``update`` makes: each validated row enters with its weight (default 1)."""
    n = feedback.actions.shape[0]
    return RowChanges(feedback.actions, np.zeros(n), np.zeros(n), check_row_weights("weights", weights, n),
                      feedback.rewards, check_times(times, n))


def replaced_rows(
    revision: Revision, old_weights: object = None, new_weights: object = None, times: object = None
) -> RowChanges:
    """The changes ``revise`` makes: each validated row moves to its new weight and reward."""
    n = revision.actions.shape[0]
    return RowChanges(revision.actions, check_row_weights("old_weights", old_weights, n),
                      revision.old_rewards, check_row_weights("new_weights", new_weights, n),
                      revision.new_rewards, check_times(times, n))
