"""Epsilon-greedy and UCB1 against their closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import UCB1, EpsilonGreedy
from bandit.ucb import batch_schedule


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


def sequential_ucb_pulls(means: np.ndarray, counts: np.ndarray, width: float, pulls: int) -> np.ndarray:
    """Reference: sequential UCB one pull at a time, each pending pull counted, the level held."""
    pending = np.zeros(len(means))
    for _ in range(pulls):
        index = means + width / np.sqrt(counts + pending)
        pending[np.argmax(index)] += 1
    return pending


@pytest.mark.parametrize("seed", range(30))
def test_the_batch_plan_is_the_schedule_of_sequential_ucb(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    means, counts = rng.random(k), rng.integers(1, 200, k).astype(float) + rng.random(k)
    width = float(rng.uniform(0.05, 3.0))
    pulls = int(rng.integers(1, 600))
    planned = batch_schedule(means, counts, width, pulls)
    np.testing.assert_allclose(planned, sequential_ucb_pulls(means, counts, width, pulls), atol=1e-9)


def test_the_plan_splits_tied_arms_evenly():
    planned = batch_schedule(np.array([0.5, 0.5, 0.1]), np.array([10.0, 10.0, 10.0]), 1.0, 7)
    np.testing.assert_allclose(planned, [3.5, 3.5, 0.0])


def test_ucb_spreads_a_batch_over_the_arms_sequential_ucb_would_pull():
    # 30 rewards per arm, means 0.5, 0.45, 0.2: one pull gives the top bound everything, while a plan
    # of 1,000 pulls shares them as sequential UCB would (the floor raises arm 2 to 0.01)
    policy = UCB1(3, batch_size=1000, min_share=0.0)
    feed(policy, np.repeat([0, 1, 2], 30), np.r_[np.ones(15), np.zeros(15), np.ones(14), np.zeros(16),
                                                 np.ones(6), np.zeros(24)])
    width = np.sqrt(2 * np.log(90))
    expected = sequential_ucb_pulls(np.array([0.5, 14 / 30, 0.2]), np.full(3, 30.0), width, 1000) / 1000
    np.testing.assert_allclose(policy.probabilities(1)[0], expected, atol=1e-12)
    assert expected[1] > 0.3 and expected[0] > 0.4  # spread, not one arm with propensity 1
    textbook = UCB1(3, batch_size=1, min_share=0.0)
    feed(textbook, np.repeat([0, 1, 2], 30), np.r_[np.ones(15), np.zeros(15), np.ones(14), np.zeros(16),
                                                   np.ones(6), np.zeros(24)])
    np.testing.assert_array_equal(textbook.probabilities(1)[0], [1.0, 0.0, 0.0])
