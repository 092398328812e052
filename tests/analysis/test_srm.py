"""Sample ratio mismatch against scipy's chi-square goodness of fit, and its calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from analysis.errors import AnalysisInputError
from analysis.srm import check_sample_ratio


def test_matches_scipy_chisquare() -> None:
    observed, shares = [5100, 4800, 10150], [0.25, 0.25, 0.5]
    ref = sps.chisquare(observed, f_exp=np.array(shares) * sum(observed))
    r = check_sample_ratio(observed, shares)
    assert r.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert r.expected == pytest.approx([5012.5, 5012.5, 10025.0])


def test_shares_need_not_sum_to_one() -> None:
    assert check_sample_ratio([480, 520], [0.45, 0.45]).p_value == pytest.approx(
        check_sample_ratio([480, 520], [0.5, 0.5]).p_value
    )


def test_flags_a_real_51_49_imbalance_and_not_a_fair_split() -> None:
    rng = np.random.default_rng(31)
    n = 200_000
    biased = [check_sample_ratio([int(k), n - int(k)], [0.5, 0.5]) for k in rng.binomial(n, 0.51, 200)]
    fair = [check_sample_ratio([int(k), n - int(k)], [0.5, 0.5]) for k in rng.binomial(n, 0.50, 2000)]
    assert all(r.flagged for r in biased)
    assert np.mean([r.flagged for r in fair]) <= 0.005  # threshold 0.001; 2,000 fair splits
    assert "SAMPLE RATIO MISMATCH" in biased[0].message


@pytest.mark.parametrize(
    ("observed", "shares", "message"),
    [
        ([10, 10], [0.5], "intended_shares"),
        ([10], [1.0], "observed"),
        ([10, 10], [0.5, 0.0], "intended_shares"),
        ([10, -1], [0.5, 0.5], "observed"),
    ],
)
def test_bad_inputs(observed, shares, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        check_sample_ratio(observed, shares)
