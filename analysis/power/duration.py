"""How long a test runs: from a total sample size, the daily send volume and the share in the test."""

from __future__ import annotations

import math

from analysis.power.inputs import check_count, check_share


def solve_duration(total_sample: int, daily: int, traffic_share: float = 1.0) -> int:
    """Days needed to send ``total_sample`` test emails.

    .. math:: \\text{days} = \\left\\lceil \\frac{\\text{total\\_sample}}{\\text{daily} \\cdot
        \\text{traffic\\_share}} \\right\\rceil

    Parameters
    ----------
    total_sample : int
        Recipients the test needs across all arms.
    daily : int
        Emails sent per day (the whole volume, before the traffic share).
    traffic_share : float, default 1.0
        Share of the daily volume that enters the test, in (0, 1].

    Returns
    -------
    int
        Whole days, rounded up; at least 1.

    Examples
    --------
    >>> solve_duration(30_000, daily=10_000, traffic_share=0.5)
    6
    """
    total_sample = check_count("total_sample", total_sample, 1)
    daily = check_count("daily", daily, 1)
    traffic_share = check_share("traffic_share", traffic_share)
    per_day = daily * traffic_share
    return max(1, int(math.ceil(round(total_sample / per_day, 9))))
