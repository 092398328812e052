"""The compiled normal distribution function and exponential, against scipy and numpy."""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import special

from bandit.midpoint_rule import LOWEST, cdf_and_hazard, cdf_from_density, exponential


@njit
def evaluate(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phi(u) from exp(-u^2 / 2), and that exponential, at every point of ``u``."""
    cdf, density = np.empty(len(u)), np.empty(len(u))
    for i in range(len(u)):
        density[i] = np.exp(-0.5 * u[i] * u[i])
        cdf[i] = cdf_from_density(u[i], density[i])
    return cdf, density


@njit
def exponential_at(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = exponential(x[i])
    return out


@njit
def cdf_and_hazard_at(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cdf, hazard = np.empty(len(z)), np.empty(len(z))
    for i in range(len(z)):
        cdf[i], hazard[i] = cdf_and_hazard(z[i])
    return cdf, hazard


def test_cdf_matches_ndtr_relatively_in_the_tail_it_computes():
    u = np.linspace(-40.0, 40.0, 400_001)
    cdf, _ = evaluate(u)
    reference = special.ndtr(u)
    tail = np.minimum(reference, special.ndtr(-u))  # Q(|u|), the part the rational approximation gives
    inner = np.abs(u) <= 9  # the fitted range: relative error of Q below 2e-11
    assert np.all(np.abs(cdf - reference)[inner] <= 2e-11 * tail[inner] + 1.2e-16)
    # beyond 9 the ratio is within 1e-6 relatively and Q below 2e-19
    assert np.all(np.abs(cdf - reference)[~inner] <= 1e-6 * tail[~inner] + 1.2e-16)


def test_cdf_and_hazard_match_scipy_relatively_in_both_tails():
    z = np.linspace(-30.0, 40.0, 350_001)
    cdf, hazard = cdf_and_hazard_at(z)
    reference = special.ndtr(z)
    # the reversed hazard phi / Phi, from the log density minus log_ndtr
    expected = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - special.log_ndtr(z))
    inner = np.abs(z) <= 9  # the fitted range: the tail Q within 2e-11 relatively
    np.testing.assert_allclose(cdf[inner], reference[inner], rtol=2e-11, atol=0)
    np.testing.assert_allclose(hazard[inner], expected[inner], rtol=5e-11, atol=0)
    lower = (z < -9) & (z >= -37)  # beyond 9 the ratio is within 1e-6 relatively
    np.testing.assert_allclose(cdf[lower], reference[lower], rtol=1e-6, atol=0)
    np.testing.assert_allclose(hazard[lower], expected[lower], rtol=1e-6, atol=0)
    upper = z > 9
    assert np.all(cdf[upper] == 1.0) and np.all(hazard[upper] < 1e-17)
    assert np.all(hazard[z > 37] < 1e-296)
    far_cdf, far_hazard = cdf_and_hazard_at(np.array([-1e20, 1e20, -np.inf, np.inf]))
    # |z| is capped at 37: far below, Phi comes out as Q(37), a positive bound above the truth
    assert 0 < far_cdf[0] < 1e-299 and far_cdf[0] == far_cdf[2] and far_cdf[1] == far_cdf[3] == 1.0
    assert far_hazard[0] > 37 and far_hazard[1] < 1e-296 and far_hazard[3] < 1e-296


def test_exponential_is_within_a_unit_of_rounding_of_numpy_and_0_below_its_range():
    x = np.concatenate([np.linspace(LOWEST, 709.0, 1_000_001), np.linspace(-40.0, 8.0, 100_001), [0.0]])
    reference = np.exp(x)
    np.testing.assert_allclose(exponential_at(x), reference, rtol=2.5e-16, atol=0)
    assert exponential_at(np.array([0.0]))[0] == 1.0
    np.testing.assert_array_equal(exponential_at(np.array([-708.5, -745.0, -800.0, -np.inf])), 0.0)
