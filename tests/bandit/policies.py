"""Policies in a non-trivial learned state, shared by the interface tests."""

from __future__ import annotations

import numpy as np

from bandit import Policy, make_policy

N_ACTIONS = 4
SEGMENTS = ("north", "south", "east")
ACTION_FEATURES = [
    {"tone": "plain"}, {"tone": "urgent"}, {"tone": "plain", "emoji": True}, {"tone": "question"},
]
CONTEXTUAL = {"linear_ts", "linucb", "vw"}

name_to_options: dict[str, dict] = {
    "fixed": {"weights": [1.0, 2.0, 3.0, 4.0]},
    "epsilon_greedy": {"epsilon": 0.2},
    "ucb": {"alpha": 1.0},
    "thompson": {"n_draws": 2000},
    "gaussian_thompson": {"n_draws": 2000},
    "linear_ts": {"n_draws": 500, "dim": 16},
    "linucb": {"alpha": 1.0, "dim": 16},
    "vw": {"vw_args": "--cb_explore_adf --epsilon 0.2 -q UA"},
}


def make_contexts(n: int, rng: np.random.Generator) -> list[dict]:
    """Recipients with a segment, a device flag and a numeric recency."""
    segments = rng.integers(0, len(SEGMENTS), n)
    mobile = rng.random(n) < 0.5
    recency = rng.integers(0, 30, n)
    return [
        {"segment": SEGMENTS[s], "mobile": bool(m), "recency": float(r) / 30}
        for s, m, r in zip(segments, mobile, recency, strict=True)
    ]


def contexts_for(name: str, n: int, rng: np.random.Generator):
    """Feature mappings for contextual policies, a batch size for the others."""
    return make_contexts(n, rng) if name in CONTEXTUAL else n


def trained_policy(name: str, seed: int = 0, rounds: int = 300) -> Policy:
    """A policy after learning from ``rounds`` uniformly random decisions with segment-dependent clicks."""
    rng = np.random.default_rng(seed)
    policy = make_policy(name, N_ACTIONS, options=name_to_options[name], action_features=ACTION_FEATURES,
                         seed=seed)
    contexts = make_contexts(rounds, rng)
    actions = rng.integers(0, N_ACTIONS, rounds)
    segment = np.array([SEGMENTS.index(c["segment"]) for c in contexts])
    click_rate = 0.1 + 0.5 * (actions == segment) + 0.05 * actions
    rewards = (rng.random(rounds) < click_rate).astype(float)
    batch = contexts if name in CONTEXTUAL else rounds
    policy.update(batch, actions, rewards, np.full(rounds, 1 / N_ACTIONS))
    return policy
