"""Revising learned rewards: ``update(old)`` then ``revise(old -> new)`` is ``update(new)``.

A late outcome changes the reward of a decision the policy has already learned; policies whose state
is a sufficient statistic of the rewards replace it exactly, the others say they cannot.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import POLICY_NAMES, PolicyError, RevisionUnsupported, make_policy
from bandit.snapshot import decode_snapshot
from tests.bandit.policies import N_ACTIONS, contexts_for, trained_policy

REVISABLE = [name for name in POLICY_NAMES if name != "vw"]
CONTEXTUAL = {"linear_ts", "linucb"}
K = 3
name_to_options = {
    "fixed": {"weights": [1.0, 2.0, 3.0]},
    "epsilon_greedy": {"epsilon": 0.2},
    "ucb": {},
    "thompson": {"n_draws": 2000},
    "gaussian_thompson": {"n_draws": 20_000},
    "linear_ts": {"n_draws": 300, "dim": 8},
    "linucb": {"dim": 8},
}


def unit_rewards(grid: bool) -> st.SearchStrategy[float]:
    # multiples of 1/8 add up exactly in binary floating point; any float in [0, 1] otherwise
    return st.integers(0, 8).map(lambda i: i / 8) if grid else st.floats(0, 1)


def real_rewards(grid: bool) -> st.SearchStrategy[float]:
    return st.integers(-32, 32).map(lambda i: i / 4) if grid else st.floats(-100, 100)


@st.composite
def learned_batches(draw: st.DrawFn, name: str, grid: bool):
    """Rows (contexts, actions, old rewards) and, for some of them, new rewards."""
    n = draw(st.integers(1, 30))
    rewards = unit_rewards(grid) if name == "thompson" else real_rewards(grid)
    actions = np.array(draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)))
    old = np.array(draw(st.lists(rewards, min_size=n, max_size=n)))
    revised = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    new = old.copy()
    new[revised] = draw(st.lists(rewards, min_size=int(revised.sum()), max_size=int(revised.sum())))
    contexts: object = n
    if name in CONTEXTUAL:
        values = draw(st.lists(st.integers(-16, 16), min_size=n, max_size=n))
        segments = draw(st.lists(st.sampled_from(["north", "south"]), min_size=n, max_size=n))
        contexts = [{"recency": v / 4, "segment": s} for v, s in zip(values, segments, strict=True)]
    return contexts, actions, old, new, revised


def _subset(contexts: object, rows: np.ndarray) -> object:
    return [contexts[i] for i in np.flatnonzero(rows)] if isinstance(contexts, list) else int(rows.sum())


def revised_and_direct(name: str, batch):
    """The policy after ``update(old)`` and ``revise`` of the revised rows, and after ``update(new)``."""
    contexts, actions, old, new, revised = batch
    n = len(actions)
    propensities = np.full(n, 1 / K)
    policies = [make_policy(name, K, options=dict(name_to_options[name]), seed=5) for _ in range(2)]
    policies[0].update(contexts, actions, old, propensities)
    policies[0].revise(_subset(contexts, revised), actions[revised], old[revised], new[revised])
    policies[1].update(contexts, actions, new, propensities)
    return policies


def probe(name: str, batch) -> object:
    contexts = batch[0]
    return contexts if name in CONTEXTUAL else 4


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data(), name=st.sampled_from([n for n in REVISABLE if n != "gaussian_thompson"]))
def test_revising_rewards_that_add_up_exactly_gives_the_same_state_bit_for_bit(data, name):
    # (Gaussian Thompson's mean is a division, so it agrees to rounding: the tests below)
    batch = data.draw(learned_batches(name, grid=True))
    revised, direct = revised_and_direct(name, batch)
    assert revised.to_bytes() == direct.to_bytes()
    rows = probe(name, batch)
    np.testing.assert_array_equal(revised.probabilities(rows), direct.probabilities(rows))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data(), name=st.sampled_from(REVISABLE), grid=st.booleans())
def test_revising_any_rewards_gives_the_same_state_to_rounding(data, name, grid):
    batch = data.draw(learned_batches(name, grid=grid))
    revised, direct = revised_and_direct(name, batch)
    tag, revised_state = decode_snapshot(revised.to_bytes())
    _, direct_state = decode_snapshot(direct.to_bytes())
    assert revised_state.keys() == direct_state.keys()
    for key, value in direct_state.items():
        if isinstance(value, np.ndarray):
            # sums of up to 30 rewards of at most 100 (squared: 1e4) agree to well within 1e-6
            np.testing.assert_allclose(
                revised_state[key], value, rtol=1e-9, atol=1e-6, err_msg=f"{tag}.{key}"
            )
        else:
            assert revised_state[key] == value


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_gaussian_thompson_revised_posterior_and_probabilities_match(data):
    batch = data.draw(learned_batches("gaussian_thompson", grid=False))
    revised, direct = revised_and_direct("gaussian_thompson", batch)
    for mine, theirs in zip(revised.posterior(), direct.posterior(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-6)
    # The Monte Carlo draws are seeded by the state's bits, so a last-bit difference draws afresh:
    # 20,000 draws give a standard error of at most 0.5 / sqrt(20,000) = 0.0035 per estimate.
    np.testing.assert_allclose(revised.probabilities(1), direct.probabilities(1), atol=0.03)


def test_a_late_click_on_a_learned_non_click_becomes_a_click():
    # the audit's example: one decision on arm 1 learned without its click, then the click arrives
    policy = make_policy("thompson", 2, seed=1)
    policy.update(1, np.array([1]), np.array([0.0]), np.array([0.5]))
    assert [list(p) for p in policy.posterior()] == [[1.0, 1.0], [1.0, 2.0]]
    policy.revise(1, np.array([1]), np.array([0.0]), np.array([1.0]))
    assert [list(p) for p in policy.posterior()] == [[1.0, 2.0], [1.0, 1.0]]


def test_every_policy_but_vw_can_revise():
    assert {name for name in POLICY_NAMES if make_policy(name, 2).can_revise} == set(REVISABLE)


def test_vw_says_it_cannot_revise_and_changes_nothing():
    policy = trained_policy("vw")
    before = policy.to_bytes()
    contexts = contexts_for("vw", 2, np.random.default_rng(0))
    with pytest.raises(RevisionUnsupported, match="cannot revise"):
        policy.revise(contexts, np.array([0, 1]), np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    assert isinstance(RevisionUnsupported("x"), PolicyError)
    assert policy.to_bytes() == before


@pytest.mark.parametrize(
    ("name", "actions", "old", "new", "message"),
    [
        ("thompson", [0], [0.0], [1.5], r"new_rewards: .*in \[0, 1\], got 1.5"),
        ("thompson", [0], [-0.5], [1.0], r"old_rewards: .*in \[0, 1\], got -0.5"),
        ("ucb", [0, 1], [0.0], [1.0, 1.0], r"old_rewards: expected shape \(2,\)"),
        ("epsilon_greedy", [7], [0.0], [1.0], r"actions: unknown action index 7"),
        ("gaussian_thompson", [0], [0.0], [float("nan")], "new_rewards: must be finite"),
        ("linucb", [0.5], [0.0], [1.0], "actions: expected integer action indices"),
    ],
)
def test_bad_revisions_are_refused_and_change_nothing(name, actions, old, new, message):
    policy = trained_policy(name)
    before = policy.to_bytes()
    contexts = contexts_for(name, len(actions), np.random.default_rng(1))
    with pytest.raises(PolicyError, match=message):
        policy.revise(contexts, np.array(actions), np.array(old), np.array(new))
    assert policy.to_bytes() == before


@pytest.mark.parametrize("name", ["thompson", "gaussian_thompson", "ucb", "epsilon_greedy"])
def test_revising_an_arm_that_learned_nothing_is_refused(name):
    policy = make_policy(name, N_ACTIONS)
    policy.update(2, np.array([0, 1]), np.array([0.0, 1.0]), np.array([0.5, 0.5]))
    before = policy.to_bytes()
    with pytest.raises(PolicyError, match="arm 3 has no learned reward to revise"):
        policy.revise(1, np.array([3]), np.array([0.0]), np.array([1.0]))
    assert policy.to_bytes() == before
