"""Bayesian results against closed forms, independent numerical integration, and seeded Monte Carlo."""

from __future__ import annotations

import math
from fractions import Fraction

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
    summarise_posteriors,
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


@pytest.mark.parametrize(("control", "variant"), [
    (Posterior("beta", 31, 171), Posterior("beta", 46, 166)),
    (Posterior("beta", 15_001, 485_001), Posterior("beta", 16_201, 483_801)),  # near 1e5: email scale
    (Posterior("beta", 3, 40), Posterior("beta", 3_001, 39_001)),  # widths tenfold apart, each order
    (Posterior("beta", 3_001, 39_001), Posterior("beta", 3, 40)),
])
def test_beta_expected_loss_matches_the_closed_form_in_means_and_probabilities(control, variant) -> None:
    # E[(A - B)+] = mean_A P(A+ > B) - mean_B P(A > B+) with A+ = Beta(a_A + 1, b_A) (Evan Miller's
    # identity x f_A(x) = mean_A f_{A+}(x)); each probability by scipy's adaptive quad to 1e-13.
    def beats(first: Posterior, second: Posterior) -> float:  # P(first > second)
        f, g = sps.beta(first.a, first.b), sps.beta(second.a, second.b)
        lo, hi = min(f.ppf(1e-15), g.ppf(1e-15)), max(f.ppf(1 - 1e-15), g.ppf(1 - 1e-15))
        grid = np.linspace(0.001, 0.999, 41)
        ends = np.unique(np.concatenate([f.ppf(grid), g.ppf(grid), [lo, hi]]))
        return sum(integrate.quad(lambda x: f.pdf(x) * g.cdf(x), a, b, epsabs=1e-15, epsrel=1e-13,
                                  limit=200)[0] for a, b in zip(ends[:-1], ends[1:], strict=True))

    plus_a, plus_b = Posterior("beta", control.a + 1, control.b), Posterior("beta", variant.a + 1, variant.b)
    reference = control.mean * beats(plus_a, variant) - variant.mean * beats(control, plus_b)
    assert expected_loss(control, variant) == pytest.approx(max(reference, 0.0), rel=1e-8, abs=1e-12)


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


# ---------------------------------------------------------------- more than two arms, exact summaries


def _beta_polynomial(a: int, b: int) -> list[int]:
    """Integer coefficients c[m] of the Beta(a, b) distribution function for integer a, b:
    F(x) = sum_m c[m] x^m (1-x)^(n-m), n = a + b - 1 (the binomial tail P(Bin(n, x) >= a))."""
    n = a + b - 1
    return [math.comb(n, m) if m >= a else 0 for m in range(n + 1)]


def _exact_prob_best(params: list[tuple[int, int]], i: int) -> Fraction:
    """P(arm i is best) for Beta posteriors with integer parameters, in exact rational arithmetic.

    The product of the other arms' distribution functions is a sum of terms x^M (1-x)^(N-M) whose
    integer coefficients are the convolution of each arm's binomial-tail coefficients; each term
    integrates against Beta(a_i, b_i) to B(a_i + M, b_i + N - M) / B(a_i, b_i). No quadrature.
    """
    coef = [1]
    for j, (a, b) in enumerate(params):
        if j != i:
            coef = np.convolve(np.array(coef, dtype=object), np.array(_beta_polynomial(a, b), dtype=object))
    n_total = len(coef) - 1
    ai, bi = params[i]

    def beta_fn(p: int, q: int) -> Fraction:
        return Fraction(math.factorial(p - 1) * math.factorial(q - 1), math.factorial(p + q - 1))

    return sum((int(c) * beta_fn(ai + m, bi + n_total - m) for m, c in enumerate(coef) if c),
               Fraction(0)) / beta_fn(ai, bi)


FOUR_ARMS = [(13, 40), (16, 38), (11, 45), (15, 37)]  # Beta parameters: 12/51, 15/52, 10/54, 14/50 + prior


def test_prob_best_of_four_arms_equals_the_exact_rational_value() -> None:
    posteriors = [Posterior("beta", a, b) for a, b in FOUR_ARMS]
    exact = [float(_exact_prob_best(FOUR_ARMS, i)) for i in range(4)]
    assert sum(exact) == pytest.approx(1.0, abs=1e-12)
    assert prob_best(posteriors) == pytest.approx(exact, abs=1e-9)


def test_prob_best_of_three_normals_matches_scipy_quadrature() -> None:
    # Reference: scipy.integrate.quad of the density of arm i times the other arms' scipy.stats.norm cdfs.
    arms = [(1.0, 0.10), (1.08, 0.12), (1.05, 0.05)]
    ref = []
    for i, (mu, sd) in enumerate(arms):
        others = [sps.norm(m, s) for j, (m, s) in enumerate(arms) if j != i]
        ref.append(integrate.quad(lambda x, mu=mu, sd=sd, others=others: sps.norm.pdf(x, mu, sd)
                                  * np.prod([o.cdf(x) for o in others]), mu - 12 * sd, mu + 12 * sd,
                                  epsabs=1e-13, limit=200)[0])
    assert prob_best([Posterior("normal", m, s) for m, s in arms]) == pytest.approx(ref, abs=1e-9)


def test_expected_loss_against_the_best_of_four_arms_is_exact() -> None:
    # E[max_j theta_j] = sum_i E[theta_i 1{i best}] = sum_i mean_i P(i best | a_i + 1): exact rationals.
    posteriors = [Posterior("beta", a, b) for a, b in FOUR_ARMS]
    top = Fraction(0)
    for i, (a, b) in enumerate(FOUR_ARMS):
        shifted = [(a + 1, b) if j == i else p for j, p in enumerate(FOUR_ARMS)]
        top += Fraction(a, a + b) * _exact_prob_best(shifted, i)
    expected = [float(top - Fraction(a, a + b)) for a, b in FOUR_ARMS]
    summary = summarise_posteriors(posteriors)
    assert summary.expected_loss_vs_best == pytest.approx(expected, abs=1e-9)
    normals = [Posterior("normal", m, s) for m, s in [(1.0, 0.1), (1.1, 0.2), (0.9, 0.05)]]
    # Reference: E[max] = integral of x times the density of the maximum, by scipy quadrature.
    def max_density(x: float) -> float:
        return sum(sps.norm.pdf(x, p.a, p.b)
                   * np.prod([sps.norm.cdf(x, q.a, q.b) for q in normals if q is not p]) for p in normals)
    top_normal = integrate.quad(lambda x: x * max_density(x), -1.0, 3.0, epsabs=1e-13, limit=200)[0]
    assert summarise_posteriors(normals).expected_loss_vs_best == pytest.approx(
        [top_normal - p.a for p in normals], abs=1e-9)


def _beta_lift_quantiles(control: Posterior, variant: Posterior, probs) -> tuple[list[float], list[float]]:
    """Reference quantiles of the absolute and relative lift: scipy.integrate.quad (adaptive QUADPACK) of
    the control's Beta density times the variant's distribution function (scipy.special), solved for
    each probability by scipy.optimize.brentq."""
    (aa, ba), (ab, bb) = (control.a, control.b), (variant.a, variant.b)
    lo, hi = special.betaincinv(aa, ba, 1e-15), special.betaincinv(aa, ba, 1 - 1e-15)
    points = list(special.betaincinv(aa, ba, [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]))

    def density(x: float) -> float:
        return math.exp((aa - 1) * math.log(x) + (ba - 1) * math.log1p(-x) - special.betaln(aa, ba))

    def integral(g) -> float:
        return integrate.quad(lambda x: density(x) * g(x), lo, hi, points=points, epsabs=1e-14,
                              epsrel=1e-12, limit=500)[0]

    def cdf(y: float) -> float:
        return float(special.betainc(ab, bb, min(max(y, 0.0), 1.0)))

    absolute = [optimize.brentq(lambda d, q=q: integral(lambda x: cdf(x + d)) - q, -1, 1, xtol=1e-14)
                for q in probs]
    relative = [optimize.brentq(lambda r, q=q: integral(lambda x: cdf((1 + r) * x)) - q, -1 + 1e-9, 1e4,
                                xtol=1e-14) for q in probs]
    return absolute, relative


@pytest.mark.parametrize(
    ("control", "variant", "level"),
    [((200, 30), (210, 45), 0.95), ((5000, 400), (5000, 430), 0.95), ((10, 0), (10, 3), 0.95),
     ((100_000, 12), (100_000, 30), 0.95), ((50, 0), (2000, 180), 0.95), ((3, 1), (100_000, 50_000), 0.95),
     ((200, 30), (210, 45), 0.8), ((500_000, 15_000), (500_000, 16_200), 0.95)],  # the last: email scale
)
def test_lift_credible_intervals_of_rates_match_scipy_quadrature(control, variant, level) -> None:
    c, v = rate_posterior(ProportionStats(*control)), rate_posterior(ProportionStats(*variant))
    q = [(1 - level) / 2, (1 + level) / 2]
    absolute, relative = _beta_lift_quantiles(c, v, q)
    summary = summarise_posteriors([c, v], level=level)
    assert summary.absolute_lift_ci[1] == pytest.approx(absolute, abs=1e-9)
    assert summary.relative_lift_ci[1] == pytest.approx(relative, abs=1e-6 * max(1.0, abs(relative[1])))
    assert summary.absolute_lift_ci[0] == pytest.approx([0, 0])
    assert summary.relative_lift_ci[0] == pytest.approx([0, 0])


@pytest.mark.parametrize(("control", "variant"), [((1.0, 0.1), (1.1, 0.12)), ((5.0, 1.0), (5.5, 0.1)),
                                                  ((0.5, 0.1), (0.6, 0.0)), ((2.0, 0.0), (2.5, 0.3))])
def test_lift_credible_intervals_of_values_match_closed_forms(control, variant) -> None:
    c, v = Posterior("normal", *control), Posterior("normal", *variant)
    summary = summarise_posteriors([c, v])
    # absolute: the difference of independent normals is normal
    diff = sps.norm(v.a - c.a, math.hypot(c.b, v.b))
    assert summary.absolute_lift_ci[1] == pytest.approx(diff.ppf([0.025, 0.975]), abs=1e-12)

    # relative: P(theta_v / theta_c <= t) by quadrature over the control (scipy.stats.norm), or directly
    # when the control is a point mass; solved with brentq
    def cdf(t: float) -> float:
        if c.b == 0:
            return sps.norm.cdf(t * c.a, v.a, v.b)
        inner = (lambda x: sps.norm.cdf(t * x, v.a, v.b)) if v.b else (lambda x: float(v.a <= t * x))
        return integrate.quad(lambda x: sps.norm.pdf(x, c.a, c.b) * inner(x), c.a - 12 * c.b, c.a + 12 * c.b,
                              points=None if v.b else [v.a / t], epsabs=1e-14, limit=500)[0]

    ref = [optimize.brentq(lambda t, q=q: cdf(t) - q, 0.01, 100, xtol=1e-14) - 1 for q in (0.025, 0.975)]
    assert summary.relative_lift_ci[1] == pytest.approx(ref, abs=1e-9)


def test_relative_lift_is_not_given_when_the_control_may_be_zero_or_less() -> None:
    near_zero = [Posterior("normal", 0.01, 0.004), Posterior("normal", 0.02, 0.004)]  # P(<= 0) = 0.6%
    summary = summarise_posteriors(near_zero)
    assert np.isnan(summary.relative_lift_ci[1]).all()
    assert np.isfinite(summary.absolute_lift_ci[1]).all()


def test_exact_summaries_agree_with_a_large_seeded_monte_carlo() -> None:
    # 1,000,000 draws per arm (seeded). At the exact quantile q of a lift, the share of draws below it is
    # q within 4 binomial standard errors; the expected losses agree within 4 Monte Carlo standard errors.
    posteriors = [rate_posterior(ProportionStats(5000, k)) for k in (400, 420, 430, 380, 425)]
    draws = 1_000_000
    rng = np.random.default_rng(2026)
    theta = np.stack([p.sample(rng, draws) for p in posteriors])
    summary = summarise_posteriors(posteriors, level=0.9)
    for i in range(1, 5):
        for values, (low, high) in [(theta[i] - theta[0], summary.absolute_lift_ci[i]),
                                    (theta[i] / theta[0] - 1, summary.relative_lift_ci[i])]:
            for point, q in ((low, 0.05), (high, 0.95)):
                assert np.mean(values <= point) == pytest.approx(q, abs=4 * math.sqrt(q * (1 - q) / draws))
    loss = theta.max(axis=0)[None, :] - theta
    se = loss.std(axis=1) / math.sqrt(draws)
    assert np.all(np.abs(loss.mean(axis=1) - summary.expected_loss_vs_best) <= 4 * se)
    mc = summarise_draws(posteriors, rng=np.random.default_rng(7), draws=200_000, level=0.9)
    assert mc.relative_lift_ci[1:] == pytest.approx(summary.relative_lift_ci[1:], abs=0.01)


def test_two_arm_summaries_match_closed_forms() -> None:
    # two arms: P(best) is P(beat) and the loss versus the best is the pair's expected loss. Betas: Evan
    # Miller's sum for P(beat); E[(A - B)+] = E[(B - A)+] - (mean_B - mean_A) with the loss by dblquad.
    summary = summarise_posteriors([CONTROL, VARIANT])
    beat = _prob_b_beats_a_closed_form(CONTROL, VARIANT)
    assert summary.prob_best == pytest.approx([1 - beat, beat], abs=1e-9)
    assert summary.prob_beat_control[1] == pytest.approx(beat, abs=1e-9)
    fa, fb = sps.beta(CONTROL.a, CONTROL.b), sps.beta(VARIANT.a, VARIANT.b)
    behind = integrate.dblquad(lambda y, x: (x - y) * fa.pdf(x) * fb.pdf(y), 0, 1, 0, lambda x: x,
                               epsabs=1e-12)[0]  # E[(A - B)+]
    ahead = behind + VARIANT.mean - CONTROL.mean
    assert summary.expected_loss_vs_best == pytest.approx([ahead, behind], abs=1e-9)
    assert summary.expected_loss_vs_control == pytest.approx([0.0, behind], abs=1e-9)
    # normals: D = B - A ~ N(0.4, s), P(beat) = Phi(0.4 / s), E[D+] = 0.4 Phi(0.4 / s) + s phi(0.4 / s)
    a, b = Posterior("normal", 1.0, 0.3), Posterior("normal", 1.4, 0.2)
    s = math.hypot(0.3, 0.2)
    normal = summarise_posteriors([a, b])
    gain = 0.4 * sps.norm.cdf(0.4 / s) + s * sps.norm.pdf(0.4 / s)
    assert normal.prob_best == pytest.approx([sps.norm.cdf(-0.4 / s), sps.norm.cdf(0.4 / s)], abs=1e-12)
    assert normal.expected_loss_vs_best == pytest.approx([gain, gain - 0.4], abs=1e-12)


def test_summaries_of_point_masses() -> None:
    # a normal posterior with zero spread (all values equal) is a point mass: E[max] mixes it exactly
    zero, other = Posterior("normal", 0.0, 0.0), Posterior("normal", 0.1, 0.2)
    summary = summarise_posteriors([other, zero])
    z = 0.5  # E[max(X, 0)] for X ~ N(0.1, 0.2): mu Phi(mu/s) + s phi(mu/s)
    top = 0.1 * sps.norm.cdf(z) + 0.2 * sps.norm.pdf(z)
    assert summary.expected_loss_vs_best == pytest.approx([top - 0.1, top], abs=1e-9)
    same = summarise_posteriors([Posterior("normal", 2.0, 0.0), Posterior("normal", 3.0, 0.0)])
    assert same.relative_lift_ci[1] == pytest.approx([0.5, 0.5])
    assert same.absolute_lift_ci[1] == pytest.approx([1.0, 1.0])


def test_prob_best_resolves_a_narrow_arm_beside_a_wide_one() -> None:
    # Found by the property test of analyze_slot: a narrow posterior's distribution function is nearly a
    # step inside a wide one's range. Two normals: P(B best) = Phi((mu_B - mu_A) / sqrt(s_A^2 + s_B^2)).
    wide, narrow = Posterior("normal", 0.64, 0.64), Posterior("normal", 0.0, 0.0011)
    p = prob_best([wide, narrow])
    assert p[1] == pytest.approx(sps.norm.cdf(-0.64 / math.hypot(0.64, 0.0011)), abs=1e-9)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    third = Posterior("normal", 0.3, 0.01)
    p3 = prob_best([wide, narrow, third])
    arms = [wide, narrow, third]
    ref = [integrate.quad(lambda x, i=i: sps.norm.pdf(x, arms[i].a, arms[i].b)
                          * np.prod([sps.norm.cdf(x, q.a, q.b) for j, q in enumerate(arms) if j != i]),
                          arms[i].a - 12 * arms[i].b, arms[i].a + 12 * arms[i].b,
                          points=[0.0, 0.3] if i == 0 else None, epsabs=1e-13, limit=500)[0]
           for i in range(3)]
    assert p3 == pytest.approx(ref, abs=1e-9)
