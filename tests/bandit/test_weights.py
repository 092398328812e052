"""Rows as fractional trials: ``update(weights=...)`` and ``revise(old_weights=..., new_weights=...)``.

A row of weight ``w`` counts as ``w`` of a trial (delay-aware learning learns a decision whose outcome
window is open as ``F(e)`` of one). References: integer weights against repeated rows, fractional
weights against the closed forms computed with numpy on the raw rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import PolicyError, make_policy
from bandit.snapshot import decode_snapshot
from tests.bandit.policies import contexts_for, trained_policy

K = 3
REVISABLE = ["epsilon_greedy", "ucb", "thompson", "gaussian_thompson", "linear_ts", "linucb"]
CONTEXTUAL = {"linear_ts", "linucb"}
name_to_options = {
    "epsilon_greedy": {},
    "ucb": {},
    "thompson": {"n_draws": 500},
    "gaussian_thompson": {"n_draws": 500},
    "linear_ts": {"n_draws": 300, "dim": 8},
    "linucb": {"dim": 8},
}


def build(name: str):
    return make_policy(name, K, options=dict(name_to_options[name]), seed=2)


def assert_same_state(a, b, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    """Two snapshots agree: every array to ``rtol``/``atol``, everything else exactly."""
    _, left = decode_snapshot(a.to_bytes())
    _, right = decode_snapshot(b.to_bytes())
    assert left.keys() == right.keys()
    for key, value in left.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(value, right[key], rtol=rtol, atol=atol, err_msg=key)
        else:
            assert value == right[key], key


def rows_for(name: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, K, n)
    rewards = rng.integers(0, 2, n).astype(float) if name == "thompson" else rng.normal(1.0, 2.0, n)
    return contexts_for(name, n, rng), actions, rewards


def repeat_rows(contexts, times: np.ndarray):
    if isinstance(contexts, int):
        return int(times.sum())
    return [c for c, t in zip(contexts, times, strict=True) for _ in range(int(t))]


@pytest.mark.parametrize("name", REVISABLE)
def test_an_integer_weight_is_that_many_copies_of_the_row(name):
    contexts, actions, rewards = rows_for(name, 40, seed=1)
    copies = np.random.default_rng(2).integers(0, 4, 40)  # weight 0 leaves a row out
    weighted, repeated = build(name), build(name)
    weighted.update(contexts, actions, rewards, np.full(40, 1 / K), weights=copies.astype(float))
    repeated.update(repeat_rows(contexts, copies), np.repeat(actions, copies), np.repeat(rewards, copies),
                    np.full(int(copies.sum()), 1 / K))
    assert_same_state(weighted, repeated, rtol=1e-10, atol=1e-10)


def test_beta_fractional_trials_add_w_r_successes_and_w_1_minus_r_failures():
    policy = make_policy("thompson", 2, options={"prior_alpha": 2.0, "prior_beta": 3.0})
    actions = np.array([0, 0, 1, 1, 1])
    rewards = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    weights = np.array([1.0, 0.25, 0.5, 0.75, 0.125])
    policy.update(5, actions, rewards, np.full(5, 0.5), weights=weights)
    alpha, beta = policy.posterior()
    # alpha = 2 + sum w r, beta = 3 + sum w (1 - r), per arm
    np.testing.assert_array_equal(alpha, [2 + 1.0, 2 + 0.5])
    np.testing.assert_array_equal(beta, [3 + 0.25, 3 + 0.75 + 0.125])


def test_gaussian_weighted_posterior_matches_weighted_moments_from_numpy():
    rng = np.random.default_rng(5)
    actions = rng.integers(0, 2, 300)
    rewards = rng.gamma(2.0, 10.0, 300)
    weights = rng.random(300)
    policy = make_policy("gaussian_thompson", 2, options={"prior_mean": 1.0, "prior_count": 2.0,
                                                          "prior_alpha": 3.0, "prior_beta": 4.0})
    for part in np.array_split(np.arange(300), 4):
        policy.update(len(part), actions[part], rewards[part], np.full(len(part), 0.5), weights=weights[part])
    mu, kappa, alpha, beta = policy.posterior()
    for arm in range(2):
        x, w = rewards[actions == arm], weights[actions == arm]
        n, xbar = w.sum(), np.average(x, weights=w)
        m2 = np.sum(w * (x - xbar) ** 2)
        # Murphy (2007) eqs. 86-89 with the weighted count, mean and sum of squared deviations
        assert kappa[arm] == pytest.approx(2.0 + n, rel=1e-12)
        assert mu[arm] == pytest.approx((2.0 * 1.0 + n * xbar) / (2.0 + n), rel=1e-12)
        assert alpha[arm] == pytest.approx(3.0 + n / 2, rel=1e-12)
        assert beta[arm] == pytest.approx(4.0 + m2 / 2 + 2.0 * n * (xbar - 1.0) ** 2 / (2 * (2.0 + n)),
                                          rel=1e-10)


def test_ucb_counts_fractional_trials_in_its_bounds():
    policy = make_policy("ucb", 2, options={"batch_size": 1, "min_share": 0.0})
    policy.update(3, np.array([0, 0, 1]), np.array([1.0, 0.0, 1.0]), np.full(3, 0.5),
                  weights=np.array([2.0, 1.0, 0.5]))
    # n = (3, 0.5), N = 3.5, means (2/3, 1): U = mean + sqrt(2 ln 3.5 / n)
    expected = np.array([2 / 3, 1.0]) + np.sqrt(2 * np.log(3.5) / np.array([3.0, 0.5]))
    np.testing.assert_allclose(policy.upper_bounds(), expected, rtol=1e-14)


@st.composite
def weighted_revisions(draw: st.DrawFn, name: str):
    """Rows learned with (old weight, old reward) and moved to (new weight, new reward)."""
    n = draw(st.integers(1, 25))
    weights = st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 2.0])
    rewards = st.sampled_from([0.0, 0.25, 1.0]) if name == "thompson" else st.integers(-8, 8).map(
        lambda i: i / 4)
    column = lambda strategy: np.array(draw(st.lists(strategy, min_size=n, max_size=n)))  # noqa: E731
    actions = column(st.integers(0, K - 1))
    old_w, old_r, new_w, new_r = column(weights), column(rewards), column(weights), column(rewards)
    contexts = contexts_for(name, n, np.random.default_rng(draw(st.integers(0, 100))))
    return contexts, actions, old_w, old_r, new_w, new_r


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data(), name=st.sampled_from(REVISABLE))
def test_revising_weights_and_rewards_equals_learning_the_new_ones(data, name):
    contexts, actions, old_w, old_r, new_w, new_r = data.draw(weighted_revisions(name))
    n = len(actions)
    revised, direct = build(name), build(name)
    # a base batch so that no arm is empty, then the rows as first learned
    base = contexts_for(name, K, np.random.default_rng(0))
    for policy in (revised, direct):
        policy.update(base, np.arange(K), np.full(K, 0.5 if name == "thompson" else 1.0), np.full(K, 1 / K))
    revised.update(contexts, actions, old_r, np.full(n, 1 / K), weights=old_w)
    revised.revise(contexts, actions, old_r, new_r, old_weights=old_w, new_weights=new_w)
    direct.update(contexts, actions, new_r, np.full(n, 1 / K), weights=new_w)
    # weights and rewards on a binary grid: sums agree to the rounding of the moments' divisions
    assert_same_state(revised, direct, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", REVISABLE)
@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("weights", [1.0, -0.5], r"weights: must be finite and >= 0, found -0.5 \(1 such rows\)"),
        ("weights", [1.0, float("nan")], r"weights: must be finite and >= 0, found nan"),
        ("weights", [1.0], r"weights: expected shape \(2,\), got \(1,\)"),
        ("times", [0.0, float("inf")], r"times: must be finite days"),
        ("times", [[0.0, 1.0]], r"times: expected shape \(2,\)"),
        ("times", ["monday", "tuesday"], r"times: expected numbers of days"),
    ],
)
def test_bad_weights_and_times_are_refused_and_change_nothing(name, keyword, value, message):
    policy = trained_policy(name) if name in {"epsilon_greedy", "ucb", "thompson"} else build(name)
    before = policy.to_bytes()
    contexts = contexts_for(name, 2, np.random.default_rng(3))
    with pytest.raises(PolicyError, match=message):
        policy.update(contexts, np.array([0, 1]), np.array([1.0, 0.0]), np.array([0.5, 0.5]),
                      **{keyword: value})
    assert policy.to_bytes() == before


def test_revise_names_the_bad_weight_argument():
    policy = build("thompson")
    policy.update(2, np.array([0, 1]), np.array([1.0, 0.0]), np.full(2, 0.5))
    with pytest.raises(PolicyError, match=r"new_weights: must be finite and >= 0, found -1.0"):
        policy.revise(2, np.array([0, 1]), np.zeros(2), np.ones(2), new_weights=[1.0, -1.0])
    with pytest.raises(PolicyError, match=r"old_weights: expected shape \(2,\)"):
        policy.revise(2, np.array([0, 1]), np.zeros(2), np.ones(2), old_weights=[1.0])


def test_vw_learns_whole_trials_only():
    policy = trained_policy("vw")
    contexts = contexts_for("vw", 2, np.random.default_rng(4))
    before = policy.to_bytes()
    with pytest.raises(PolicyError, match=r"weights: the VW policy learns whole trials only \(weight 1\), "
                                          r"found 0.5"):
        policy.update(contexts, np.array([0, 1]), np.array([1.0, 0.0]), np.full(2, 0.5), weights=[1.0, 0.5])
    assert policy.to_bytes() == before
    policy.update(contexts, np.array([0, 1]), np.array([1.0, 0.0]), np.full(2, 0.5), weights=[1.0, 1.0],
                  times=[19000.0, 19000.5])


def test_fractional_trials_learn_early_without_favouring_the_older_send():
    """Two arms that convert alike (5%), one sent 96 hours ago, one 6 hours ago, delays exponential with
    a 24-hour mean. Learned now, each waiting decision as F(elapsed) of a trial and each observed
    conversion as a whole one, the recent arm's posterior mean is near 5% (its relative bias is at most
    5% x (1 - F)); with zeros at weight 1 it is near 5% x F(6 h) = 1.1%. Then, when every outcome is in,
    revising the rows to weight 1 gives the state of learning the final rewards directly."""
    rng = np.random.default_rng(11)
    n, rate = 20_000, 0.05
    elapsed = np.repeat([96.0, 6.0], n)
    actions = np.repeat([0, 1], n)
    converts = rng.random(2 * n) < rate
    observed = converts & (rng.exponential(24.0, 2 * n) <= elapsed)
    cdf = 1 - np.exp(-elapsed / 24.0)
    weights = np.where(observed, 1.0, cdf)
    early = make_policy("thompson", 2, options={"n_draws": 2000})
    early.update(2 * n, actions, observed.astype(float), np.full(2 * n, 0.5), weights=weights)
    alpha, beta = early.posterior()
    mean = alpha / (alpha + beta)
    # arm 1: about 220 conversions over about 4,600 trials: a standard error of about 0.0033
    assert abs(mean[1] - rate) < 0.01 and abs(mean[0] - rate) < 0.005, mean
    zeros = make_policy("thompson", 2, options={"n_draws": 2000})
    zeros.update(2 * n, actions, observed.astype(float), np.full(2 * n, 0.5))
    alpha, beta = zeros.posterior()
    assert (alpha / (alpha + beta))[1] < 0.02  # zero-imputation: the recent send looks four times worse
    early.revise(2 * n, actions, observed.astype(float), converts.astype(float),
                 old_weights=weights, new_weights=np.ones(2 * n))
    final = make_policy("thompson", 2, options={"n_draws": 2000})
    final.update(2 * n, actions, converts.astype(float), np.full(2 * n, 0.5))
    for mine, theirs in zip(early.posterior(), final.posterior(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9)
