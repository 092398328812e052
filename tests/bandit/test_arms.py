"""Epsilon-greedy and UCB1 against their closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import UCB1, EpsilonGreedy


def feed(policy, actions, rewards):
    actions = np.asarray(actions)
    policy.update(len(actions), actions, np.asarray(rewards, dtype=float), np.ones(len(actions)))


def test_epsilon_greedy_closed_form_with_mask():
    policy = EpsilonGreedy(4, epsilon=0.2)
    feed(policy, [0, 0, 1, 2, 3], [1, 0, 0.9, 0.2, 0.0])  # means 0.5, 0.9, 0.2, 0.0
    np.testing.assert_allclose(policy.probabilities(1)[0], [0.05, 0.05 + 0.8, 0.05, 0.05])
    masked = policy.probabilities(1, np.array([[True, False, True, True]]))[0]
    np.testing.assert_allclose(masked, [0.2 / 3 + 0.8, 0, 0.2 / 3, 0.2 / 3])


def test_epsilon_greedy_splits_ties_evenly():
    policy = EpsilonGreedy(3, epsilon=0.3)
    feed(policy, [0, 1, 2], [1, 1, 0])
    np.testing.assert_allclose(policy.probabilities(1)[0], [0.1 + 0.35, 0.1 + 0.35, 0.1])


def test_epsilon_greedy_untried_arms_use_initial_value():
    policy = EpsilonGreedy(3, epsilon=0.0, initial_value=2.0, min_share=0.0)
    feed(policy, [0], [1.0])
    np.testing.assert_allclose(policy.probabilities(1)[0], [0, 0.5, 0.5])
    # with the default floor of 0.01 arm 0 keeps 0.01 and the two untried arms share the rest
    floored = EpsilonGreedy(3, epsilon=0.0, initial_value=2.0)
    feed(floored, [0], [1.0])
    np.testing.assert_allclose(floored.probabilities(1)[0], [0.01, 0.495, 0.495], rtol=1e-12)


def test_ucb1_bounds_match_the_formula():
    policy = UCB1(3, alpha=0.5, batch_size=1, min_share=0.0)
    feed(policy, [0, 0, 0, 1, 2, 2], [1, 0, 1, 1, 0, 0])
    n = np.array([3, 1, 2])
    means = np.array([2 / 3, 1.0, 0.0])
    # Auer et al. (2002): mean + sqrt(2 ln N / n_a), here scaled by alpha = 0.5.
    expected = means + 0.5 * np.sqrt(2 * np.log(6) / n)
    np.testing.assert_allclose(policy.upper_bounds(), expected, rtol=1e-14)
    # a plan of one pull without a floor is textbook UCB1: the top bound alone
    np.testing.assert_array_equal(policy.probabilities(2), [[0, 1, 0], [0, 1, 0]])
    floored = UCB1(3, alpha=0.5, batch_size=1)
    feed(floored, [0, 0, 0, 1, 2, 2], [1, 0, 1, 1, 0, 0])
    np.testing.assert_allclose(floored.probabilities(1), [[0.01, 0.98, 0.01]], rtol=1e-12)


def test_ucb1_tries_untried_arms_first_and_splits_ties():
    policy = UCB1(4)
    np.testing.assert_array_equal(policy.probabilities(1)[0], [0.25] * 4)
    feed(policy, [0, 1], [1, 1])
    # the untried arms share the plan; the tried ones keep the floor of 0.01
    np.testing.assert_allclose(policy.probabilities(1)[0], [0.01, 0.01, 0.49, 0.49], rtol=1e-12)
    masked = policy.probabilities(1, np.array([[True, True, False, False]]))[0]
    np.testing.assert_array_equal(masked, [0.5, 0.5, 0, 0])


def test_ucb1_explored_is_a_draw_off_the_largest_share():
    policy = UCB1(2, alpha=1.0, batch_size=1)
    feed(policy, [0] * 50 + [1] * 2, [1] * 30 + [0] * 20 + [0, 1])  # means 0.6 and 0.5, arm 1 uncertain
    np.testing.assert_allclose(policy.probabilities(1), [[0.01, 0.99]], rtol=1e-12)  # arm 1's top bound
    choices = policy.choose(2000, np.random.default_rng(0))
    np.testing.assert_array_equal(choices.explored, choices.actions == 0)
    assert 0 < choices.explored.sum() < 60  # 2000 draws at 0.01: 20 expected, P(outside) < 1e-6


@pytest.mark.parametrize("policy_cls", [EpsilonGreedy, UCB1])
def test_batches_commute(policy_cls):
    rng = np.random.default_rng(1)
    actions, rewards = rng.integers(0, 3, 200), rng.random(200)
    whole, parts = policy_cls(3), policy_cls(3)
    feed(whole, actions, rewards)
    for part in (slice(150, 200), slice(0, 150)):
        feed(parts, actions[part], rewards[part])
    np.testing.assert_allclose(whole.probabilities(1), parts.probabilities(1), rtol=1e-12)
