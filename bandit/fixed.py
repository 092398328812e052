"""Fixed allocation: uniform or weighted A/B/n and the full factorial over several slots."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

import numpy as np

from bandit.arm_policy import ArmPolicy
from bandit.options import check_n_actions, check_weights
from bandit.policy import PolicyError
from bandit.row_changes import RowChanges
from bandit.snapshot import encode_snapshot


def factorial_weights(slot_weights: Sequence[Sequence[float]]) -> np.ndarray:
    """Joint allocation weights of the full factorial over several slots.

    Each slot's weights are normalised to sum to 1; the joint weight of a combination is the product
    of its slots' weights, so the slots are assigned independently.

    Parameters
    ----------
    slot_weights : sequence of sequences of float
        One vector of non-negative weights per slot (e.g. subject, CTA, recommender).

    Returns
    -------
    ndarray of float64, shape (prod of slot sizes,)
        Combinations in ``itertools.product`` order (the last slot varies fastest); sums to 1.

    Examples
    --------
    >>> factorial_weights([[1, 1], [3, 1]]).tolist()
    [0.375, 0.125, 0.375, 0.125]
    """
    if isinstance(slot_weights, str | bytes) or not isinstance(slot_weights, Sequence) or not slot_weights:
        raise PolicyError("slot_weights: expected a non-empty list of weight lists, one per slot")
    vectors = []
    for i, weights in enumerate(slot_weights):
        length = len(weights) if isinstance(weights, Sequence | np.ndarray) else -1
        if length < 1:
            raise PolicyError(f"slot_weights[{i}]: expected a non-empty list of weights")
        arr = check_weights(f"slot_weights[{i}]", weights, length)
        vectors.append(arr / arr.sum())
    return reduce(lambda a, b: np.outer(a, b).ravel(), vectors)


class FixedAllocation(ArmPolicy):
    """Assign each action with a fixed probability proportional to its weight.

    With an ``allowed`` mask the weights of the allowed actions are renormalised; a row whose allowed
    actions all have weight zero is a PolicyError. Propensities are exact, and no floor applies (a weight
    of 0 is the designer's choice). ``explored`` marks draws off the allowed actions of largest weight,
    so a uniform split never "explores".

    Parameters
    ----------
    n_actions : int
    weights : sequence of float, shape (n_actions,), optional
        Non-negative weights; uniform when omitted.
    """

    tag = "fixed"

    def __init__(self, n_actions: int, weights: Sequence[float] | np.ndarray | None = None) -> None:
        super().__init__(check_n_actions(n_actions))
        if weights is None:
            weights = np.ones(self.n_actions)
        self.weights = check_weights("options.weights", weights, self.n_actions)

    def _distribution(self, mask: np.ndarray) -> np.ndarray:
        masked = np.where(mask, self.weights, 0.0)
        total = masked.sum()
        if total <= 0:
            allowed = np.flatnonzero(mask).tolist()
            raise PolicyError(f"allowed: every allowed action {allowed} has weight 0 under fixed allocation")
        return masked / total

    def _apply(self, changes: RowChanges) -> None:
        """Fixed allocation learns nothing (the batch is still validated): revising is exact."""

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, {"n_actions": self.n_actions, "weights": self.weights})

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FixedAllocation:
        return cls(state["n_actions"], state["weights"])
