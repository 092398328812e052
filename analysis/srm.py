"""Sample ratio mismatch: are the arms' sizes what the design intended?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from analysis.errors import AnalysisInputError

#: p-value below which a mismatch is flagged: strict, because the check runs on every look.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """Chi-square goodness of fit of observed arm sizes against the intended shares."""

    p_value: float
    flagged: bool
    observed: list[int]
    expected: list[float]
    statistic: float
    df: int
    threshold: float
    message: str
    applicable: bool = True


def sample_ratio_not_applicable(observed: Sequence[int], threshold: float = SRM_THRESHOLD) -> SrmResult:
    """The result for an adaptive allocation (a bandit): its split is meant to move with the data, so
    there is no intended split to test against. ``p_value`` is 1 and nothing is flagged."""
    return SrmResult(
        p_value=1.0, flagged=False, observed=[int(v) for v in observed], expected=[], statistic=0.0, df=0,
        threshold=threshold, applicable=False,
        message="sample ratio check not applicable: the allocation is adaptive (a bandit moves its split)",
    )


def check_sample_ratio(
    observed: Sequence[int], intended_shares: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Pearson chi-square test of arm sizes against intended shares (normalised to sum to one).

    .. math:: X^2 = \\sum_i (O_i - N s_i)^2 / (N s_i), \\quad df = k - 1

    Shares need not sum to one (a holdout may take the rest); only their ratios matter.
    """
    if len(observed) != len(intended_shares):
        raise AnalysisInputError(
            f"intended_shares: {len(intended_shares)} shares for {len(observed)} arms"
        )
    if len(observed) < 2:
        raise AnalysisInputError(f"observed: need at least 2 arms, got {len(observed)}")
    if not 0 < threshold < 1:
        raise AnalysisInputError(f"threshold: must be between 0 and 1, got {threshold!r}")
    obs = np.asarray(observed, dtype=float)
    shares = np.asarray(intended_shares, dtype=float)
    if np.any(obs < 0):
        raise AnalysisInputError("observed: arm sizes must be >= 0")
    if np.any(~np.isfinite(shares)) or np.any(shares <= 0):
        raise AnalysisInputError("intended_shares: every share must be a positive number")
    total = obs.sum()
    expected = total * shares / shares.sum()
    df = len(obs) - 1
    if total == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = float(np.sum((obs - expected) ** 2 / expected))
        p_value = float(special.chdtrc(df, statistic))  # the chi-square upper tail
    flagged = p_value < threshold
    if flagged:
        message = (
            f"SAMPLE RATIO MISMATCH (p = {p_value:.2g} < {threshold}): the arms' sizes differ from the "
            "intended split; assignment or logging is broken and the results below are not trustworthy"
        )
    else:
        message = f"no sample ratio mismatch (p = {p_value:.3g})"
    return SrmResult(
        p_value=p_value, flagged=flagged, observed=[int(round(v)) for v in obs],
        expected=[float(e) for e in expected], statistic=statistic, df=df, threshold=threshold,
        message=message,
    )
