"""analyze_slot reuses the posterior summaries: with two arms, P(beat control) is the variant's P(best)."""

from __future__ import annotations

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
