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


#: The floor on each allowed arm's probability of an adaptive policy, as GrowthBook's bandits use:
#: estimates that weight by the logged propensities need every arm to keep some traffic.
DEFAULT_MIN_SHARE = 0.01
#: With many arms the default floor shrinks so that it never holds more than this share of the traffic.
MAX_DEFAULT_FLOOR_TRAFFIC = 0.5


def default_min_share(n_actions: int) -> float:
    """:data:`DEFAULT_MIN_SHARE`, or ``0.5 / n_actions`` when that is smaller (more than 50 arms)."""
    return min(DEFAULT_MIN_SHARE, MAX_DEFAULT_FLOOR_TRAFFIC / n_actions)


def check_min_share(min_share: object, n_actions: int) -> float:
    """``options.min_share`` as a float in [0, 1 / n_actions] (at 1 / n_actions the split is uniform)."""
    if isinstance(min_share, bool) or not isinstance(min_share, int | float | np.integer | np.floating):
        raise PolicyError(f"options.min_share: expected a number, got {min_share!r}")
    number = float(min_share)
    if not 0 <= number <= 1 / n_actions:
        raise PolicyError(
            f"options.min_share: must lie in [0, 1/{n_actions}] (every arm gets at least this share), "
            f"got {min_share!r}"
        )
    return number


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
