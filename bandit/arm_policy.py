"""The shared machinery of non-contextual policies: one distribution per distinct ``allowed`` row."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from bandit.inputs import Feedback, Revision, batch_size, check_allowed, check_feedback, check_revision
from bandit.policy import Choices, Contexts, Policy
from bandit.sampling import sample_from
from bandit.snapshot import Restorable


class ArmPolicy(Restorable, Policy):
    """A policy whose distribution depends on the row only through its ``allowed`` mask.

    Subclasses implement :meth:`_distribution` for one mask, :meth:`_learn` for a validated batch and
    :meth:`_revise` to replace learned rewards; distributions are cached per mask until the next update.
    """

    can_revise = True

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    @abstractmethod
    def _distribution(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For one mask (k,) bool: the probabilities (k,) and the greedy set (k,) bool."""

    @abstractmethod
    def _learn(self, feedback: Feedback) -> None:
        """Fold a validated batch into the policy's state."""

    @abstractmethod
    def _revise(self, revision: Revision) -> None:
        """Replace validated learned rewards in the state (all checks before any change)."""

    def _cached(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.packbits(mask).tobytes()
        if key not in self._cache:
            probs, greedy = self._distribution(mask)
            probs.setflags(write=False)
            greedy.setflags(write=False)
            self._cache[key] = (probs, greedy)
        return self._cache[key]

    def _groups(self, n: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per distinct mask: probabilities (g, k), greedy sets (g, k), and each row's group (n,)."""
        mask = check_allowed(allowed, n, self.n_actions)
        if mask is None or mask.all():  # one distribution for every row (no sort of n masks)
            probs, greedy = self._cached(np.ones(self.n_actions, dtype=bool))
            return probs[None, :], greedy[None, :], np.zeros(n, dtype=np.int64)
        unique, inverse = np.unique(mask, axis=0, return_inverse=True)
        pairs = [self._cached(row) for row in unique]
        return (
            np.stack([p for p, _ in pairs]),
            np.stack([g for _, g in pairs]),
            inverse.reshape(-1).astype(np.int64),
        )

    def probabilities(self, contexts: Contexts, allowed: np.ndarray | None = None) -> np.ndarray:
        """The distribution per row, shape ``(n, n_actions)``; disallowed actions get 0."""
        n = batch_size(contexts)
        probs, _, group = self._groups(n, allowed)
        return probs[group]

    def choose(
        self, contexts: Contexts, rng: np.random.Generator, allowed: np.ndarray | None = None
    ) -> Choices:
        """Draw one action per row from :meth:`probabilities`, with its propensity and ``explored``."""
        n = batch_size(contexts)
        probs, greedy, group = self._groups(n, allowed)
        uniforms = rng.random(n)
        actions = np.empty(n, dtype=np.int64)
        if probs.shape[0] == 1:
            actions[:] = sample_from(probs[0], uniforms)
        else:
            for g in range(probs.shape[0]):
                rows = group == g
                actions[rows] = sample_from(probs[g], uniforms[rows])
        return Choices(actions, probs[group, actions], ~greedy[group, actions])

    def update(
        self,
        contexts: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        *,
        allowed: np.ndarray | None = None,
    ) -> None:
        """Fold a batch of (possibly long delayed) outcomes into the state; order within it is irrelevant.

        ``allowed``, the mask at decision time, is optional and only checked (each logged action must
        have been allowed): these policies learn the same either way.
        """
        n = batch_size(contexts)
        feedback = check_feedback(n, self.n_actions, actions, rewards, propensities, allowed)
        self._learn(feedback)
        self._cache.clear()

    def revise(
        self, contexts: Contexts, actions: np.ndarray, old_rewards: np.ndarray, new_rewards: np.ndarray
    ) -> None:
        """Replace rewards already learned (see :meth:`bandit.policy.Policy.revise`); exact.

        The state of these policies is per-arm sums of the rewards (and counts), so replacing a reward
        changes the sums by the difference and leaves the counts alone.
        """
        n = batch_size(contexts)
        self._revise(check_revision(n, self.n_actions, actions, old_rewards, new_rewards))
        self._cache.clear()
