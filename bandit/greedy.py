"""Epsilon-greedy: the best mean so far with probability 1 - epsilon, uniform otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.arm_means import ArmMeans
from bandit.arm_policy import ArmPolicy
from bandit.inputs import Feedback, Revision, check_finite, check_positive
from bandit.options import check_n_actions
from bandit.policy import PolicyError
from bandit.sampling import best_set, split_evenly
from bandit.snapshot import encode_snapshot


def check_epsilon(epsilon: object) -> float:
    """``options.epsilon`` as a float in [0, 1]."""
    number = check_positive("epsilon", epsilon, allow_zero=True)
    if number > 1:
        raise PolicyError(f"options.epsilon: must lie in [0, 1], got {epsilon!r}")
    return number


class EpsilonGreedy(ArmPolicy):
    r"""Epsilon-greedy over the empirical mean reward of each arm.

    Among the ``m`` allowed arms, with ``G`` the allowed arms tied at the best mean,

    .. math:: \pi_a = \epsilon / m + (1 - \epsilon)\,[a \in G] / |G|.

    Parameters
    ----------
    n_actions : int
    epsilon : float in [0, 1]
    initial_value : float
        The mean assumed for an arm with no data (0 by default; a high value explores untried arms
        greedily first).
    """

    tag = "epsilon_greedy"

    def __init__(self, n_actions: int, *, epsilon: float = 0.1, initial_value: float = 0.0) -> None:
        super().__init__(check_n_actions(n_actions))
        self.epsilon = check_epsilon(epsilon)
        self.initial_value = check_finite("initial_value", initial_value)
        self.stats = ArmMeans(self.n_actions)

    def _distribution(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        greedy = best_set(self.stats.means(self.initial_value), mask)
        probs = self.epsilon * mask / mask.sum() + (1 - self.epsilon) * split_evenly(greedy)
        return probs, greedy

    def _learn(self, feedback: Feedback) -> None:
        self.stats.add(feedback)

    def _revise(self, revision: Revision) -> None:
        self.stats.revise(revision)

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, {
            "n_actions": self.n_actions, "epsilon": self.epsilon, "initial_value": self.initial_value,
            "count": self.stats.arm_to_count, "sum": self.stats.arm_to_sum,
        })

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpsilonGreedy:
        policy = cls(state["n_actions"], epsilon=state["epsilon"], initial_value=state["initial_value"])
        policy.stats.arm_to_count = np.asarray(state["count"], dtype=np.float64)
        policy.stats.arm_to_sum = np.asarray(state["sum"], dtype=np.float64)
        return policy
