"""Synthetic logged sends with a policy value known in closed form (test helper).

Contexts are one of ``S`` segments with known shares; the true click rate of each variant in each
segment, the logging policy and the target policy are tables, so the target's true value is the exact
sum ``sum_s share_s sum_a target[s, a] rate[s, a]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulations.data import LoggedData

SHARES = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
RATES = np.array(
    [
        [0.10, 0.20, 0.05],
        [0.30, 0.10, 0.15],
        [0.05, 0.08, 0.40],
        [0.20, 0.20, 0.20],
        [0.50, 0.10, 0.30],
    ]
)
LOGGING = np.array(
    [
        [0.6, 0.2, 0.2],
        [0.2, 0.6, 0.2],
        [0.2, 0.2, 0.6],
        [0.5, 0.25, 0.25],
        [0.3, 0.3, 0.4],
    ]
)
TARGET = np.array(
    [
        [0.1, 0.8, 0.1],
        [0.7, 0.1, 0.2],
        [0.1, 0.1, 0.8],
        [0.3, 0.3, 0.4],
        [0.8, 0.1, 0.1],
    ]
)
ACTIONS = ("plain", "urgent", "emoji")


def true_value(target: np.ndarray = TARGET) -> float:
    """The exact expected reward per send of a per-segment target table."""
    return float(SHARES @ np.sum(target * RATES, axis=1))


@dataclass(frozen=True)
class SyntheticLog:
    data: LoggedData
    segments: np.ndarray
    target: np.ndarray  # (n, k) target probabilities per row
    true_rates: np.ndarray  # (n, k)


def make_log(
    n: int,
    rng: np.random.Generator,
    logging: np.ndarray = LOGGING,
    target: np.ndarray = TARGET,
    as_mappings: bool = False,
) -> SyntheticLog:
    segments = rng.choice(len(SHARES), size=n, p=SHARES)
    cumulative = np.cumsum(logging[segments], axis=1)
    actions = np.minimum((rng.random(n)[:, None] > cumulative).sum(axis=1), logging.shape[1] - 1)
    rewards = (rng.random(n) < RATES[segments, actions]).astype(float)
    propensities = logging[segments, actions]
    if as_mappings:
        contexts: object = [{"segment": f"s{s}"} for s in segments]
    else:
        contexts = np.eye(len(SHARES))[segments][:, 1:]  # one-hot without the first segment
    data = LoggedData(contexts, actions, rewards, propensities, ACTIONS)
    return SyntheticLog(data, segments, target[segments], RATES[segments])
