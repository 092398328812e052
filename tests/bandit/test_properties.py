"""Property-based checks of invariants that hold for any state, mask and batch split."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bandit import GaussianThompson, factorial_weights, load_policy, make_policy

ARM_POLICIES = ["fixed", "epsilon_greedy", "ucb", "thompson", "gaussian_thompson"]
K = 4

masks = hnp.arrays(np.bool_, st.tuples(st.integers(1, 12), st.just(K))).map(
    lambda m: m | (np.arange(K) == 0)[None, :] * ~m.any(axis=1, keepdims=True)
)
batches = st.lists(st.tuples(st.integers(0, K - 1), st.floats(0, 1)), max_size=40)


def build(name: str, batch: list[tuple[int, float]], weights: list[float]):
    options = {"weights": weights} if name == "fixed" else {}
    if name in {"thompson", "gaussian_thompson"}:
        options["n_draws"] = 500
    policy = make_policy(name, K, options=options, seed=3)
    if batch:
        actions = np.array([a for a, _ in batch])
        rewards = np.array([r for _, r in batch])
        policy.update(len(batch), actions, rewards, np.full(len(batch), 0.25))
    return policy


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(ARM_POLICIES),
    batch=batches,
    weights=st.lists(st.floats(0.01, 10), min_size=K, max_size=K),
    mask=masks,
    seed=st.integers(0, 2**32 - 1),
)
def test_distributions_respect_masks_and_draws_are_logged_honestly(name, batch, weights, mask, seed):
    policy = build(name, batch, weights)
    probs = policy.probabilities(len(mask), mask)
    assert np.all(probs >= 0) and np.all(probs[~mask] == 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    choices = policy.choose(len(mask), np.random.default_rng(seed), mask)
    rows = np.arange(len(mask))
    assert mask[rows, choices.actions].all()
    np.testing.assert_array_equal(choices.propensities, probs[rows, choices.actions])
    assert np.all((choices.propensities > 0) & (choices.propensities <= 1))
    assert load_policy(policy.to_bytes()).to_bytes() == policy.to_bytes()


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.floats(0, 100), min_size=1, max_size=4), min_size=1, max_size=4).filter(
    lambda slots: all(sum(s) > 0 for s in slots)))
def test_factorial_weights_have_the_slot_weights_as_marginals(slots):
    joint = factorial_weights(slots)
    assert abs(joint.sum() - 1) < 1e-12
    cube = joint.reshape([len(s) for s in slots])
    for axis, slot in enumerate(slots):
        others = tuple(i for i in range(len(slots)) if i != axis)
        np.testing.assert_allclose(cube.sum(axis=others), np.asarray(slot) / sum(slot), atol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    rewards=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    seed=st.integers(0, 1000),
)
def test_gaussian_posterior_does_not_depend_on_how_outcomes_are_batched(rewards, cuts, seed):
    rewards = np.asarray(rewards)
    actions = np.random.default_rng(seed).integers(0, 2, len(rewards))
    whole, parts = GaussianThompson(2), GaussianThompson(2)
    whole.update(len(rewards), actions, rewards, np.full(len(rewards), 0.5))
    edges = sorted({0, len(rewards), *[min(c, len(rewards)) for c in cuts]})
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        parts.update(stop - start, actions[start:stop], rewards[start:stop], np.full(stop - start, 0.5))
    for a, b in zip(whole.posterior(), parts.posterior(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
