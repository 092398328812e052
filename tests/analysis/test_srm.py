"""Sample ratio mismatch against scipy's chi-square goodness of fit, and its calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from analysis.errors import AnalysisInputError
from analysis.results import ArmData, analyze_slot
from analysis.srm import check_sample_ratio
from analysis.stats import SampleStats


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


@pytest.mark.parametrize(
    ("in_first", "flagged"),
    [
        (5_155, False),  # p = 0.0019: between 0.001 and 0.003, not flagged
        (5_164, False),  # p = 0.00104: just above the threshold
        (5_165, True),  # p = 0.00097: just below it
    ],
)
def test_the_threshold_is_p_below_0_001(in_first: int, flagged: bool) -> None:
    observed = [in_first, 10_000 - in_first]
    reference = sps.chisquare(observed).pvalue
    assert bool(reference < 0.001) is flagged
    assert check_sample_ratio(observed, [0.5, 0.5]).flagged is flagged
    # and the slot analysis, which every results answer goes through, uses the same threshold
    arms = [
        ArmData("a", observed[0], {"click": 100}, SampleStats(observed[0], 100.0, 100.0), 0.5),
        ArmData("b", observed[1], {"click": 100}, SampleStats(observed[1], 100.0, 100.0), 0.5),
    ]
    analysis = analyze_slot("subject", arms, "a", metrics=["click"], seed=1, draws=1000)
    assert analysis.srm.flagged is flagged
    assert analysis.srm.threshold == 0.001
