"""The shared machinery of non-contextual policies: one distribution per distinct ``allowed`` row."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Self

import numpy as np

from bandit.forgetting import Memory, new_memory, restore_memory
from bandit.inputs import Feedback, Revision, batch_size, check_allowed
from bandit.options import check_min_share, default_min_share
from bandit.policy import Choices, Contexts, Policy
from bandit.row_changes import RowChanges, added_rows, replaced_rows
from bandit.sampling import sample_from, top_set, with_min_share
from bandit.snapshot import Restorable, encode_snapshot


class ArmPolicy(Restorable, Policy):
    """A policy whose distribution depends on the row only through its ``allowed`` mask.

    Subclasses implement :meth:`_distribution` for one mask; the policy's floor ``min_share`` is applied
    to it here, and distributions are cached per mask until the next change. Learning goes through
    ``memory`` (:mod:`bandit.forgetting`), whose statistics are weighted trials
    (:mod:`bandit.row_changes`), so ``update`` and ``revise`` are one operation.

    A learning subclass names its statistics (``stats_type``) and the constructor options its snapshot
    keeps (``snapshot_options``); :meth:`to_bytes` and :meth:`from_state` store and restore those
    options, the floor and the memory.
    """

    can_revise = True
    #: The least probability of each allowed action (see :func:`bandit.sampling.with_min_share`).
    min_share: float = 0.0
    memory: Memory
    #: The per-arm statistics learned (:mod:`bandit.arm_stats`).
    stats_type: ClassVar[Any]
    #: The keyword options of the constructor a snapshot stores, each kept as the attribute of that name.
    snapshot_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    @abstractmethod
    def _distribution(self, mask: np.ndarray) -> np.ndarray:
        """For one mask (k,) bool: the policy's own probabilities (k,), before the floor."""

    def _check_rewards(self, name: str, rewards: np.ndarray) -> None:
        """Refuse rewards outside what the policy models (``name`` is the argument's name)."""

    def _apply(self, changes: RowChanges) -> None:
        """Move validated rows into the state (a new memory: nothing changes if this raises)."""
        self.memory = self.memory.applied(changes)

    def _cached(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.packbits(mask).tobytes()
        if key not in self._cache:
            probs = with_min_share(self._distribution(mask), mask, self.min_share)
            top = top_set(probs)
            probs.setflags(write=False)
            top.setflags(write=False)
            self._cache[key] = (probs, top)
        return self._cache[key]

    def _groups(self, n: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per distinct mask: probabilities (g, k), top sets (g, k), and each row's group (n,)."""
        mask = check_allowed(allowed, n, self.n_actions)
        if mask is None or mask.all():  # one distribution for every row (no sort of n masks)
            probs, top = self._cached(np.ones(self.n_actions, dtype=bool))
            return probs[None, :], top[None, :], np.zeros(n, dtype=np.int64)
        unique, inverse = np.unique(mask, axis=0, return_inverse=True)
        pairs = [self._cached(row) for row in unique]
        return (
            np.stack([p for p, _ in pairs]),
            np.stack([t for _, t in pairs]),
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
        probs, top, group = self._groups(n, allowed)
        uniforms = rng.random(n)
        actions = np.empty(n, dtype=np.int64)
        if probs.shape[0] == 1:
            actions[:] = sample_from(probs[0], uniforms)
        else:
            for g in range(probs.shape[0]):
                rows = group == g
                actions[rows] = sample_from(probs[g], uniforms[rows])
        return Choices(actions, probs[group, actions], ~top[group, actions])

    def _learn(self, rows: Any, feedback: Feedback, weights: np.ndarray | None,
               times: np.ndarray | None) -> None:
        """Fold a batch of (possibly long delayed) outcomes into the state; order within it is irrelevant.

        ``allowed``, the mask at decision time, is optional and only checked (each logged action must
        have been allowed): these policies learn the same either way. ``weights`` (fractional trials,
        default 1) and ``times`` (days) are described in :mod:`bandit.row_changes`.
        """
        self._check_rewards("rewards", feedback.rewards)
        self._apply(added_rows(feedback, weights, times))
        self._cache.clear()

    def _relearn(self, rows: Any, revision: Revision, old_weights: np.ndarray | None,
                 new_weights: np.ndarray | None, times: np.ndarray | None) -> None:
        """Replace rewards (and weights) already learned (see :meth:`bandit.policy.Policy.revise`); exact.

        The state of these policies is per-arm weighted sums of the rewards, so a row's change moves the
        sums by the difference between what it adds now and what it added before.
        """
        self._check_rewards("old_rewards", revision.old_rewards)
        self._check_rewards("new_rewards", revision.new_rewards)
        self._apply(replaced_rows(revision, old_weights, new_weights, times))
        self._cache.clear()

    def _start_learning(
        self, min_share: float | None, discount: float | None, window_days: float | None
    ) -> None:
        """Set the floor (``None``: :func:`bandit.options.default_min_share`) and an empty memory."""
        k = self.n_actions
        self.min_share = default_min_share(k) if min_share is None else check_min_share(min_share, k)
        self.memory = new_memory(self.stats_type, k, discount, window_days)

    def to_bytes(self) -> bytes:
        """The snapshot: ``n_actions``, each of ``snapshot_options``, the floor and the memory."""
        options = {name: getattr(self, name) for name in self.snapshot_options}
        return encode_snapshot(self.tag, {
            "n_actions": self.n_actions, **options, **self.memory.state(), "min_share": self.min_share,
        })

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """The policy of a :meth:`to_bytes` state; a snapshot older than the floor has none (0)."""
        policy = cls(state["n_actions"], **{name: state[name] for name in cls.snapshot_options})
        policy.min_share = float(state.get("min_share", 0.0))
        policy.memory = restore_memory(cls.stats_type, policy.n_actions, state)
        return policy
