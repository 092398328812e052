"""``explored`` has one definition (issue 22): the drawn action is not among its row's most likely.

Under the same uniform probabilities every policy, and every VW exploration, explores never.
"""

from __future__ import annotations

import numpy as np
import pytest

from bandit import POLICY_NAMES, make_policy
from bandit.sampling import PROBABILITY_TIE, top_set
from tests.bandit.policies import ACTION_FEATURES, contexts_for, trained_policy

EXPLORATIONS = ["--epsilon 0.2", "--softmax", "--squarecb", "--bag 3", "--cover 3"]


@pytest.mark.parametrize("exploration", EXPLORATIONS)
@pytest.mark.parametrize("k", [3, 4, 5])
def test_no_vw_exploration_explores_under_a_uniform_pmf(exploration, k):
    # an untrained VW gives every action the same probability, up to float32 rounding
    policy = make_policy("vw", k, options={"vw_args": f"--cb_explore_adf {exploration}"}, seed=1)
    contexts = contexts_for("vw", 600, np.random.default_rng(0))
    probs = policy.probabilities(contexts)
    np.testing.assert_allclose(probs, 1 / k, atol=1e-6)
    choices = policy.choose(contexts, np.random.default_rng(1))
    assert len(np.unique(choices.actions)) == k  # every action drawn, none counted as exploring
    assert not choices.explored.any()


@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_vw_explored_is_a_draw_off_the_top_of_a_trained_pmf(exploration):
    rng = np.random.default_rng(2)
    policy = make_policy("vw", 4, options={"vw_args": f"--cb_explore_adf {exploration} -q UA"},
                         action_features=ACTION_FEATURES, seed=2)
    contexts = contexts_for("vw", 400, rng)
    actions = rng.integers(0, 4, 400)
    policy.update(contexts, actions, (actions == 1).astype(float), np.full(400, 0.25))
    probs = policy.probabilities(contexts)
    choices = policy.choose(contexts, np.random.default_rng(3))
    rows = np.arange(len(contexts))
    drawn = probs[rows, choices.actions]
    np.testing.assert_array_equal(choices.explored, drawn < probs.max(axis=1) - PROBABILITY_TIE)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_marks_explored_from_its_logged_distribution(name):
    policy = trained_policy(name)
    contexts = contexts_for(name, 3000, np.random.default_rng(4))
    probs = policy.probabilities(contexts)
    choices = policy.choose(contexts, np.random.default_rng(5))
    top = probs.max(axis=1)
    np.testing.assert_array_equal(choices.explored, choices.propensities < top - PROBABILITY_TIE)


@pytest.mark.parametrize("name", [n for n in POLICY_NAMES if n != "fixed"])
def test_a_policy_without_data_is_uniform_and_never_explores(name):
    # equal posteriors are exchangeable (Thompson sampling pools their Monte Carlo estimates), UCB's
    # untried arms share the plan, and VW's float32 near-ties count as ties
    options = {"vw_args": "--cb_explore_adf --squarecb"} if name == "vw" else {}
    policy = make_policy(name, 4, options=options, action_features=ACTION_FEATURES, seed=0)
    contexts = contexts_for(name, 500, np.random.default_rng(6))
    np.testing.assert_allclose(policy.probabilities(contexts), 0.25, atol=PROBABILITY_TIE)
    choices = policy.choose(contexts, np.random.default_rng(7))
    assert len(np.unique(choices.actions)) == 4 and not choices.explored.any()


def test_ties_are_within_float32_spacing_and_below_monte_carlo_steps():
    vw_uniform = np.array([0.33333331, 0.33333334, 0.33333334])  # what --squarecb reports for 3 actions
    assert top_set(vw_uniform).all()
    one_draw_apart = np.array([0.500001, 0.499999])  # 1,000,000 Monte Carlo draws, one apart... twice
    np.testing.assert_array_equal(top_set(one_draw_apart), [True, False])
