"""Fixed allocation and the factorial weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bandit import PolicyError, factorial_weights, load_policy, make_policy
from tests.bandit.gof import assert_choices_match


def test_factorial_weights_follow_itertools_product_order():
    slots = [[1.0, 3.0], [2.0, 1.0, 1.0], [1.0, 1.0]]
    weights = factorial_weights(slots)
    normalised = [np.asarray(s) / sum(s) for s in slots]
    ranges = [range(len(s)) for s in slots]
    expected = [
        np.prod([normalised[j][i] for j, i in enumerate(combo)]) for combo in itertools.product(*ranges)
    ]
    np.testing.assert_allclose(weights, expected, rtol=1e-15)
    assert weights.sum() == pytest.approx(1.0, abs=1e-15)


def test_fixed_propensities_are_exact_weights():
    policy = make_policy("fixed", 3, options={"weights": [1, 2, 5]})
    probs = policy.probabilities(4)
    np.testing.assert_array_equal(probs, np.tile([1 / 8, 2 / 8, 5 / 8], (4, 1)))


def test_uniform_when_no_weights():
    probs = make_policy("fixed", 4).probabilities(2)
    np.testing.assert_array_equal(probs, np.full((2, 4), 0.25))


def test_fixed_choices_match_weights_chi_square():
    policy = make_policy("fixed", 4, options={"weights": factorial_weights([[1, 3], [2, 1]]).tolist()})
    rng = np.random.default_rng(11)
    choices = policy.choose(40_000, rng)
    assert_choices_match(policy.probabilities(40_000), choices)


def test_allowed_mask_renormalises_and_is_respected():
    policy = make_policy("fixed", 3, options={"weights": [1, 2, 5]})
    rng = np.random.default_rng(3)
    allowed = np.tile([[True, True, False], [False, True, True], [True, True, True]], (10_000, 1))
    probs = policy.probabilities(len(allowed), allowed)
    np.testing.assert_allclose(probs[:3], [[1 / 3, 2 / 3, 0], [0, 2 / 7, 5 / 7], [1 / 8, 2 / 8, 5 / 8]])
    choices = policy.choose(len(allowed), rng, allowed)
    assert allowed[np.arange(len(allowed)), choices.actions].all()
    assert_choices_match(probs, choices)


def test_explored_marks_draws_off_the_largest_weight():
    policy = make_policy("fixed", 3, options={"weights": [1, 2, 5]})
    choices = policy.choose(1000, np.random.default_rng(0))
    np.testing.assert_array_equal(choices.explored, choices.actions != 2)
    uniform = make_policy("fixed", 3).choose(100, np.random.default_rng(0))
    assert not uniform.explored.any()


def test_zero_weight_only_allowed_is_an_error():
    policy = make_policy("fixed", 3, options={"weights": [1, 0, 1]})
    with pytest.raises(PolicyError, match=r"allowed: every allowed action \[1\] has weight 0"):
        policy.probabilities(1, np.array([[False, True, False]]))


def test_snapshot_round_trip_same_choices():
    policy = make_policy("fixed", 3, options={"weights": [0.2, 0.3, 0.5]})
    restored = load_policy(policy.to_bytes())
    a = policy.choose(500, np.random.default_rng(5))
    b = restored.choose(500, np.random.default_rng(5))
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.propensities, b.propensities)
    assert restored.to_bytes() == policy.to_bytes()


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ([], "slot_weights: expected a non-empty list"),
        ([[1, 1], []], r"slot_weights\[1\]: expected a non-empty list of weights"),
        ([[1, -1]], r"slot_weights\[0\]: weights must be finite and >= 0"),
        ([[0, 0]], r"slot_weights\[0\]: weights must not all be zero"),
        ([[1, float("nan")]], r"slot_weights\[0\]: weights must be finite"),
    ],
)
def test_factorial_bad_input(slots, message):
    with pytest.raises(PolicyError, match=message):
        factorial_weights(slots)
