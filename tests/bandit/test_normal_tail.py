"""The normal distribution function from array arithmetic, against scipy's special functions."""

from __future__ import annotations

import numpy as np
from scipy import special

from bandit.normal_tail import POWERS, fill_cdf, log_cdf


def evaluate(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    powers = np.empty((POWERS, len(u)))
    powers[0] = 1.0
    cdf, density = np.empty(len(u)), np.empty(len(u))
    fill_cdf(u, powers, np.empty((2, len(u))), cdf, density)
    return cdf, density


def test_cdf_matches_ndtr_relatively_in_the_tail_it_computes():
    u = np.linspace(-40.0, 40.0, 400_001)
    cdf, density = evaluate(u)
    reference = special.ndtr(u)
    tail = np.minimum(reference, special.ndtr(-u))  # Q(|u|), the part the rational approximation gives
    inner = np.abs(u) <= 9  # the fitted range: relative error of Q below 2e-11
    assert np.all(np.abs(cdf - reference)[inner] <= 2e-11 * tail[inner] + 1.2e-16)
    # beyond 9 the ratio is within 1e-6 relatively and Q below 2e-19
    assert np.all(np.abs(cdf - reference)[~inner] <= 1e-6 * tail[~inner] + 1.2e-16)
    np.testing.assert_array_equal(density, np.exp(-0.5 * u * u))


def test_log_cdf_and_hazard_match_scipy_in_both_tails():
    z = np.linspace(-30.0, 9.0, 200_001)
    log, hazard = log_cdf(z)
    reference = special.log_ndtr(z)
    # the reversed hazard phi / Phi, from the log density minus log_ndtr
    expected = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - reference)
    inner = z >= -9  # the fitted range; below it the ratio is within 1e-6, so log Phi within 1e-6
    np.testing.assert_allclose(log[inner], reference[inner], rtol=0, atol=2e-11)  # Phi: 2e-11 relatively
    np.testing.assert_allclose(hazard[inner], expected[inner], rtol=5e-11, atol=0)
    np.testing.assert_allclose(log[~inner], reference[~inner], rtol=0, atol=1e-6)
    np.testing.assert_allclose(hazard[~inner], expected[~inner], rtol=1e-6, atol=0)
    far_log, far_hazard = log_cdf(np.array([-1e20, 1e20, -np.inf, np.inf]))
    assert far_log[0] < -1e29 and far_log[1] == 0 and far_log[2] < -1e29 and far_log[3] == 0
    assert far_hazard[0] > 1e14 and far_hazard[1] == 0 and far_hazard[3] == 0
