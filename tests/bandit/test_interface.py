"""Every policy answers the same interface: distributions, honest draws, masks, snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import POLICY_NAMES, UCB1, Choices, FixedAllocation, PolicyError, load_policy
from tests.bandit.gof import assert_choices_match
from tests.bandit.policies import N_ACTIONS, contexts_for, trained_policy

ROWS = 6000


@pytest.fixture(scope="module", params=POLICY_NAMES)
def name(request):
    return request.param


def test_probabilities_are_distributions(name):
    policy = trained_policy(name)
    probs = policy.probabilities(contexts_for(name, 200, np.random.default_rng(1)))
    assert probs.shape == (200, N_ACTIONS)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


def test_choices_match_probabilities(name):
    policy = trained_policy(name)
    contexts = contexts_for(name, ROWS, np.random.default_rng(2))
    choices = policy.choose(contexts, np.random.default_rng(3))
    assert isinstance(choices, Choices) and len(choices) == ROWS
    assert choices.actions.dtype == np.int64 and choices.explored.dtype == np.bool_
    assert_choices_match(policy.probabilities(contexts), choices)


def test_allowed_mask_is_respected(name):
    policy = trained_policy(name)
    rng = np.random.default_rng(4)
    contexts = contexts_for(name, ROWS, rng)
    allowed = rng.random((ROWS, N_ACTIONS)) < 0.6
    allowed[np.arange(ROWS), rng.integers(0, N_ACTIONS, ROWS)] = True
    probs = policy.probabilities(contexts, allowed)
    assert np.all(probs[~allowed] == 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    choices = policy.choose(contexts, np.random.default_rng(5), allowed)
    assert allowed[np.arange(ROWS), choices.actions].all()
    assert_choices_match(probs, choices)


def test_single_allowed_action_has_propensity_one(name):
    policy = trained_policy(name)
    allowed = np.zeros((3, N_ACTIONS), dtype=bool)
    allowed[:, 2] = True
    contexts = contexts_for(name, 3, np.random.default_rng(6))
    choices = policy.choose(contexts, np.random.default_rng(7), allowed)
    np.testing.assert_array_equal(choices.actions, [2, 2, 2])
    np.testing.assert_allclose(choices.propensities, 1.0, atol=1e-12)
    assert not choices.explored.any()


def test_snapshot_round_trip_makes_the_same_choices(name):
    policy = trained_policy(name)
    restored = load_policy(policy.to_bytes())
    assert type(restored) is type(policy)
    contexts = contexts_for(name, 300, np.random.default_rng(8))
    first = policy.choose(contexts, np.random.default_rng(9))
    second = restored.choose(contexts, np.random.default_rng(9))
    np.testing.assert_array_equal(first.actions, second.actions)
    np.testing.assert_array_equal(first.propensities, second.propensities)
    np.testing.assert_array_equal(first.explored, second.explored)
    # Both keep learning identically from the same delayed batch.
    rewards = (first.actions == 1).astype(float)
    policy.update(contexts, first.actions, rewards, first.propensities)
    restored.update(contexts, first.actions, rewards, first.propensities)
    np.testing.assert_array_equal(policy.probabilities(contexts), restored.probabilities(contexts))


def test_class_from_bytes_restores_its_own_snapshots_only(name):
    policy = trained_policy(name)
    restored = type(policy).from_bytes(policy.to_bytes())
    contexts = contexts_for(name, 20, np.random.default_rng(18))
    np.testing.assert_allclose(restored.probabilities(contexts), policy.probabilities(contexts), atol=1e-6)
    other = FixedAllocation if name != "fixed" else UCB1
    with pytest.raises(PolicyError, match=f"snapshot: holds a '{policy.tag}' policy, not '{other.tag}'"):
        other.from_bytes(policy.to_bytes())


def test_same_seed_same_choices(name):
    contexts = contexts_for(name, 300, np.random.default_rng(10))
    a = trained_policy(name, seed=3).choose(contexts, np.random.default_rng(11))
    b = trained_policy(name, seed=3).choose(contexts, np.random.default_rng(11))
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.propensities, b.propensities)


def test_probabilities_do_not_change_without_update(name):
    policy = trained_policy(name)
    contexts = contexts_for(name, 50, np.random.default_rng(12))
    before = policy.probabilities(contexts)
    policy.choose(contexts, np.random.default_rng(13))
    np.testing.assert_array_equal(policy.probabilities(contexts), before)


def test_empty_batch(name):
    policy = trained_policy(name)
    contexts = contexts_for(name, 0, np.random.default_rng(14))
    assert policy.probabilities(contexts).shape == (0, N_ACTIONS)
    assert len(policy.choose(contexts, np.random.default_rng(15))) == 0
    policy.update(contexts, np.array([], dtype=int), np.array([]), np.array([]))


@pytest.mark.parametrize("policy_name", ["fixed", "epsilon_greedy", "vw"])
def test_explored_is_off_the_most_likely_action(policy_name):
    # For these three the greedy action is the one with the largest probability in its row.
    policy = trained_policy(policy_name)
    contexts = contexts_for(policy_name, 2000, np.random.default_rng(16))
    choices = policy.choose(contexts, np.random.default_rng(17))
    top = policy.probabilities(contexts).max(axis=1)
    np.testing.assert_array_equal(choices.explored, choices.propensities < top)
    assert 0 < choices.explored.mean() < 1
