"""P(each independent normal is the largest): closed forms, adaptive integration and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from bandit.gaussian_max import (
    MAX_NODES,
    MIDPOINT_ERROR,
    NEGLIGIBLE,
    STEP_PER_SD,
    TAIL,
    midpoint_grid,
    probability_of_max,
)


def adaptive_reference(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """scipy's adaptive quad of f_i(t) prod_j F_j(t), split at every mean +- a few sds."""
    ends = np.unique(np.concatenate([mean + c * sd for c in np.linspace(-12, 12, 49)]))
    out = []
    for i in range(len(mean)):
        def integrand(t: float, i: int = i) -> float:
            others = [special.ndtr((t - mean[j]) / sd[j]) for j in range(len(mean)) if j != i]
            return stats.norm.pdf(t, mean[i], sd[i]) * float(np.prod(others))
        out.append(sum(integrate.quad(integrand, a, b, epsabs=1e-16, epsrel=1e-13, limit=200)[0]
                       for a, b in zip(ends[:-1], ends[1:], strict=True)))
    return np.array(out)


CASES = [
    ([0.0, 0.1, 0.2], [1.0, 1.0, 1.0]),
    ([0.0, 0.3, 0.5], [1.0, 0.5, 0.3]),
    ([0.0, 0.05, 0.1], [0.3, 0.03, 0.1]),  # width ratio 10: steep steps under a wide density
    ([0.0, 0.02, 0.01, 0.03, 0.04], [0.1, 0.01, 0.02, 0.05, 0.003]),  # ratio 33
    ([0.0, 0.02, 0.01, 0.03, 0.04], [0.1, 0.0001, 0.02, 0.05, 0.003]),  # ratio 1000
    ([0.0, 1e-9, -1e-9, 0.0], [1.0, 1.0, 0.2, 3.0]),  # near-ties, widths 15 apart
    ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.1, 0.9, 1.0, 1.2, 0.8]),  # all tied, widths alike
]


def tolerance(mean: np.ndarray, sd: np.ndarray) -> float:
    """MIDPOINT_ERROR for rows of the midpoint rule, 1e-11 for rows of the composite Gauss-Legendre
    rule (accurate to about 1e-13); quad is accurate to 1e-13 relative."""
    nodes = midpoint_grid(mean[None], sd[None], np.ones((1, len(mean)), bool))[2][0]
    return MIDPOINT_ERROR if nodes <= MAX_NODES else 1e-11


@pytest.mark.parametrize(("mean", "sd"), CASES)
def test_matches_adaptive_integration(mean, sd):
    mean, sd = np.array(mean), np.array(sd)
    p = probability_of_max(mean[None], sd[None], np.ones((1, len(mean)), bool))[0]
    np.testing.assert_allclose(p, adaptive_reference(mean, sd), rtol=0, atol=tolerance(mean, sd))


def test_random_rows_match_adaptive_integration_on_both_rules():
    # widths up to 200 apart: the midpoint rule takes the rows with alike widths, the panel rule the rest
    rng = np.random.default_rng(20)
    rows = [(rng.normal(0, 0.05, k), np.exp(rng.uniform(np.log(0.0005), np.log(0.1), k)))
            for k in (3, 4, 5, 6)]
    uses_midpoint = []
    for mean, sd in rows:
        allowed = np.ones((1, len(mean)), bool)
        uses_midpoint.append(midpoint_grid(mean[None], sd[None], allowed)[2][0] <= MAX_NODES)
        p = probability_of_max(mean[None], sd[None], allowed)[0]
        np.testing.assert_allclose(p, adaptive_reference(mean, sd), rtol=0, atol=tolerance(mean, sd))
    assert 0 < sum(uses_midpoint) < len(rows)


@pytest.mark.parametrize("kind", ["alike", "linear-ts-like", "widths 20 apart"])
def test_midpoint_rows_match_adaptive_integration(kind):
    # the midpoint rule on rows of 3 to 8 contending actions of three shapes: alike widths, the widths
    # and gaps of a learning linear Thompson sampler, widths up to 20 apart (still under MAX_NODES)
    rng = np.random.default_rng({"alike": 1, "linear-ts-like": 2, "widths 20 apart": 3}[kind])
    checked = 0
    for k in (3, 4, 5, 6, 8):
        if kind == "alike":
            mean, sd = rng.normal(0, 0.5, k), np.ones(k)
        elif kind == "linear-ts-like":
            mean, sd = rng.normal(0.06, 0.03, k), rng.uniform(0.007, 0.03, k)
        else:
            mean, sd = rng.normal(0, 1, k), np.exp(rng.uniform(-1.5, 1.5, k))
        if midpoint_grid(mean[None], sd[None], np.ones((1, k), bool))[2][0] > MAX_NODES:
            continue
        checked += 1
        p = probability_of_max(mean[None], sd[None], np.ones((1, k), bool))[0]
        np.testing.assert_allclose(p, adaptive_reference(mean, sd), rtol=0, atol=MIDPOINT_ERROR)
    assert checked >= 4


@pytest.mark.parametrize(("mean", "sd"), CASES)
def test_matches_a_high_draw_monte_carlo(mean, sd):
    mean, sd = np.array(mean), np.array(sd)
    draws = 2_000_000
    scores = np.random.default_rng(3).normal(mean, sd, size=(draws, len(mean)))
    empirical = np.bincount(scores.argmax(axis=1), minlength=len(mean)) / draws
    p = probability_of_max(mean[None], sd[None], np.ones((1, len(mean)), bool))[0]
    # 5 standard errors of a proportion from 2,000,000 draws (at most 0.0018): fails by chance ~1e-6
    tolerance = 5 * np.sqrt(np.maximum(p * (1 - p), 1e-6) / draws)
    assert np.all(np.abs(p - empirical) < tolerance), (p, empirical)


def test_two_actions_are_the_normal_difference_and_equal_ones_split_evenly():
    mean = np.array([[0.3, 0.1], [0.0, 0.0], [1.0, -1.0]])
    sd = np.array([[0.2, 0.5], [1.0, 1.0], [0.1, 3.0]])
    p = probability_of_max(mean, sd, np.ones((3, 2), bool))
    exact = stats.norm.cdf((mean[:, 0] - mean[:, 1]) / np.hypot(sd[:, 0], sd[:, 1]))
    np.testing.assert_allclose(p[:, 0], exact, rtol=1e-14)
    five = probability_of_max(np.zeros((1, 5)), np.full((1, 5), 0.7), np.ones((1, 5), bool))
    np.testing.assert_allclose(five, 0.2, rtol=0, atol=1e-13)


def test_disallowed_actions_get_zero_and_a_hopeless_one_is_dropped():
    mean = np.array([[0.0, 5.0, 0.1, -20.0]])
    sd = np.array([[1.0, 1.0, 1.0, 1.0]])
    allowed = np.array([[True, False, True, True]])
    p = probability_of_max(mean, sd, allowed)[0]
    assert p[1] == 0.0
    assert p[3] == 0.0  # z of 14.2 behind the leader: below NEGLIGIBLE
    assert stats.norm.sf((0.1 + 20.0) / np.sqrt(2)) < NEGLIGIBLE
    np.testing.assert_allclose(p[[0, 2]].sum(), 1.0, rtol=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_rows_are_distributions(k, seed):
    rng = np.random.default_rng(seed)
    n = 20
    mean = rng.normal(0, 1, (n, k))
    sd = np.exp(rng.uniform(-7, 1, (n, k)))
    allowed = rng.random((n, k)) < 0.8
    allowed[np.arange(n), rng.integers(0, k, n)] = True
    p = probability_of_max(mean, sd, allowed)
    assert np.all(p >= 0) and np.all(p[~allowed] == 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_midpoint_sums_with_recurrent_densities_match_direct_evaluation_over_the_longest_grid():
    # the densities come from a product recurrence along each action's nodes: over MAX_NODES nodes,
    # from the lowest start the grid allows (every action at or above Phi^-1(TAIL)) to far beyond the
    # peak, the weighted sums match exp and ndtr evaluated at every node (both normalised per row)
    from bandit.gaussian_max import _LOW_Z
    from bandit.midpoint_rule import midpoint_rule

    rng = np.random.default_rng(8)
    rows, k = 6, 4
    mean, sd = rng.normal(0, 0.3, (rows, k)), np.exp(rng.uniform(-0.5, 0.5, (rows, k)))
    low = (mean + _LOW_Z * sd).max(axis=1)
    step = 1.15 / np.sqrt((sd**-2.0).sum(axis=1))
    sums = np.empty((rows, k))
    midpoint_rule(mean, sd, np.ones((rows, k), bool), low, step, np.full(rows, MAX_NODES), MAX_NODES, sums)
    t = low[:, None] + step[:, None] * (np.arange(MAX_NODES) + 0.5)  # (rows, nodes)
    u = (t[:, None, :] - mean[:, :, None]) / sd[:, :, None]  # (rows, k, nodes)
    assert u.max() > 60  # far past the peak: the recurrence falls to underflow there
    cdf, density = special.ndtr(u), np.exp(-0.5 * u * u) / sd[:, :, None]
    expected = np.empty((rows, k))
    for i in range(k):
        others = np.prod(np.delete(cdf, i, axis=1), axis=1)
        expected[:, i] = (density[:, i] * others).sum(axis=1)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(sums, expected, rtol=1e-10, atol=1e-300)


def test_midpoint_grid_holds_the_tails_and_the_step():
    # below L the maximum lies with probability at most TAIL (the Newton step stays left of the root),
    # above U at most TAIL (k Phi(-c) = TAIL), and the step is at most STEP_PER_SD combined sds
    rng = np.random.default_rng(9)
    n, k = 2000, 5
    mean, sd = rng.normal(0.06, 0.03, (n, k)), np.exp(rng.uniform(np.log(0.003), np.log(0.03), (n, k)))
    contending = rng.random((n, k)) < 0.8
    contending[:, :3] = True
    low, step, nodes = midpoint_grid(mean, sd, contending)
    near = nodes <= MAX_NODES
    assert near.mean() > 0.9 and np.all(nodes[near] % 4 == 0)
    inside = np.where(contending, special.ndtr((low[:, None] - mean) / sd), 1.0).prod(axis=1)
    assert np.all(inside[near] <= TAIL * (1 + 1e-9))
    high = low + step * nodes
    above = 1 - np.where(contending, special.ndtr((high[:, None] - mean) / sd), 1.0).prod(axis=1)
    assert np.all(above[near] <= TAIL * (1 + 1e-6))
    combined = 1 / np.sqrt(np.where(contending, sd**-2.0, 0.0).sum(axis=1))
    assert np.all(step[near] <= STEP_PER_SD * combined[near] * (1 + 1e-12))


def test_rows_of_a_batch_match_the_same_rows_alone():
    # the compiled rule sorts rows by node count and evaluates blocks of them side by side, with the
    # actions a row leaves out as scores of probability 0: each row comes out as it does alone
    rng = np.random.default_rng(10)
    n, k = 300, 6
    mean, sd = rng.normal(0, 0.05, (n, k)), np.exp(rng.uniform(np.log(0.002), np.log(0.05), (n, k)))
    allowed = rng.random((n, k)) < 0.8
    allowed[np.arange(n), rng.integers(0, k, n)] = True
    batch = probability_of_max(mean, sd, allowed)
    alone = np.concatenate([probability_of_max(mean[i:i + 1], sd[i:i + 1], allowed[i:i + 1])
                            for i in range(n)])
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-15)
    assert np.all(batch[~allowed] == 0.0)
    assert len(np.unique(midpoint_grid(mean, sd, allowed)[2])) > 3  # several node counts in one batch
