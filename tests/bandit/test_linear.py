"""Feature hashing, LinUCB and linear Thompson sampling against closed forms."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import stats

from bandit import FeatureHasher, LinearThompson, LinUCB, make_policy

CONTEXTS = [{"segment": "north", "mobile": True, "recency": 0.5}, {"segment": "south", "recency": 2.0}, {}]


def reference_slot(token: str, dim: int) -> tuple[int, float]:
    """The documented rule: blake2b-64 of the UTF-8 token, little endian; bit 0 is the sign."""
    value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return 1 + (value >> 1) % (dim - 1), 1.0 if value & 1 else -1.0


def test_hasher_encodes_intercept_one_hot_and_numbers():
    x = FeatureHasher(64).encode(CONTEXTS)
    expected = np.zeros((3, 64))
    expected[:, 0] = 1.0
    for row, context in enumerate(CONTEXTS):
        for name, value in context.items():
            if isinstance(value, bool):
                column, sign = reference_slot(f"{name}={str(value).lower()}", 64)
                expected[row, column] += sign
            elif isinstance(value, str):
                column, sign = reference_slot(f"{name}={value}", 64)
                expected[row, column] += sign
            else:
                column, sign = reference_slot(name, 64)
                expected[row, column] += sign * value
    np.testing.assert_array_equal(x, expected)


def test_numpy_scalars_encode_like_python_ones():
    hasher = FeatureHasher(32)
    python = hasher.encode([{"vip": True, "segment": "a", "recency": 2.5, "orders": 3}])
    numpy = hasher.encode([{"vip": np.True_, "segment": np.str_("a"), "recency": np.float64(2.5),
                            "orders": np.int64(3)}])
    np.testing.assert_array_equal(python, numpy)


def test_none_means_missing():
    hasher = FeatureHasher(32)
    np.testing.assert_array_equal(hasher.encode([{"segment": None, "recency": 1.5}]),
                                  hasher.encode([{"recency": 1.5}]))


def fit_data(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    segments = np.array(["north", "south", "east"])[rng.integers(0, 3, n)]
    contexts = [{"segment": s, "recency": float(r)} for s, r in zip(segments, rng.random(n), strict=True)]
    actions = rng.integers(0, 3, n)
    rewards = (segments == "north") * (actions == 0) + 0.3 * (actions == 2) + rng.normal(0, 0.1, n)
    return contexts, actions, rewards


@pytest.mark.parametrize("policy_cls", [LinUCB, LinearThompson])
def test_ridge_estimates_match_least_squares_on_augmented_system(policy_cls):
    contexts, actions, rewards = fit_data()
    policy = policy_cls(3, dim=16, regularization=2.0)
    for part in np.array_split(np.arange(len(actions)), 4):  # delayed batches
        policy.update([contexts[i] for i in part], actions[part], rewards[part], np.full(len(part), 1 / 3))
    x_new = FeatureHasher(16).encode(CONTEXTS)
    mean, width = policy.reward_estimates(CONTEXTS)
    x_all = FeatureHasher(16).encode(contexts)
    for arm in range(3):
        x, y = x_all[actions == arm], rewards[actions == arm]
        # Ridge as ordinary least squares on [X; sqrt(lambda) I] and [y; 0] (numpy lstsq).
        augmented = np.vstack([x, np.sqrt(2.0) * np.eye(16)])
        theta = np.linalg.lstsq(augmented, np.r_[y, np.zeros(16)], rcond=None)[0]
        np.testing.assert_allclose(mean[:, arm], x_new @ theta, rtol=1e-9, atol=1e-12)
        gram = 2.0 * np.eye(16) + x.T @ x
        expected_width = np.sqrt(np.einsum("nd,nd->n", x_new, np.linalg.solve(gram, x_new.T).T))
        np.testing.assert_allclose(width[:, arm], expected_width, rtol=1e-9)


def test_linucb_takes_the_best_bound():
    contexts, actions, rewards = fit_data(1)
    policy = LinUCB(3, alpha=0.7, dim=16, min_share=0.0)
    policy.update(contexts, actions, rewards, np.full(len(actions), 1 / 3))
    mean, width = policy.reward_estimates(CONTEXTS)
    best = np.argmax(mean + 0.7 * width, axis=1)
    np.testing.assert_array_equal(policy.probabilities(CONTEXTS), np.eye(3)[best])
    # the default floor leaves each other action 0.01
    floored = LinUCB(3, alpha=0.7, dim=16)
    floored.update(contexts, actions, rewards, np.full(len(actions), 1 / 3))
    np.testing.assert_allclose(floored.probabilities(CONTEXTS), 0.01 + 0.97 * np.eye(3)[best], rtol=1e-12)


def test_linear_ts_two_actions_match_normal_difference():
    contexts, actions, rewards = fit_data(2, n=60)
    actions = actions % 2
    policy = LinearThompson(2, scale=0.5, n_draws=20_000, dim=16, seed=4)
    policy.update(contexts, actions, rewards, np.full(len(actions), 0.5))
    mean, width = policy.reward_estimates(CONTEXTS)
    sd = 0.5 * width
    # Scores are independent normals: P(1 beats 0) = Phi((m1 - m0) / sqrt(s0^2 + s1^2)).
    exact = stats.norm.cdf((mean[:, 1] - mean[:, 0]) / np.sqrt(sd[:, 0] ** 2 + sd[:, 1] ** 2))
    probs = policy.probabilities(CONTEXTS)[:, 1]
    tolerance = 5 * np.sqrt(np.maximum(exact * (1 - exact), 1e-4) / 20_000)
    assert np.all(np.abs(probs - exact) < tolerance), (probs, exact)


def test_linear_ts_beats_best_fixed_arm_when_the_best_differs_by_segment():
    rng = np.random.default_rng(0)
    policy = make_policy("linear_ts", 3, options={"dim": 16, "n_draws": 200}, seed=1)
    segments = np.array(["young", "family", "retired"])
    earned = []
    for _ in range(30):
        seg = rng.integers(0, 3, 100)
        contexts = [{"segment": segments[s]} for s in seg]
        choices = policy.choose(contexts, rng)
        rates = np.where(choices.actions == seg, 0.12, 0.04)
        earned.append(rates)
        clicks = (rng.random(100) < rates).astype(float)
        policy.update(contexts, choices.actions, clicks, choices.propensities)
    rate = np.concatenate(earned).mean()
    assert rate > (0.12 + 0.04 + 0.04) / 3 + 0.02, rate


def test_linear_ts_choices_are_calibrated_to_their_propensities_and_to_thompson_draws():
    # 5 actions all contending for one context, no floor: the frequency of each choice over 100,000
    # draws matches the logged propensity, and the propensities match Thompson sampling itself
    # (scores drawn from each action's posterior, the largest taken), each within 5 standard errors.
    rng = np.random.default_rng(11)
    policy = LinearThompson(5, scale=1.0, dim=8, min_share=0.0)
    features = rng.random((400, 3))
    actions = rng.integers(0, 5, 400)
    clicks = (rng.random(400) < np.array([0.1, 0.2, 0.25, 0.3, 0.35])[actions]).astype(float)
    policy.update(features, actions, clicks, np.full(400, 0.2))
    n = 100_000
    context = np.tile(rng.random((1, 3)), (n, 1))
    encoded = policy.encode(context)
    choices = policy.choose(encoded, np.random.default_rng(12))
    propensity = policy.probabilities(context[:1])[0]
    np.testing.assert_allclose(choices.propensities, propensity[choices.actions], rtol=1e-12)
    frequency = np.bincount(choices.actions, minlength=5) / n
    mean, width = policy.reward_estimates(context[:1])
    scores = np.random.default_rng(13).normal(mean[0], width[0], size=(n, 5))
    thompson = np.bincount(scores.argmax(axis=1), minlength=5) / n
    standard_error = np.sqrt(propensity * (1 - propensity) / n)
    assert np.all(propensity > 0.005), propensity  # all five contend: the five-way integral
    assert np.all(np.abs(frequency - propensity) < 5 * standard_error), (frequency, propensity)
    assert np.all(np.abs(thompson - propensity) < 5 * standard_error), (thompson, propensity)
