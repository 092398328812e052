"""Drawing actions from per-row distributions, and the greedy (best guess) sets behind ``explored``."""

from __future__ import annotations

import numpy as np

from bandit.policy import Choices

TIE_TOLERANCE = 1e-12


def best_set(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Which allowed actions attain the row maximum of ``scores`` (ties all count).

    Parameters
    ----------
    scores : ndarray of float, shape (n, k) or (k,)
        Higher is better; ``+inf`` is allowed (an untried arm under UCB).
    allowed : ndarray of bool, same shape as ``scores``

    Returns
    -------
    ndarray of bool, same shape: True for the allowed actions tied at the best score.
    """
    masked = np.where(allowed, scores, -np.inf)
    top = masked.max(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        slack = TIE_TOLERANCE * np.maximum(1.0, np.abs(np.where(np.isfinite(top), top, 0.0)))
        return allowed & ((masked == top) | (masked >= top - slack))


def split_evenly(members: np.ndarray) -> np.ndarray:
    """A distribution that splits probability 1 evenly among the True entries of each row."""
    members = members.astype(np.float64)
    return members / members.sum(axis=-1, keepdims=True)


def sample_rows(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One action per row of ``probabilities`` (shape ``(n, k)``) by the inverse CDF of ``uniforms`` (n,).

    Zero-probability actions are never drawn; the result has shape ``(n,)`` and dtype int64.
    """
    k = probabilities.shape[1]
    cdf = np.cumsum(probabilities, axis=1)
    u = uniforms * cdf[:, -1]
    actions = (cdf <= u[:, None]).sum(axis=1)
    # u can round up to the total: fall back to the last action with positive probability.
    last_positive = k - 1 - np.argmax(probabilities[:, ::-1] > 0, axis=1)
    return np.minimum(actions, last_positive).astype(np.int64)


def sample_from(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One draw per uniform from one distribution of shape ``(k,)``; same rule as :func:`sample_rows`."""
    cdf = np.cumsum(probabilities)
    u = uniforms * cdf[-1]
    actions = np.searchsorted(cdf, u, side="right")
    last_positive = probabilities.shape[0] - 1 - int(np.argmax(probabilities[::-1] > 0))
    return np.minimum(actions, last_positive).astype(np.int64)


def make_choices(
    probabilities: np.ndarray, greedy: np.ndarray, rng: np.random.Generator
) -> Choices:
    """Draw from ``probabilities`` (n, k); ``explored`` is True where the draw is not in ``greedy`` (n, k)."""
    n = probabilities.shape[0]
    actions = sample_rows(probabilities, rng.random(n))
    rows = np.arange(n)
    return Choices(actions, probabilities[rows, actions], ~greedy[rows, actions])
