"""Epsilon-greedy: the best mean so far with probability 1 - epsilon, uniform otherwise."""

from __future__ import annotations

import numpy as np

from bandit.arm_policy import ArmPolicy
from bandit.arm_stats import ArmMeans
from bandit.inputs import check_finite, check_positive
from bandit.options import check_n_actions
from bandit.policy import PolicyError
from bandit.sampling import best_set, split_evenly


def check_epsilon(epsilon: object) -> float:
    """``options.epsilon`` as a float in [0, 1]."""
    number = check_positive("epsilon", epsilon, allow_zero=True)
    if number > 1:
        raise PolicyError(f"options.epsilon: must lie in [0, 1], got {epsilon!r}")
    return number


class EpsilonGreedy(ArmPolicy):
    r"""Epsilon-greedy over the (weighted) mean reward of each arm.

    Among the ``m`` allowed arms, with ``G`` the allowed arms tied at the best mean,

    .. math:: \pi_a = \epsilon / m + (1 - \epsilon)\,[a \in G] / |G|,

    then every allowed arm is raised to at least ``min_share`` (unchanged when :math:`\epsilon / m`
    already is: :func:`bandit.sampling.with_min_share`).

    Parameters
    ----------
    n_actions : int
    epsilon : float in [0, 1]
    initial_value : float
        The mean assumed for an arm with no data (0 by default; a high value explores untried arms
        greedily first).
    min_share, discount, window_days : see :class:`bandit.thompson.BetaThompson`.
    """

    tag = "epsilon_greedy"
    stats_type = ArmMeans
    snapshot_options = ("epsilon", "initial_value")

    def __init__(
        self,
        n_actions: int,
        *,
        epsilon: float = 0.1,
        initial_value: float = 0.0,
        min_share: float | None = None,
        discount: float | None = None,
        window_days: float | None = None,
    ) -> None:
        super().__init__(check_n_actions(n_actions))
        self.epsilon = check_epsilon(epsilon)
        self.initial_value = check_finite("initial_value", initial_value)
        self._start_learning(min_share, discount, window_days)

    @property
    def stats(self) -> ArmMeans:
        """The per-arm weighted counts and reward sums the policy learns from now."""
        return self.memory.current()

    def _distribution(self, mask: np.ndarray) -> np.ndarray:
        greedy = best_set(self.stats.means(self.initial_value), mask)
        return self.epsilon * mask / mask.sum() + (1 - self.epsilon) * split_evenly(greedy)
