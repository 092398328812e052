"""Per-arm reward counts and sums, the state of epsilon-greedy and UCB1."""

from __future__ import annotations

import numpy as np

from bandit.inputs import Feedback, Revision
from bandit.policy import PolicyError


class ArmMeans:
    """Mergeable per-arm counts and reward sums.

    Attributes
    ----------
    arm_to_count : ndarray of float, shape (k,)
    arm_to_sum : ndarray of float, shape (k,)
    """

    def __init__(self, n_actions: int) -> None:
        self.arm_to_count = np.zeros(n_actions)
        self.arm_to_sum = np.zeros(n_actions)

    def add(self, feedback: Feedback) -> None:
        """Add a batch (order-free)."""
        k = self.arm_to_count.shape[0]
        self.arm_to_count += np.bincount(feedback.actions, minlength=k)
        self.arm_to_sum += np.bincount(feedback.actions, weights=feedback.rewards, minlength=k)

    def revise(self, revision: Revision) -> None:
        """Replace learned rewards: each arm's sum moves by the differences; counts stay."""
        k = self.arm_to_count.shape[0]
        unseen = revision.actions[self.arm_to_count[revision.actions] <= 0]
        if unseen.size:
            raise PolicyError(f"actions: arm {int(unseen[0])} has no learned reward to revise")
        moved = np.bincount(revision.actions, weights=revision.deltas, minlength=k)
        self.arm_to_sum = self.arm_to_sum + moved

    def means(self, untried: float) -> np.ndarray:
        """Mean reward per arm, shape (k,); ``untried`` where an arm has no data."""
        out = np.full(self.arm_to_count.shape, float(untried))
        np.divide(self.arm_to_sum, self.arm_to_count, out=out, where=self.arm_to_count > 0)
        return out
