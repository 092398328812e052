"""BetaCdf: the anchored Beta distribution function against exact values and scipy's."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from analysis.beta_cdf import MIN_PARAMETER, BetaCdf


def _binomial_tail(a: int, b: int, x: Fraction) -> Fraction:
    """I_x(a, b) for integer a, b: P(Binomial(a + b - 1, x) >= a), summed exactly in rationals."""
    n = a + b - 1
    return sum((math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1)), Fraction(0))


@pytest.mark.parametrize(("a", "b"), [(120, 400), (300, 301), (1000, 150)])
def test_matches_the_exact_binomial_tail(a: int, b: int) -> None:
    beta = BetaCdf(a, b)
    mean, sd = sps.beta.mean(a, b), sps.beta.std(a, b)
    points = [Fraction(round((mean + z * sd) * 10_000), 10_000) for z in (-4.1, -1.3, -0.2, 0.37, 1.9, 5.3)]
    got = beta.cdf(np.array([float(x) for x in points]))
    exact = [float(_binomial_tail(a, b, x)) for x in points]
    assert got == pytest.approx(exact, abs=1e-14)


@pytest.mark.parametrize(("a", "b"), [
    (100.0, 100.0), (101.0, 4_001.0), (3_001.0, 497_001.0), (15_001.0, 485_001.0),  # email scale
    (17_289.5, 482_712.5), (250_000.0, 250_000.0), (500_000.0, 120.0), (1.0e6, 1.4e6),
])
def test_matches_scipy_betainc_everywhere(a: float, b: float) -> None:
    beta = BetaCdf(a, b)
    mean, sd = sps.beta.mean(a, b), sps.beta.std(a, b)
    rng = np.random.default_rng(3)
    x = np.concatenate([mean + sd * rng.uniform(-14, 14, 3000), rng.uniform(0, 1, 200), [0.0, 1.0]])
    x = x[(x >= 0) & (x <= 1)]
    # scipy's betainc is itself within a few 1e-14 at parameters near 1e6
    assert np.max(np.abs(beta.cdf(x) - special.betainc(a, b, x))) < 2e-13
    inside = x[(x > 0) & (x < 1)]
    peak = sps.beta.pdf((a - 1) / (a + b - 2), a, b)
    assert np.max(np.abs(beta.pdf(inside) - sps.beta.pdf(inside, a, b))) < 1e-12 * peak


def test_any_shape_and_points_outside_the_support() -> None:
    beta = BetaCdf(400.0, 600.0)
    x = np.array([[-0.5, 0.0, 0.38], [0.4, 0.41, 1.5]])
    got = beta.cdf(x)
    assert got.shape == (2, 3)
    assert got == pytest.approx(special.betainc(400.0, 600.0, np.clip(x, 0, 1)), abs=1e-14)
    assert got[0, 0] == 0.0 and got[1, 2] == 1.0


def test_points_beyond_an_anchor_next_to_zero() -> None:
    # the lowest anchor of Beta(100, 4001) is 3e-4, within half an anchor step of 0
    beta = BetaCdf(100.0, 4_001.0)
    x = np.array([-1e-4, 0.0, 1e-5, 2e-4, 1.0, 1.5])
    with np.errstate(all="raise"):
        cdf, pdf = beta.cdf(x), beta.pdf(x)
    assert cdf == pytest.approx(special.betainc(100.0, 4_001.0, np.clip(x, 0, 1)), abs=1e-14)
    peak = sps.beta.pdf(99 / 4_099, 100.0, 4_001.0)
    assert pdf == pytest.approx(sps.beta.pdf(x, 100.0, 4_001.0), abs=1e-12 * peak)
    assert pdf[[0, 1, 4, 5]].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_small_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="both parameters"):
        BetaCdf(MIN_PARAMETER / 2, 1000.0)
