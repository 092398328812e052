"""analyze_slot reuses the posterior summaries: P(beat control) and the expected loss against control
come from :func:`analysis.bayesian.summarise_posteriors` (with two arms, the variant's P(best) and loss
versus the best)."""

from __future__ import annotations

import math

import pytest
from scipy import integrate, stats

from analysis.bayesian import prob_beat, rate_posterior
from analysis.results import ArmData, analyze_slot
from analysis.stats import ProportionStats, SampleStats


def test_two_arm_prob_beat_control_matches_an_independent_integral():
    arms = [ArmData("a", 20_000, {"click": 700}, SampleStats(20_000, 900.0, 52_000.0), 0.5),
            ArmData("b", 20_000, {"click": 760}, SampleStats(20_000, 950.0, 55_000.0), 0.5)]
    result = analyze_slot("subject", arms, "a", metrics=["click"])
    comparison = next(c for c in result.comparisons if c.metric == "click")
    a, b = (rate_posterior(ProportionStats(20_000, c)) for c in (700, 760))
    # reference: scipy's adaptive quad of f_B(x) F_A(x) (Beta(1 + x, 1 + n - x) posteriors), 1e-8
    reference = integrate.quad(lambda x: stats.beta.pdf(x, b.a, b.b) * stats.beta.cdf(x, a.a, a.b),
                               0.02, 0.06, epsabs=1e-13, limit=200)[0]
    assert comparison.prob_beat_control == pytest.approx(reference, abs=1e-8)
    assert prob_beat(a, b) == pytest.approx(reference, abs=1e-8)


def _beta_loss(control, variant) -> float:
    """E[(A - B)+] for Beta posteriors as a double integral of the two densities (scipy dblquad)."""
    fa, fb = stats.beta(control.a, control.b), stats.beta(variant.a, variant.b)
    lo = min(fa.ppf(1e-14), fb.ppf(1e-14))
    hi = max(fa.isf(1e-14), fb.isf(1e-14))
    return integrate.dblquad(lambda y, x: (x - y) * fa.pdf(x) * fb.pdf(y), lo, hi, lo, lambda x: x,
                             epsabs=1e-13)[0]


@pytest.mark.parametrize("k", [2, 3])
def test_comparisons_take_prob_beat_and_expected_loss_from_the_summary(k: int) -> None:
    # with two arms the summary's P(best) and loss versus the best; with three, the pairwise integrals
    counts = [(2_000, 150), (2_100, 190), (1_900, 120)][:k]
    values = [SampleStats(n, 0.3 * n, 0.9 * n) for n, _ in counts]
    values[1] = SampleStats(2_100, 0.34 * 2_100, 1.0 * 2_100)
    arms = [ArmData(f"v{i}", n, {"click": c}, value, 1.0)
            for i, ((n, c), value) in enumerate(zip(counts, values, strict=True))]
    result = analyze_slot("subject", arms, "v0", metrics=["click"])
    control = rate_posterior(ProportionStats(*counts[0]))
    control_value = (values[0].mean, math.sqrt(values[0].variance_of_mean))
    for i in range(1, k):
        variant = rate_posterior(ProportionStats(*counts[i]))
        rate = result.comparison(f"v{i}", "click")
        # references: scipy's adaptive quad of f_B F_A, and the double integral of (a - b)+
        beats = integrate.quad(
            lambda x, v=variant: stats.beta.pdf(x, v.a, v.b) * stats.beta.cdf(x, control.a, control.b),
            0.0, 0.3, points=[variant.mean], epsabs=1e-13, limit=200)[0]
        assert rate.prob_beat_control == pytest.approx(beats, abs=1e-9)
        assert rate.expected_loss == pytest.approx(_beta_loss(control, variant), abs=1e-10)
        # value metric, normal posteriors: D = control - variant ~ N(mu, s); P(beat) = Phi(-mu / s) and
        # E[D+] = mu Phi(mu / s) + s phi(mu / s)
        value = result.comparison(f"v{i}", "reward")
        mu = control_value[0] - values[i].mean
        s = math.hypot(control_value[1], math.sqrt(values[i].variance_of_mean))
        assert value.prob_beat_control == pytest.approx(stats.norm.cdf(-mu / s), abs=1e-12)
        assert value.expected_loss == pytest.approx(mu * stats.norm.cdf(mu / s) + s * stats.norm.pdf(mu / s),
                                                    abs=1e-12)
