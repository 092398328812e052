r"""Linear contextual bandits in numpy: LinUCB and linear Thompson sampling.

Both keep one ridge regression per action (the "disjoint" model of Li et al. 2010) over hashed
context vectors ``x`` (see :class:`bandit.features.FeatureHasher`):

.. math:: A_a = \lambda I + \sum x x^\top,\quad b_a = \sum r x,\quad \hat\theta_a = A_a^{-1} b_a.

LinUCB scores :math:`x^\top\hat\theta_a + \alpha\sqrt{x^\top A_a^{-1} x}` and takes the best allowed
action (ties split evenly). Linear Thompson sampling (Agrawal and Goyal 2013) draws
:math:`\theta_a \sim N(\hat\theta_a, v^2 A_a^{-1})`; the score of action ``a`` for row ``x`` is then
Normal with mean :math:`x^\top\hat\theta_a` and sd :math:`v\sqrt{x^\top A_a^{-1}x}`, independently
across actions, so its probability of being best is a one-dimensional integral, computed by
quadrature (:func:`bandit.gaussian_max.probability_of_max`) and averaged over the actions of a row
with the same mean and width (exchangeable). ``choose`` samples from these probabilities, so the
logged propensity is the exact probability of the draw.
Both then raise every allowed action to at least ``min_share`` (:func:`bandit.sampling.with_min_share`;
default :func:`bandit.options.default_min_share`), so LinUCB too leaves every action some support.
Rows may be fractional trials (``weights``): a row of weight ``w`` adds :math:`w x x^\top` and
:math:`w r x`.

Contexts are hashed once per call (:class:`bandit.features.FeatureHasher`); :meth:`encode` returns
the hashed batch, which ``choose`` and then ``update`` take in place of the contexts so a batch is
hashed once between them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.features import EncodedContexts, FeatureHasher
from bandit.gaussian_max import probability_of_max
from bandit.inputs import Feedback, Revision, check_allowed, check_positive
from bandit.options import check_min_share, check_n_actions, check_n_draws, check_seed, default_min_share
from bandit.policy import Contexts, Policy
from bandit.row_changes import added_rows, replaced_rows
from bandit.sampling import best_set, floored_split, pool_equal_arms, with_min_share
from bandit.snapshot import Restorable, encode_snapshot


def _rows_by_action(actions: np.ndarray, n_actions: int) -> list[tuple[int, np.ndarray]]:
    """``(action, row indices)`` for every action present in ``actions``, shape (n,)."""
    counts = np.bincount(actions, minlength=n_actions)
    order = np.argsort(actions, kind="stable")
    ends = np.cumsum(counts)
    return [(a, order[ends[a] - counts[a]:ends[a]]) for a in range(n_actions) if counts[a]]


class _RidgePerAction(Restorable, Policy):
    """Shared state and bookkeeping of the two linear policies."""

    tag = ""
    can_revise = True

    def __init__(self, n_actions: int, *, dim: int = 64, regularization: float = 1.0, seed: int = 0,
                 min_share: float | None = None) -> None:
        self.n_actions = check_n_actions(n_actions)
        self.hasher = FeatureHasher(dim)
        self.regularization = check_positive("regularization", regularization)
        self.seed = check_seed(seed)
        k = self.n_actions
        self.min_share = default_min_share(k) if min_share is None else check_min_share(min_share, k)
        d = self.hasher.dim
        self.arm_to_gram = np.tile(self.regularization * np.eye(d), (self.n_actions, 1, 1))
        self.arm_to_moment = np.zeros((self.n_actions, d))
        self._fitted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _fit(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per action: the inverse Gram matrices (k, d, d), the coefficients (k, d), and the transposed
        inverse Cholesky factors side by side, (d, k d): row ``x`` times them is :math:`L_a^{-1} x` for
        every action, whose squared norm is :math:`x^T A_a^{-1} x`."""
        if self._fitted is None:
            inverse = np.linalg.inv(self.arm_to_gram)
            k, d = self.arm_to_moment.shape
            whitening = np.linalg.inv(np.linalg.cholesky(self.arm_to_gram))  # L_a^{-1}, A_a = L_a L_a^T
            self._fitted = (inverse, np.einsum("kde,ke->kd", inverse, self.arm_to_moment),
                            np.ascontiguousarray(whitening.transpose(2, 0, 1).reshape(d, k * d)))
        return self._fitted

    def _moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean (n, k) and the width :math:`\\sqrt{x^T A^{-1} x}` (n, k) per row and action."""
        _, theta, whitening = self._fit()
        n, (k, d) = x.shape[0], theta.shape
        mean = x @ theta.T
        # ||L_a^{-1} x||^2 for every action: one (n, d) x (d, k d) product, squared, summed per action
        whitened = x @ whitening
        whitened *= whitened
        quadratic = (whitened.reshape(n * k, d) @ np.ones(d)).reshape(n, k)
        return mean, np.sqrt(quadratic)

    def coefficients(self) -> np.ndarray:
        """The ridge coefficients per action over the hashed columns, shape ``(n_actions, dim)`` (a copy)."""
        return self._fit()[1].copy()

    def encode(self, contexts: Contexts) -> EncodedContexts:
        """The batch hashed and checked once, for ``choose`` and ``update`` in place of ``contexts``."""
        return self.hasher.encode_once(contexts)

    def reward_estimates(self, contexts: Contexts | EncodedContexts) -> tuple[np.ndarray, np.ndarray]:
        """Per row and action: the ridge prediction and the width :math:`\\sqrt{x^T A_a^{-1} x}`.

        Returns
        -------
        mean, width : ndarray of float, shape (n, n_actions) each
        """
        return self._moments(self.hasher.encode(contexts))

    def _design(self, contexts: Contexts | EncodedContexts,
                allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        x = self.hasher.encode(contexts)
        mask = check_allowed(allowed, len(x), self.n_actions)
        if mask is None:
            mask = np.ones((len(x), self.n_actions), dtype=bool)
        return x, mask

    def _distribution(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The probabilities per row (n, k), ``min_share`` floor included."""
        raise NotImplementedError

    def probabilities(self, contexts: Contexts | EncodedContexts,
                      allowed: np.ndarray | None = None) -> np.ndarray:
        """The distribution per row, shape ``(n, n_actions)``; disallowed actions get 0."""
        x, mask = self._design(contexts, allowed)
        return self._distribution(x, mask)

    def _learning_rows(self, contexts: Contexts | EncodedContexts) -> tuple[int, np.ndarray]:
        x = self.hasher.encode(contexts)
        return len(x), x

    def _learn(self, x: np.ndarray, feedback: Feedback, weights: np.ndarray | None,
               times: np.ndarray | None) -> None:
        """Add a batch of rewards to each chosen action's regression (order-free).

        ``allowed`` (the mask at decision time) is optional and only checked; ``times`` are checked and
        ignored (these policies do not forget); ``weights`` make rows fractional trials.
        """
        w = added_rows(feedback, weights, times).new_weights
        for action, rows in _rows_by_action(feedback.actions, self.n_actions):
            chosen = x[rows]
            self.arm_to_gram[action] += (chosen * w[rows, None]).T @ chosen
            self.arm_to_moment[action] += chosen.T @ (w[rows] * feedback.rewards[rows])
        self._fitted = None

    def _relearn(self, x: np.ndarray, revision: Revision, old_weights: np.ndarray | None,
                 new_weights: np.ndarray | None, times: np.ndarray | None) -> None:
        """Replace learned rewards and weights (see :meth:`bandit.policy.Policy.revise`); exact.

        Row ``x`` moves :math:`A_a` by :math:`(w_{new} - w_{old})\\,x x^\\top` (nothing when its weight
        stays) and :math:`b_a` by :math:`(w_{new} r_{new} - w_{old} r_{old})\\,x`.
        """
        changes = replaced_rows(revision, old_weights, new_weights, times)
        reweighted = changes.new_weights - changes.old_weights
        moved = changes.new_weights * changes.new_rewards - changes.old_weights * changes.old_rewards
        for action, rows in _rows_by_action(revision.actions, self.n_actions):
            if np.any(reweighted[rows]):
                self.arm_to_gram[action] += (x[rows] * reweighted[rows, None]).T @ x[rows]
            self.arm_to_moment[action] += x[rows].T @ moved[rows]
        self._fitted = None

    def _state(self) -> dict[str, Any]:
        return {
            "n_actions": self.n_actions, "dim": self.hasher.dim, "regularization": self.regularization,
            "seed": self.seed, "gram": self.arm_to_gram, "moment": self.arm_to_moment,
            "min_share": self.min_share,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.arm_to_gram = np.asarray(state["gram"], dtype=np.float64)
        self.arm_to_moment = np.asarray(state["moment"], dtype=np.float64)

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, self._state())


class LinUCB(_RidgePerAction):
    """LinUCB with disjoint linear models; deterministic, ties split evenly.

    Parameters
    ----------
    n_actions : int
    alpha : float, > 0
        Width multiplier of the confidence bound.
    dim : int
        Width of the hashed context vector (including the intercept).
    regularization : float, > 0
        Ridge penalty :math:`\\lambda`.
    seed : int
        Unused by LinUCB's decisions; kept so every policy takes one.
    min_share : float in [0, 1 / n_actions], optional
        The least probability of each allowed action; default :func:`bandit.options.default_min_share`.
    """

    tag = "linucb"

    def __init__(self, n_actions: int, *, alpha: float = 1.0, dim: int = 64, regularization: float = 1.0,
                 seed: int = 0, min_share: float | None = None) -> None:
        super().__init__(n_actions, dim=dim, regularization=regularization, seed=seed, min_share=min_share)
        self.alpha = check_positive("alpha", alpha)

    def _distribution(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mean, width = self._moments(x)
        return floored_split(best_set(mean + self.alpha * width, mask), mask, self.min_share)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "alpha": self.alpha}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LinUCB:
        policy = cls(state["n_actions"], alpha=state["alpha"], dim=state["dim"],
                     regularization=state["regularization"], seed=state["seed"],
                     min_share=state.get("min_share", 0.0))  # older snapshots had no floor
        policy._restore(state)
        return policy


class LinearThompson(_RidgePerAction):
    """Linear Thompson sampling with disjoint models; propensities by quadrature.

    Parameters
    ----------
    n_actions : int
    scale : float, > 0
        The posterior scale ``v`` (larger explores more).
    n_draws : int, in [100, 1000000]
        Accepted so that specs and snapshots that set it still load; the probabilities are computed
        by quadrature, not from draws.
    dim, regularization, min_share : see :class:`LinUCB`.
    seed : int
        Unused by the probabilities (they are deterministic); kept so every policy takes one.
    """

    tag = "linear_ts"

    def __init__(self, n_actions: int, *, scale: float = 1.0, n_draws: int = 1000, dim: int = 64,
                 regularization: float = 1.0, seed: int = 0, min_share: float | None = None) -> None:
        super().__init__(n_actions, dim=dim, regularization=regularization, seed=seed, min_share=min_share)
        self.scale = check_positive("scale", scale)
        self.n_draws = check_n_draws(n_draws)

    def _distribution(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mean, width = self._moments(x)
        probs = probability_of_max(mean, self.scale * width, mask)
        return with_min_share(pool_equal_arms(probs, mask, mean, width), mask, self.min_share)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "scale": self.scale, "n_draws": self.n_draws}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LinearThompson:
        policy = cls(state["n_actions"], scale=state["scale"], n_draws=state["n_draws"], dim=state["dim"],
                     regularization=state["regularization"], seed=state["seed"],
                     min_share=state.get("min_share", 0.0))  # older snapshots had no floor
        policy._restore(state)
        return policy
