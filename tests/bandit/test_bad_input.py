"""Bad input gets a PolicyError whose message names the argument and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import POLICY_NAMES, PolicyError, load_policy, make_policy
from tests.bandit.policies import N_ACTIONS, contexts_for, name_to_options

CONSTRUCTION = [
    (("nope", 3, {}), "name: unknown policy 'nope'"),
    (("thompson", 0, {}), "n_actions: expected an integer >= 1, got 0"),
    (("thompson", 2.5, {}), "n_actions: expected an integer >= 1, got 2.5"),
    (("thompson", 3, {"prior_alpha": 0}), r"options.prior_alpha: must be finite and > 0, got 0"),
    (("thompson", 3, {"prior_beta": float("nan")}), r"options.prior_beta: must be finite and > 0"),
    (("thompson", 3, {"n_draws": 10}), r"options.n_draws: expected an integer >= 100, got 10"),
    (("thompson", 3, {"colour": "red"}), r"options: unknown option\(s\) \['colour'\] for policy 'thompson'"),
    (("fixed", 3, {"weights": [1, 2]}), r"options.weights: expected 3 weights, got shape \(2,\)"),
    (("fixed", 3, {"weights": [1, -2, 1]}), r"options.weights: weights must be finite and >= 0"),
    (("fixed", 3, {"weights": "abc"}), r"options.weights: expected a list of 3 numbers, got str"),
    (("epsilon_greedy", 3, {"epsilon": 1.5}), r"options.epsilon: must lie in \[0, 1\], got 1.5"),
    (("epsilon_greedy", 3, {"initial_value": "high"}), r"options.initial_value: expected a number"),
    (("ucb", 3, {"alpha": -1}), r"options.alpha: must be finite and > 0, got -1"),
    (("ucb", 3, {"alpha": "2"}), r"options.alpha: expected a number, got '2'"),
    (("gaussian_thompson", 3, {"prior_mean": float("inf")}), r"options.prior_mean: must be finite"),
    (("linucb", 3, {"dim": 1}), r"options.dim: expected an integer >= 2, got 1"),
    (("linear_ts", 3, {"scale": 0}), r"options.scale: must be finite and > 0, got 0"),
    (("vw", 3, {"vw_args": "--cb_adf"}), r"options.vw_args: must contain --cb_explore_adf"),
]


@pytest.mark.parametrize(("arguments", "message"), CONSTRUCTION)
def test_bad_construction(arguments, message):
    name, n_actions, options = arguments
    with pytest.raises(PolicyError, match=message):
        make_policy(name, n_actions, options=options)


def test_bad_seed():
    with pytest.raises(PolicyError, match="seed: expected an integer >= 0, got -1"):
        make_policy("thompson", 2, seed=-1)


UPDATES = [
    ({"actions": [0, 1, 5]}, r"actions: unknown action index 5 \(valid: 0..3\)"),
    ({"actions": [0, -1, 2]}, r"actions: unknown action index -1"),
    ({"actions": [0, 1.5, 2]}, r"actions: expected integer action indices"),
    ({"actions": [0, 1]}, r"actions: expected shape \(3,\), got \(2,\)"),
    ({"rewards": [1.0, float("nan"), 0.0]}, r"rewards: must be finite, found 1 NaN or inf"),
    ({"rewards": [[1.0, 0.0, 0.0]]}, r"rewards: expected shape \(3,\), got \(1, 3\)"),
    ({"rewards": ["a", "b", "c"]}, r"rewards: expected numbers"),
    ({"propensities": [0.5, 0.0, 0.5]}, r"propensities: must lie in \(0, 1\], found 0.0 \(1 such rows\)"),
    ({"propensities": [0.5, 1.5, 0.5]}, r"propensities: must lie in \(0, 1\], found 1.5"),
    ({"propensities": [0.5, float("nan"), 0.5]}, r"propensities: must lie in \(0, 1\], found nan"),
]


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize(("change", "message"), UPDATES)
def test_bad_update(name, change, message):
    policy = make_policy(name, N_ACTIONS, options=name_to_options[name])
    batch = {"actions": [0, 1, 2], "rewards": [1.0, 0.0, 1.0], "propensities": [0.5, 0.5, 0.5], **change}
    contexts = contexts_for(name, 3, np.random.default_rng(0))
    with pytest.raises(PolicyError, match=message):
        policy.update(contexts, np.asarray(batch["actions"]), np.asarray(batch["rewards"]),
                      np.asarray(batch["propensities"]))


def test_beta_thompson_needs_rewards_in_unit_interval():
    policy = make_policy("thompson", 2)
    message = r"rewards: Beta-Bernoulli Thompson sampling needs rewards in \[0, 1\]"
    with pytest.raises(PolicyError, match=message):
        policy.update(2, np.array([0, 1]), np.array([1.0, 2.0]), np.array([0.5, 0.5]))


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        (np.ones((3, N_ACTIONS + 1), dtype=bool), r"allowed: expected shape \(3, 4\), got \(3, 5\)"),
        (np.ones((3, N_ACTIONS), dtype=int), r"allowed: expected a boolean mask, got dtype int"),
        (np.array([[True] * 4, [False] * 4, [True] * 4]), r"allowed: row 1 allows no action \(1 such rows\)"),
    ],
)
def test_bad_allowed(name, allowed, message):
    policy = make_policy(name, N_ACTIONS, options=name_to_options[name])
    contexts = contexts_for(name, 3, np.random.default_rng(0))
    with pytest.raises(PolicyError, match=message):
        policy.probabilities(contexts, allowed)
    with pytest.raises(PolicyError, match=message):
        policy.choose(contexts, np.random.default_rng(0), allowed)


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize(
    ("contexts", "message"),
    [
        ("abc", "contexts: expected a batch size .* got str"),
        (-2, r"contexts: batch size must be >= 0, got -2"),
        (True, "contexts: expected a batch size .* got bool"),
        (3.0, "contexts: expected a batch size .* got float"),
    ],
)
def test_bad_batch(name, contexts, message):
    policy = make_policy(name, N_ACTIONS, options=name_to_options[name])
    with pytest.raises(PolicyError, match=message):
        policy.probabilities(contexts)


@pytest.mark.parametrize("name", ["linear_ts", "linucb", "vw"])
@pytest.mark.parametrize(
    ("contexts", "message"),
    [
        ([{"segment": "a"}, "b"], r"contexts\[1\]: expected a mapping of feature name to value, got str"),
        ([{"recency": float("nan")}], r"contexts\[0\]: feature 'recency' must be finite"),
        ([{"segment": [1, 2]}],
         r"contexts\[0\]: feature 'segment' must be a float, int, str, bool or None, got list"),
        ([{3: "x"}], r"contexts\[0\]: feature names must be non-empty strings, got 3"),
    ],
)
def test_bad_contexts(name, contexts, message):
    policy = make_policy(name, N_ACTIONS, options=name_to_options[name])
    with pytest.raises(PolicyError, match=message):
        policy.probabilities(contexts)
    with pytest.raises(PolicyError, match=message):
        n = len(contexts)
        policy.update(contexts, np.zeros(n, dtype=int), np.zeros(n), np.ones(n))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a snapshot", "snapshot: not a SendLab policy snapshot"),
        (b"sendlab-policy/1\n{broken", r"snapshot: corrupt body"),
        (b'sendlab-policy/1\n{"type": "mystery", "state": {}}', "snapshot: unknown policy type 'mystery'"),
        ("text", "snapshot: expected bytes, got str"),
    ],
)
def test_bad_snapshot(data, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(data)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_update_refuses_an_action_the_decision_did_not_allow(name):
    policy = make_policy(name, N_ACTIONS, options=name_to_options[name])
    contexts = contexts_for(name, 2, np.random.default_rng(0))
    allowed = np.array([[True, True, False, False], [False, False, True, True]])
    with pytest.raises(PolicyError, match="allowed: row 1 does not allow its logged action 1"):
        policy.update(contexts, np.array([0, 1]), np.array([1.0, 0.0]), np.array([0.5, 0.5]), allowed=allowed)
    policy.update(contexts, np.array([0, 2]), np.array([1.0, 0.0]), np.array([0.5, 0.5]), allowed=allowed)
