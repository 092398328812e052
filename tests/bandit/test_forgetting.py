"""Non-stationary policies: ``discount`` (weight per day of age) and ``window_days`` (sliding window).

References: the discounted sums computed with numpy from the raw rows, and a stationary policy fed only
the rows inside the window. Then the scenario of issue 15: the best arm changes at batch 10.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import PolicyError, load_policy, make_policy
from bandit.snapshot import decode_snapshot

K = 3
FORGETTING_POLICIES = ["thompson", "gaussian_thompson", "ucb", "epsilon_greedy"]


def learned_rows(seed: int, n: int = 300, days: float = 20.0):
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, K, n)
    rewards = (rng.random(n) < np.array([0.2, 0.5, 0.3])[actions]).astype(float)
    times = 19_000 + rng.random(n) * days  # days since the Unix epoch, in 2022
    weights = rng.choice([1.0, 0.5, 0.25], n)
    return actions, rewards, times, weights


def feed_in_batches(policy, actions, rewards, times, weights, order: np.ndarray, parts: int) -> None:
    for rows in np.array_split(order, parts):
        policy.update(len(rows), actions[rows], rewards[rows], np.full(len(rows), 1 / K),
                      weights=weights[rows], times=times[rows])


def test_discounted_beta_posterior_is_the_discounted_sums_whatever_the_order():
    actions, rewards, times, weights = learned_rows(1)
    gamma = 0.8
    shuffled = make_policy("thompson", K, options={"discount": gamma, "prior_alpha": 2.0})
    feed_in_batches(shuffled, actions, rewards, times, weights, np.random.default_rng(2).permutation(300), 7)
    # reference: each row weighted w gamma^(T - t), T the newest time learned
    age = times.max() - times
    factor = weights * gamma**age
    alpha, beta = shuffled.posterior()
    np.testing.assert_allclose(alpha, 2.0 + np.bincount(actions, factor * rewards, K), rtol=1e-12)
    np.testing.assert_allclose(beta, 1.0 + np.bincount(actions, factor * (1 - rewards), K), rtol=1e-12)


@pytest.mark.parametrize("name", FORGETTING_POLICIES)
def test_a_window_learns_exactly_the_rows_of_its_last_hours(name):
    actions, rewards, times, weights = learned_rows(3)
    window = 2.5  # 60 hours
    windowed = make_policy(name, K, options={"window_days": window}, seed=4)
    feed_in_batches(windowed, actions, rewards, times, weights, np.random.default_rng(5).permutation(300), 5)
    # reference: the hour of each row, kept while within the 60 hours up to the newest row's hour
    hours = np.floor(times * 24).astype(int)
    inside = hours >= hours.max() - 60 + 1
    stationary = make_policy(name, K, seed=4)
    stationary.update(int(inside.sum()), actions[inside], rewards[inside], np.full(int(inside.sum()), 1 / K),
                      weights=weights[inside])
    for mine, theirs in zip(learned(windowed), learned(stationary), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(windowed.probabilities(1), stationary.probabilities(1), atol=1e-12)


def learned(policy) -> tuple[np.ndarray, ...]:
    """What a policy learned, through its public answers."""
    if hasattr(policy, "posterior"):
        return policy.posterior()
    if hasattr(policy, "upper_bounds"):
        return policy.upper_bounds(), policy.stats.arm_to_count
    return policy.stats.arm_to_count, policy.stats.arm_to_sum


@st.composite
def timed_revisions(draw: st.DrawFn, name: str):
    n = draw(st.integers(1, 30))
    column = lambda strategy: np.array(draw(st.lists(strategy, min_size=n, max_size=n)))  # noqa: E731
    rewards = st.sampled_from([0.0, 0.5, 1.0]) if name == "thompson" else st.integers(-8, 8).map(
        lambda i: i / 4)
    weights = st.sampled_from([0.0, 0.25, 0.5, 1.0])
    times = column(st.integers(0, 96).map(lambda h: 19_000 + h / 24))  # whole hours over four days
    return (column(st.integers(0, K - 1)), column(weights), column(rewards), column(weights),
            column(rewards), times)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data(), name=st.sampled_from(FORGETTING_POLICIES),
       option=st.sampled_from([{"discount": 0.5}, {"window_days": 1.5}, {"window_days": 30}]))
def test_revise_under_forgetting_equals_learning_the_new_rows(data, name, option):
    actions, old_w, old_r, new_w, new_r, times = data.draw(timed_revisions(name))
    n = len(actions)
    revised, direct = (make_policy(name, K, options=dict(option), seed=1) for _ in range(2))
    revised.update(n, actions, old_r, np.full(n, 1 / K), weights=old_w, times=times)
    revised.revise(n, actions, old_r, new_r, old_weights=old_w, new_weights=new_w, times=times)
    direct.update(n, actions, new_r, np.full(n, 1 / K), weights=new_w, times=times)
    _, left = decode_snapshot(revised.to_bytes())
    _, right = decode_snapshot(direct.to_bytes())
    for key, value in right.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            # quarter weights and rewards and powers of 1/2: exact sums; the moments' divisions round
            np.testing.assert_allclose(left[key], value, rtol=1e-9, atol=1e-9, err_msg=key)
        else:
            np.testing.assert_equal(left[key], value)


@pytest.mark.parametrize("option", [{"discount": 0.9}, {"window_days": 3}])
@pytest.mark.parametrize("name", FORGETTING_POLICIES)
def test_snapshots_restore_bit_for_bit_and_keep_learning_alike(name, option):
    actions, rewards, times, weights = learned_rows(6)
    policy = make_policy(name, K, options=dict(option), seed=2)
    feed_in_batches(policy, actions, rewards, times, weights, np.arange(200), 3)
    restored = load_policy(policy.to_bytes())
    assert restored.to_bytes() == policy.to_bytes()
    for p in (policy, restored):
        feed_in_batches(p, actions, rewards, times + 2, weights, np.arange(200, 300), 2)
    assert restored.to_bytes() == policy.to_bytes()
    np.testing.assert_array_equal(restored.probabilities(1), policy.probabilities(1))


@pytest.mark.parametrize("option", ["discount", "window_days"])
def test_forgetting_needs_times_and_says_so(option):
    policy = make_policy("thompson", K, options={option: 0.5})
    before = policy.to_bytes()
    with pytest.raises(PolicyError, match=f"times: required by options.{option}"):
        policy.update(2, np.array([0, 1]), np.array([1.0, 0.0]), np.full(2, 0.5))
    assert policy.to_bytes() == before
    policy.update(0, np.array([], dtype=int), np.array([]), np.array([]))  # nothing to time


def test_discount_and_window_are_alternatives():
    with pytest.raises(PolicyError, match="discount and window_days are alternatives"):
        make_policy("ucb", K, options={"discount": 0.9, "window_days": 7})


def test_discounted_ucb_bounds_use_the_discounted_counts():
    policy = make_policy("ucb", 2, options={"discount": 0.5, "batch_size": 1, "min_share": 0.0})
    policy.update(4, np.array([0, 0, 1, 1]), np.array([1.0, 0.0, 1.0, 1.0]), np.full(4, 0.5),
                  times=np.array([0.0, 2.0, 1.0, 2.0]))
    # weights 0.5^(2 - t): arm 0 has n = 0.25 + 1, sum 0.25; arm 1 has n = 0.5 + 1, sum 1.5
    n = np.array([1.25, 1.5])
    expected = np.array([0.25 / 1.25, 1.0]) + np.sqrt(2 * np.log(2.75) / n)  # Garivier & Moulines 2011
    np.testing.assert_allclose(policy.upper_bounds(), expected, rtol=1e-14)


def run_change_at_batch_10(options: dict, seed: int, batches: int = 13) -> np.ndarray:
    """Daily batches of 1,000 under Thompson sampling; arm 1 becomes the best at batch 10.

    Returns each batch's share of traffic to arm 1, shape (batches,).
    """
    rng = np.random.default_rng(seed)
    before, after = np.array([0.10, 0.05, 0.04]), np.array([0.04, 0.10, 0.05])
    policy = make_policy("thompson", 3, options=options, seed=seed)
    shares = np.empty(batches)
    for day in range(batches):
        rates = before if day < 10 else after
        choices = policy.choose(1000, rng)
        shares[day] = np.mean(choices.actions == 1)
        clicks = (rng.random(1000) < rates[choices.actions]).astype(float)
        policy.update(1000, choices.actions, clicks, choices.propensities, times=np.full(1000, float(day)))
    return shares


@pytest.mark.parametrize("seed", range(8))
def test_discounted_thompson_follows_a_change_of_best_arm_within_three_batches(seed):
    # batches 10, 11 and 12 come after the change; the third sends most of its traffic to arm 1
    discounted = run_change_at_batch_10({"discount": 0.5}, seed)
    stationary = run_change_at_batch_10({}, seed)
    assert discounted[12] > 0.5, discounted
    assert stationary[12] < 0.1, stationary  # ten days of evidence for arm 0 outweigh three against it
    assert discounted[:10].mean() < 0.2  # before the change both mostly send arm 0
