"""Bayesian results against closed forms, independent numerical integration, and seeded Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special
from scipy import stats as sps

from analysis.bayesian import (
    Posterior,
    expected_loss,
    mean_posterior,
    prob_beat,
    prob_best,
    rate_posterior,
    summarise_draws,
)
from analysis.errors import AnalysisInputError
from analysis.stats import ProportionStats, SampleStats

CONTROL = rate_posterior(ProportionStats(200, 30))  # Beta(31, 171)
VARIANT = rate_posterior(ProportionStats(210, 45))  # Beta(46, 166)


def _prob_b_beats_a_closed_form(a: Posterior, b: Posterior) -> float:
    # Evan Miller, "Formulas for Bayesian A/B testing" (2015), for integer b.a:
    # P(pB > pA) = sum_{i=0}^{aB-1} B(aA+i, bA+bB) / ((bB+i) B(1+i, bB) B(aA, bA))
    total = 0.0
    for i in range(int(b.a)):
        total += math.exp(special.betaln(a.a + i, a.b + b.b) - math.log(b.b + i)
                          - special.betaln(1 + i, b.b) - special.betaln(a.a, a.b))
    return total


def test_beta_posterior_parameters() -> None:
    assert (CONTROL.a, CONTROL.b) == (31, 171)
    assert CONTROL.mean == pytest.approx(sps.beta(31, 171).mean())
    assert CONTROL.std == pytest.approx(sps.beta(31, 171).std())
    assert float(CONTROL.ppf(0.975)) == pytest.approx(sps.beta(31, 171).ppf(0.975), abs=1e-10)


def test_prob_beat_matches_the_closed_form() -> None:
    reference = _prob_b_beats_a_closed_form(CONTROL, VARIANT)
    assert prob_beat(CONTROL, VARIANT) == pytest.approx(reference, abs=1e-8)
    assert prob_beat(VARIANT, CONTROL) == pytest.approx(1 - prob_beat(CONTROL, VARIANT), abs=1e-8)


def test_prob_best_of_two_normals_matches_phi() -> None:
    a, b = Posterior("normal", 1.0, 0.3), Posterior("normal", 1.4, 0.2)
    p = prob_best([a, b])
    assert p[1] == pytest.approx(sps.norm.cdf(0.4 / math.hypot(0.3, 0.2)), abs=1e-8)
    assert prob_beat(a, b) == pytest.approx(p[1], abs=1e-8)


def test_prob_best_of_many_arms_sums_to_one_and_matches_monte_carlo() -> None:
    posteriors = [rate_posterior(ProportionStats(5000, k)) for k in (400, 420, 430, 380, 425)]
    p = prob_best(posteriors)
    assert p.sum() == pytest.approx(1.0, abs=1e-7)
    rng = np.random.default_rng(5)
    draws = np.stack([rng.beta(q.a, q.b, 400_000) for q in posteriors])
    mc = np.bincount(draws.argmax(axis=0), minlength=5) / 400_000
    assert p == pytest.approx(mc, abs=4 * math.sqrt(0.25 / 400_000))


def test_point_masses_in_prob_best() -> None:
    # An arm whose values are all equal has a zero-spread posterior: a point mass.
    zero, other = Posterior("normal", 0.0, 0.0), Posterior("normal", 0.1, 0.2)
    p = prob_best([zero, other])
    assert p == pytest.approx([sps.norm.cdf(-0.5), sps.norm.sf(-0.5)], abs=1e-8)
    assert prob_best([zero, Posterior("normal", 0.0, 0.0)]) == pytest.approx([0.5, 0.5])
    third = Posterior("normal", 0.05, 0.1)
    p3 = prob_best([zero, other, third])
    rng = np.random.default_rng(9)
    draws = np.stack([np.zeros(400_000), rng.normal(0.1, 0.2, 400_000), rng.normal(0.05, 0.1, 400_000)])
    assert p3 == pytest.approx(np.bincount(draws.argmax(0), minlength=3) / 400_000, abs=0.004)
    assert p3.sum() == pytest.approx(1.0, abs=1e-7)


def test_beta_expected_loss_matches_double_integral() -> None:
    # E[max(pA - pB, 0)] as a plain double integral of the two Beta densities (scipy dblquad).
    fa, fb = sps.beta(CONTROL.a, CONTROL.b), sps.beta(VARIANT.a, VARIANT.b)
    ref = integrate.dblquad(lambda y, x: (x - y) * fa.pdf(x) * fb.pdf(y), 0, 1, 0, lambda x: x,
                            epsabs=1e-12)[0]
    assert expected_loss(CONTROL, VARIANT) == pytest.approx(ref, abs=1e-8)


def test_normal_expected_loss_matches_integral() -> None:
    a, b = Posterior("normal", 1.0, 0.3), Posterior("normal", 0.9, 0.2)
    d = sps.norm(0.1, math.hypot(0.3, 0.2))  # control - variant
    ref = integrate.quad(lambda x: x * d.pdf(x), 0, np.inf)[0]
    assert expected_loss(a, b) == pytest.approx(ref, abs=1e-9)


def test_mean_posterior_is_normal_with_standard_error() -> None:
    s = SampleStats(400, 1200.0, 5000.0)
    post = mean_posterior(s)
    assert post.a == pytest.approx(3.0) and post.b == pytest.approx(math.sqrt(s.variance / 400))


def test_monte_carlo_summaries_match_exact_distributions() -> None:
    draws = summarise_draws([CONTROL, VARIANT], rng=np.random.default_rng(17), draws=200_000)
    # relative lift: P(pB/pA - 1 <= r) = int f_A(x) F_B((1 + r) x) dx, solved for the 2.5% and 97.5% points
    fa, fb = sps.beta(CONTROL.a, CONTROL.b), sps.beta(VARIANT.a, VARIANT.b)
    def cdf(r: float) -> float:
        return integrate.quad(lambda x: fa.pdf(x) * fb.cdf((1 + r) * x), 0, 1, epsabs=1e-12)[0]
    exact = [optimize.brentq(lambda r, q=q: cdf(r) - q, -0.9, 5.0) for q in (0.025, 0.975)]
    assert draws.relative_lift_ci[1] == pytest.approx(exact, abs=0.01)
    assert draws.relative_lift_ci[0] == pytest.approx([0.0, 0.0])
    # with two arms the expected loss against the best is the expected loss against the other arm
    assert draws.expected_loss_vs_best[1] == pytest.approx(expected_loss(CONTROL, VARIANT), rel=0.05)
    assert draws.expected_loss_vs_best[0] == pytest.approx(expected_loss(VARIANT, CONTROL), rel=0.02)


def test_same_seed_same_draws() -> None:
    one = summarise_draws([CONTROL, VARIANT], rng=np.random.default_rng(3), draws=1000)
    two = summarise_draws([CONTROL, VARIANT], rng=np.random.default_rng(3), draws=1000)
    assert np.array_equal(one.relative_lift_ci, two.relative_lift_ci)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Posterior("gamma", 1, 1), "family"),
        (lambda: Posterior("beta", 0, 1), "beta parameters"),
        (lambda: rate_posterior(ProportionStats(3, 1), prior=(0, 1)), "prior"),
        (lambda: prob_best([CONTROL]), "at least 2"),
        (lambda: prob_beat(CONTROL, Posterior("normal", 0.1, 0.1)), "same model"),
        (lambda: mean_posterior(SampleStats(1, 1.0, 1.0)), "n >= 2"),
        (lambda: summarise_draws([CONTROL, VARIANT], rng=np.random.default_rng(0), draws=5), "draws"),
    ],
)
def test_bad_inputs(call, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        call()
