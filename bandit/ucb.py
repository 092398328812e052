"""UCB1: the arm with the highest upper confidence bound, deterministically."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.arm_means import ArmMeans
from bandit.arm_policy import ArmPolicy
from bandit.inputs import Feedback, Revision, check_positive
from bandit.options import check_n_actions
from bandit.sampling import best_set, split_evenly
from bandit.snapshot import encode_snapshot


class UCB1(ArmPolicy):
    r"""UCB1 (Auer, Cesa-Bianchi and Fischer 2002) with an exploration constant ``alpha``.

    .. math:: U_a = \bar x_a + \alpha \sqrt{2 \ln N / n_a},

    with ``N`` the total and ``n_a`` the arm's number of rewards; an arm with no data has
    :math:`U_a = +\infty`. The policy is deterministic: probability 1 on the best allowed bound, split
    evenly among ties (so a batch before any feedback is uniform). Within a batch nothing changes, so a
    large batch goes to the arm(s) with the top bound. ``explored`` is True where the chosen arm is not
    among those with the best mean.

    Parameters
    ----------
    n_actions : int
    alpha : float, > 0
        Multiplies the confidence width (1 is the textbook UCB1 for rewards in [0, 1]).
    """

    tag = "ucb"

    def __init__(self, n_actions: int, *, alpha: float = 1.0) -> None:
        super().__init__(check_n_actions(n_actions))
        self.alpha = check_positive("alpha", alpha)
        self.stats = ArmMeans(self.n_actions)

    def upper_bounds(self) -> np.ndarray:
        """The bound :math:`U_a` per arm, shape (n_actions,)."""
        counts = self.stats.arm_to_count
        total = counts.sum()
        width = np.full(counts.shape, np.inf)
        log_total = np.log(total) if total > 0 else 0.0
        np.divide(2 * log_total, counts, out=width, where=counts > 0)
        return self.stats.means(0.0) + self.alpha * np.sqrt(width)

    def _distribution(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = best_set(self.upper_bounds(), mask)
        tried = mask & (self.stats.arm_to_count > 0)
        greedy = best_set(self.stats.means(-np.inf), tried) if tried.any() else mask.copy()
        return split_evenly(top), greedy

    def _learn(self, feedback: Feedback) -> None:
        self.stats.add(feedback)

    def _revise(self, revision: Revision) -> None:
        self.stats.revise(revision)

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, {
            "n_actions": self.n_actions, "alpha": self.alpha,
            "count": self.stats.arm_to_count, "sum": self.stats.arm_to_sum,
        })

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> UCB1:
        policy = cls(state["n_actions"], alpha=state["alpha"])
        policy.stats.arm_to_count = np.asarray(state["count"], dtype=np.float64)
        policy.stats.arm_to_sum = np.asarray(state["sum"], dtype=np.float64)
        return policy
