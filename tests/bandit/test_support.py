"""Every adaptive policy leaves every allowed arm at least ``min_share``, and logs the true probability.

Estimates that weight decisions by their logged propensities exist only where each arm keeps some
traffic (issue 14): no propensity may reach 1 while two arms are allowed, and the logged propensity
must be the frequency with which the arm is drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from bandit import load_policy, make_policy
from bandit.sampling import best_set, floored_split, pool_equal_arms, split_evenly, with_min_share
from bandit.snapshot import encode_snapshot
from tests.bandit.policies import ACTION_FEATURES, contexts_for

ADAPTIVE = ["epsilon_greedy", "ucb", "thompson", "gaussian_thompson", "linear_ts", "linucb", "vw"]
K = 4
#: A two-sided normal tail of 1e-6 per arm: a correct sampler fails this about once in a million runs.
STRICT_Z = stats.norm.isf(0.5e-6)


def dominated(name: str, seed: int = 0, **floor: float):
    """A policy (default options, greedy where it can be) after learning that arm 2 always pays."""
    options: dict = {"epsilon": 0.0} if name == "epsilon_greedy" else {}
    if name == "vw":
        options = {"vw_args": "--cb_explore_adf --epsilon 0.0 -q UA"}
    options.update(floor)
    policy = make_policy(name, K, options=options, action_features=ACTION_FEATURES, seed=seed)
    rng = np.random.default_rng(seed)
    n = 2000
    contexts = contexts_for(name, n, rng)
    actions = rng.integers(0, K, n)
    policy.update(contexts, actions, (actions == 2).astype(float), np.full(n, 1 / K))
    return policy


@pytest.mark.parametrize("name", ADAPTIVE)
def test_no_propensity_reaches_one_while_two_arms_are_allowed(name):
    policy = dominated(name)
    rng = np.random.default_rng(1)
    contexts = contexts_for(name, 3000, rng)
    allowed = rng.random((3000, K)) < 0.5
    allowed[:, 2] = True
    allowed[np.arange(3000), rng.choice([0, 1, 3], 3000)] = True  # two or more arms per row
    for mask in (None, allowed):
        probs = policy.probabilities(contexts, mask)
        where = np.ones(probs.shape, dtype=bool) if mask is None else mask
        assert probs.max() < 1
        assert probs[where].min() >= 0.01 - 1e-15
        choices = policy.choose(contexts, rng, mask)
        assert choices.propensities.max() <= 1 - 0.01 * (where.sum(axis=1).min() - 1) + 1e-15
        assert choices.propensities.min() >= 0.01 - 1e-15
        assert (choices.actions == 2).mean() > 0.9  # the floor does not stop the policy from exploiting


@pytest.mark.parametrize("name", ADAPTIVE)
def test_without_the_floor_the_same_data_make_the_choice_all_but_certain(name):
    # the floor is what keeps the propensities above: min_share 0 lets the top arm reach (nearly) 1
    probs = dominated(name, min_share=0.0).probabilities(contexts_for(name, 50, np.random.default_rng(2)))
    assert probs.max() > 0.999


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(["epsilon_greedy", "ucb", "thompson", "gaussian_thompson"]),
    batch=st.lists(st.tuples(st.integers(0, K - 1), st.floats(0, 1)), max_size=60),
    min_share=st.sampled_from([0.0, 0.001, 0.01, 0.1, 0.25]),
    mask=hnp.arrays(np.bool_, st.tuples(st.integers(1, 8), st.just(K))),
)
def test_probabilities_sum_to_one_and_every_allowed_arm_gets_its_share(name, batch, min_share, mask):
    mask = mask | ~mask.any(axis=1, keepdims=True)  # every row allows something
    options = {"min_share": min_share, **({"n_draws": 300} if "thompson" in name else {})}
    policy = make_policy(name, K, options=options, seed=1)
    if batch:
        policy.update(len(batch), np.array([a for a, _ in batch]), np.array([r for _, r in batch]),
                      np.full(len(batch), 0.25))
    probs = policy.probabilities(len(mask), mask)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(probs[~mask] == 0)
    assert np.all(probs[mask] >= min_share - 1e-15)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    raw=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 7)), elements=st.floats(0, 1)),
    share=st.floats(0, 1),
    mask_seed=st.integers(0, 100),
)
def test_the_floor_scales_the_arms_above_it_by_one_factor_and_keeps_their_order(raw, share, mask_seed):
    mask = np.random.default_rng(mask_seed).random(raw.shape) < 0.7
    mask[:, 0] = True
    p = np.where(mask, raw, 0.0)
    p[p.sum(axis=1) == 0, 0] = 1.0
    p = p / p.sum(axis=1, keepdims=True)
    share = min(share, 1 / raw.shape[1])
    out = with_min_share(p, mask, share)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(out[~mask] == 0) and np.all(out[mask] >= share - 1e-12)
    for row, before, allowed in zip(out, p, mask, strict=True):
        a, b = row[allowed], before[allowed]
        above = a > share + 1e-12
        if above.any():  # the arms above the floor keep their ratios: one common factor <= 1
            ratio = a[above] / b[above]
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
            assert ratio[0] <= 1 + 1e-12
        assert np.all(np.diff(a[np.argsort(b, kind="stable")]) >= -1e-12)  # order kept
        if np.all(b >= share):
            np.testing.assert_allclose(a, b, rtol=1e-12)  # already above the floor: unchanged


def test_the_floor_closed_forms():
    full = np.ones(3, dtype=bool)
    # one arm at 0.995: the two others rise to 0.01 and it keeps 1 - 0.02
    np.testing.assert_allclose(with_min_share(np.array([0.995, 0.005, 0.0]), full, 0.01), [0.98, 0.01, 0.01])
    # epsilon-greedy with epsilon / m = 0.05 >= 0.01: unchanged
    np.testing.assert_array_equal(with_min_share(np.array([0.9, 0.05, 0.05]), full, 0.01), [0.9, 0.05, 0.05])
    # at min_share = 1 / m the split is uniform
    np.testing.assert_allclose(with_min_share(np.array([1.0, 0.0, 0.0]), full, 1 / 3), [1 / 3] * 3)
    # a disallowed arm stays at 0; [0.7, 0.3] against 0.4 becomes [0.6, 0.4]
    np.testing.assert_allclose(
        with_min_share(np.array([0.7, 0.0, 0.3]), np.array([True, False, True]), 0.4), [0.6, 0.0, 0.4])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    scores=hnp.arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 7)), elements=st.integers(0, 2)),
    share=st.floats(0, 1),
    mask_seed=st.integers(0, 100),
    everything=st.booleans(),
)
def test_the_closed_form_floor_of_a_tie_set_equals_the_general_floor(scores, share, mask_seed, everything):
    mask = np.ones(scores.shape, bool)
    if not everything:
        mask = np.random.default_rng(mask_seed).random(scores.shape) < 0.6
        mask[:, -1] = True
    share = min(share, 1 / scores.shape[1])
    members = best_set(scores.astype(float), mask)
    expected = with_min_share(split_evenly(members), mask, share)
    np.testing.assert_allclose(floored_split(members, mask, share), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["thompson", "ucb", "linucb", "vw"])
def test_logged_propensities_are_the_frequencies_of_the_draws(name):
    """Per arm, the count of draws against the sum of logged propensities: a proportion test at a
    strict z (the floor's 0.01 arms included: 200,000 rows give each about 2,000 expected draws)."""
    policy = dominated(name)
    rng = np.random.default_rng(7)
    n = 200_000 if name in {"thompson", "ucb"} else 20_000  # contextual policies decide row by row
    contexts = contexts_for(name, n, rng)
    choices = policy.choose(contexts, rng)
    probs = policy.probabilities(contexts)
    np.testing.assert_array_equal(choices.propensities, probs[np.arange(n), choices.actions])
    observed = np.bincount(choices.actions, minlength=K)
    expected = probs.sum(axis=0)
    variance = (probs * (1 - probs)).sum(axis=0)  # independent rows: a sum of Bernoulli variances
    z = (observed - expected) / np.sqrt(variance)
    assert np.all(np.abs(z) < STRICT_Z), (observed, expected, z)
    assert expected.min() >= 0.01 * n - 1e-6  # the floor is in what was tested


def test_a_snapshot_from_before_the_floor_restores_without_one():
    # the state a policy saved before min_share existed: UCB then pulled the top bound alone
    old = encode_snapshot("ucb", {"n_actions": 3, "alpha": 0.5, "count": np.array([3.0, 1.0, 2.0]),
                                  "sum": np.array([2.0, 1.0, 0.0])})
    restored = load_policy(old)
    np.testing.assert_array_equal(restored.probabilities(1), [[0, 1, 0]])
    assert load_policy(restored.to_bytes()).to_bytes() == restored.to_bytes()
    old_beta = encode_snapshot("thompson", {
        "n_actions": 2, "prior_alpha": 1.0, "prior_beta": 1.0, "n_draws": 1000, "seed": 0,
        "successes": np.array([500.0, 0.0]), "failures": np.array([0.0, 500.0])})
    assert load_policy(old_beta).probabilities(1).tolist() == [[1.0, 0.0]]


def pooled_reference(p: np.ndarray, allowed: np.ndarray, *parameters: np.ndarray) -> np.ndarray:
    """Row by row: each allowed action gets the mean over the allowed actions with all its parameters."""
    out = p.copy()
    for row in range(len(p)):
        for a in np.flatnonzero(allowed[row]):
            same = [b for b in np.flatnonzero(allowed[row])
                    if all(v[row, a] == v[row, b] for v in parameters)]
            out[row, a] = np.mean(p[row, same])
    return out


@pytest.mark.parametrize("k", [1, 3, 5, 12])  # 12: more actions than the pairwise check takes
def test_pool_equal_arms_averages_exactly_the_actions_with_equal_parameters(k):
    rng = np.random.default_rng(k)
    p = rng.dirichlet(np.ones(k), 200)
    allowed = rng.random((200, k)) < 0.8
    first, second = rng.integers(0, 3, (200, k)).astype(float), rng.integers(0, 2, (200, k)).astype(float)
    first[:100] = rng.random((100, k))  # half the rows without ties in the first parameter
    np.testing.assert_allclose(pool_equal_arms(p, allowed, first, second),
                               pooled_reference(p, allowed, first, second), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(pool_equal_arms(p[:100], allowed[:100], first[:100], second[:100]), p[:100])
    np.testing.assert_allclose(pool_equal_arms(p[150], allowed[150], first[150], second[150]),
                               pooled_reference(p[150:151], allowed[150:151], first[150:151],
                                                second[150:151])[0], rtol=1e-15, atol=0)
