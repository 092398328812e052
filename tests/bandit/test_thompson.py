"""Thompson sampling: propensities against exact references, posterior updates, and regret."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bandit import BetaThompson, GaussianThompson, make_policy


def mc_tolerance(p: float, n_draws: int) -> float:
    """Five Monte Carlo standard errors of a proportion (plus a floor for p near 0 or 1)."""
    return 5 * np.sqrt(max(p * (1 - p), 1e-4) / n_draws)


def test_beta_probability_of_best_matches_numerical_integral():
    policy = BetaThompson(2, n_draws=20_000, seed=7)
    # 12/40 clicks on arm 0, 18/45 on arm 1.
    actions = np.array([0] * 40 + [1] * 45)
    rewards = np.array([1.0] * 12 + [0.0] * 28 + [1.0] * 18 + [0.0] * 27)
    policy.update(85, actions, rewards, np.full(85, 0.5))
    # Reference: P(theta_1 > theta_0) = integral of beta.pdf(x; 19, 28) * beta.cdf(x; 13, 29) dx (scipy).
    exact, _ = integrate.quad(lambda x: stats.beta.pdf(x, 19, 28) * stats.beta.cdf(x, 13, 29), 0, 1)
    probs = policy.probabilities(1)[0]
    assert probs[1] == pytest.approx(exact, abs=mc_tolerance(exact, 20_000))
    assert probs.sum() == pytest.approx(1.0)


def test_beta_three_arms_match_numerical_integral_and_mask():
    policy = BetaThompson(3, prior_alpha=2.0, prior_beta=3.0, n_draws=20_000, seed=1)
    policy.update(6, np.array([0, 0, 1, 1, 2, 2]), np.array([1.0, 1, 0, 1, 0, 0]), np.ones(6))
    alpha, beta = policy.posterior()
    np.testing.assert_array_equal(alpha, [4, 3, 2])
    np.testing.assert_array_equal(beta, [3, 4, 5])
    for best in range(3):
        others = [b for b in range(3) if b != best]

        def integrand(x, best=best, others=others):
            density = stats.beta.pdf(x, alpha[best], beta[best])
            return density * np.prod([stats.beta.cdf(x, alpha[o], beta[o]) for o in others])

        exact, _ = integrate.quad(integrand, 0, 1)
        assert policy.probabilities(1)[0, best] == pytest.approx(exact, abs=mc_tolerance(exact, 20_000))
    # Among arms 1 and 2 only: P(theta_2 > theta_1).
    exact_pair, _ = integrate.quad(lambda x: stats.beta.pdf(x, 2, 5) * stats.beta.cdf(x, 3, 4), 0, 1)
    masked = policy.probabilities(1, np.array([[False, True, True]]))[0]
    assert masked[0] == 0
    assert masked[2] == pytest.approx(exact_pair, abs=mc_tolerance(exact_pair, 20_000))


def test_beta_batches_commute():
    rng = np.random.default_rng(0)
    actions, rewards = rng.integers(0, 3, 500), rng.random(500).round()
    one = BetaThompson(3)
    one.update(500, actions, rewards, np.full(500, 1 / 3))
    split = BetaThompson(3)
    for part in (slice(300, 500), slice(0, 120), slice(120, 300)):  # out of order, like late outcomes
        split.update(len(actions[part]), actions[part], rewards[part], np.full(len(actions[part]), 1 / 3))
    np.testing.assert_array_equal(one.posterior()[0], split.posterior()[0])
    np.testing.assert_array_equal(one.probabilities(1), split.probabilities(1))


def test_gaussian_posterior_matches_conjugate_formulas_on_raw_data():
    rng = np.random.default_rng(3)
    policy = GaussianThompson(2, prior_mean=1.0, prior_count=2.0, prior_alpha=3.0, prior_beta=4.0)
    actions = rng.integers(0, 2, 400)
    rewards = rng.gamma(2.0, 10.0, 400)  # revenue-like
    for part in np.array_split(np.arange(400), 7):
        policy.update(len(part), actions[part], rewards[part], np.full(len(part), 0.5))
    mu, kappa, alpha, beta = policy.posterior()
    for arm in range(2):
        x = rewards[actions == arm]
        n, xbar = len(x), x.mean()
        # Murphy (2007) eqs. 86-89, computed directly from the raw rewards.
        assert kappa[arm] == pytest.approx(2.0 + n)
        assert mu[arm] == pytest.approx((2.0 * 1.0 + x.sum()) / (2.0 + n), rel=1e-12)
        assert alpha[arm] == pytest.approx(3.0 + n / 2)
        expected_beta = 4.0 + 0.5 * np.sum((x - xbar) ** 2) + 2.0 * n * (xbar - 1.0) ** 2 / (2 * (2.0 + n))
        assert beta[arm] == pytest.approx(expected_beta, rel=1e-10)


def test_gaussian_probability_of_best_matches_student_t_integral():
    policy = GaussianThompson(2, n_draws=20_000, seed=5)
    policy.update(6, np.array([0, 0, 0, 1, 1, 1]), np.array([3.0, 5.0, 4.0, 6.0, 2.0, 7.0]), np.ones(6))
    mu, kappa, alpha, beta = policy.posterior()
    scale = np.sqrt(beta / (alpha * kappa))
    t0 = stats.t(2 * alpha[0], loc=mu[0], scale=scale[0])
    t1 = stats.t(2 * alpha[1], loc=mu[1], scale=scale[1])
    exact, _ = integrate.quad(lambda x: t1.pdf(x) * t0.cdf(x), -np.inf, np.inf)
    assert policy.probabilities(1)[0, 1] == pytest.approx(exact, abs=mc_tolerance(exact, 20_000))


def test_explored_is_off_the_best_posterior_mean():
    policy = BetaThompson(3, seed=2)
    policy.update(30, np.repeat([0, 1, 2], 10), np.r_[np.ones(4), np.zeros(6), np.ones(6), np.zeros(4),
                                                      np.ones(5), np.zeros(5)], np.ones(30))
    choices = policy.choose(3000, np.random.default_rng(0))
    np.testing.assert_array_equal(choices.explored, choices.actions != 1)


def run_bernoulli(policy_name: str, means: np.ndarray, rounds: int, batch: int, delay: int, seed: int):
    """Expected regret per round of a policy on a Bernoulli problem, with updates ``delay`` batches late."""
    rng = np.random.default_rng(seed)
    policy = make_policy(policy_name, len(means), seed=seed)
    pending = []
    regret = np.empty(rounds)
    for start in range(0, rounds, batch):
        choices = policy.choose(batch, rng)
        regret[start:start + batch] = means.max() - means[choices.actions]
        rewards = (rng.random(batch) < means[choices.actions]).astype(float)
        pending.append((choices.actions, rewards, choices.propensities))
        if len(pending) > delay:
            actions, outcome, propensities = pending.pop(0)
            policy.update(batch, actions, outcome, propensities)
    return regret


def test_thompson_regret_is_far_below_uniform_and_sublinear():
    means = np.array([0.04, 0.05, 0.06, 0.07, 0.10])
    rounds = 20_000
    regret = run_bernoulli("thompson", means, rounds, batch=100, delay=2, seed=42)
    uniform = rounds * (means.max() - means.mean())  # expected regret of uniform allocation: 720
    total = regret.sum()
    assert total < 0.15 * uniform, (total, uniform)
    first, second = regret[: rounds // 2].sum(), regret[rounds // 2:].sum()
    assert second < 0.5 * first, (first, second)  # linear regret would give second == first


def test_gaussian_thompson_concentrates_on_the_best_revenue_arm():
    rng = np.random.default_rng(8)
    mean_revenue = np.array([1.0, 1.5, 2.0])
    policy = make_policy("gaussian_thompson", 3, seed=8)
    pulls = np.zeros(3)
    for _ in range(50):
        choices = policy.choose(100, rng)
        revenue = rng.exponential(mean_revenue[choices.actions])  # skewed, like order values
        policy.update(100, choices.actions, revenue, choices.propensities)
        pulls += np.bincount(choices.actions, minlength=3)
    assert pulls[2] > 0.9 * pulls.sum(), pulls  # uniform allocation would give one third
    assert policy.probabilities(1)[0, 2] > 0.95
