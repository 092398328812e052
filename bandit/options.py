"""Checks for constructor arguments shared by every policy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandit.policy import PolicyError


def check_n_actions(n_actions: object) -> int:
    """``n_actions`` as an int >= 1."""
    if isinstance(n_actions, bool) or not isinstance(n_actions, int | np.integer) or n_actions < 1:
        raise PolicyError(f"n_actions: expected an integer >= 1, got {n_actions!r}")
    return int(n_actions)


def check_seed(seed: object) -> int:
    """``seed`` as a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise PolicyError(f"seed: expected an integer >= 0, got {seed!r}")
    return int(seed)


MAX_N_DRAWS = 1_000_000
"""The most Monte Carlo draws per propensity: each draw is a row of ``n_actions`` numbers per recipient."""


def check_n_draws(n_draws: object) -> int:
    """``options.n_draws`` as an int in [100, :data:`MAX_N_DRAWS`] (fewer than 100 would make
    propensities too coarse to log; more would hold millions of numbers per recipient)."""
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 100:
        raise PolicyError(f"options.n_draws: expected an integer >= 100, got {n_draws!r}")
    if n_draws > MAX_N_DRAWS:
        raise PolicyError(f"options.n_draws: at most {MAX_N_DRAWS:,}, got {n_draws!r}")
    return int(n_draws)


def check_weights(name: str, weights: object, length: int) -> np.ndarray:
    """A vector of ``length`` finite non-negative weights with a positive sum, as float64."""
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence | np.ndarray):
        raise PolicyError(f"{name}: expected a list of {length} numbers, got {type(weights).__name__}")
    try:
        arr = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise PolicyError(f"{name}: expected a list of {length} numbers, got {weights!r}") from None
    if arr.shape != (length,):
        raise PolicyError(f"{name}: expected {length} weights, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise PolicyError(f"{name}: weights must be finite and >= 0, got {arr.tolist()}")
    if arr.sum() <= 0:
        raise PolicyError(f"{name}: weights must not all be zero")
    return arr
