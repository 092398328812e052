"""Guardrail non-inferiority against statsmodels' test of two independent proportions."""

from __future__ import annotations

import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import test_proportions_2indep as sm_test_2indep

from analysis.errors import AnalysisInputError
from analysis.noninferiority import check_noninferiority
from analysis.stats import ProportionStats, SampleStats


def _check(control, variant, **kw):
    names = {"metric": "unsubscribe", "variant_name": "b", "control_name": "a"}
    return check_noninferiority(control, variant, **names, **kw)


def test_matches_statsmodels_wald_noninferiority() -> None:
    a, b = ProportionStats(20000, 400), ProportionStats(20000, 390)
    margin = 0.1 * 400 / 20000
    # H0: pB - pA >= margin against H1: pB - pA < margin (Wald, unpooled variance)
    ref = sm_test_2indep(390, 20000, 400, 20000, value=margin, method="wald", compare="diff",
                         alternative="smaller")
    r = _check(a, b, margin=0.1)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert r.non_inferior == (ref.pvalue < 0.05)
    se = (a.variance_of_mean + b.variance_of_mean) ** 0.5
    assert r.bound == pytest.approx(b.mean - a.mean + sps.norm.ppf(0.95) * se, abs=1e-12)


def test_a_clearly_harmful_variant_fails() -> None:
    r = _check(ProportionStats(20000, 200), ProportionStats(20000, 320), margin=0.1)
    assert not r.non_inferior and r.p_value > 0.5


def test_flipping_the_direction_flips_the_answer() -> None:
    # Revenue (higher is better) is the mirror image of its negative (higher is worse).
    a, b = SampleStats(500, 5000.0, 60000.0), SampleStats(500, 4900.0, 59000.0)
    neg_a, neg_b = SampleStats(500, -5000.0, 60000.0), SampleStats(500, -4900.0, 59000.0)
    better = _check(a, b, margin=0.05, higher_is_worse=False)
    mirrored = _check(neg_a, neg_b, margin=0.05, higher_is_worse=True)
    assert better.p_value == pytest.approx(mirrored.p_value, abs=1e-12)
    assert better.bound == pytest.approx(-mirrored.bound, abs=1e-12)
    assert better.non_inferior == mirrored.non_inferior


def test_bad_margin() -> None:
    with pytest.raises(AnalysisInputError, match="margin"):
        _check(ProportionStats(10, 1), ProportionStats(10, 1), margin=-0.1)
