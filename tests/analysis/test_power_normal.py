"""The standard-library normal distribution and root finder behind the rate questions.

References are scipy's ``norm`` and statsmodels' ``NormalIndPower``; the rate questions must answer as
they did when they called those libraries, so the tolerances are a few units in the last place.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from analysis.power.normal import bisect_root, normal_cdf, normal_isf, normal_ppf, normal_sf
from analysis.power.rates import normal_ind_power


@pytest.mark.parametrize("x", [-37.0, -8.5, -1.96, -0.3, 0.0, 0.7, 2.5, 8.5, 37.0])
def test_cdf_and_sf_match_scipy_in_both_tails(x: float) -> None:
    # relative 1e-13: both come from an erfc; at x = 37 (a tail of 6e-300) they differ by 3e-14
    assert normal_cdf(x) == pytest.approx(stats.norm.cdf(x), rel=1e-13, abs=0)
    assert normal_sf(x) == pytest.approx(stats.norm.sf(x), rel=1e-13, abs=0)


@pytest.mark.parametrize("p", [1e-300, 1e-12, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 1 - 1e-12])
def test_quantiles_match_scipy(p: float) -> None:
    # AS 241 is accurate to about 1e-16 relative; 1e-13 leaves room for scipy's own rounding
    assert normal_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-13, abs=1e-15)
    assert normal_isf(p) == pytest.approx(stats.norm.isf(p), rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("alternative", ["two-sided", "one-sided"])
def test_normal_ind_power_matches_statsmodels(alternative: str) -> None:
    rng = np.random.default_rng(7)
    sm_alternative = "two-sided" if alternative == "two-sided" else "larger"
    for _ in range(200):
        h, n = float(rng.uniform(1e-4, 1.5)), float(10 ** rng.uniform(0.5, 8))
        alpha, ratio = float(rng.uniform(1e-4, 0.2)), float(10 ** rng.uniform(-2, 2))
        expected = NormalIndPower().power(effect_size=h, nobs1=n, alpha=alpha, ratio=ratio,
                                          alternative=sm_alternative)
        answer = normal_ind_power(h, n, alpha, ratio, alternative)
        assert answer == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_bisect_root_finds_roots_to_the_last_float() -> None:
    assert bisect_root(lambda x: x**3 - 2.0, 0.0, 2.0) == pytest.approx(2 ** (1 / 3), rel=4e-16)
    assert bisect_root(math.cos, 0.0, 3.0) == pytest.approx(math.pi / 2, rel=4e-16)
    assert bisect_root(lambda x: x - 1.0, 1.0, 3.0) == 1.0


def test_bisect_root_needs_a_bracket() -> None:
    with pytest.raises(ValueError, match="opposite signs"):
        bisect_root(lambda x: x * x + 1.0, -1.0, 1.0)
