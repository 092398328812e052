"""Cumulative daily rates and Wilson intervals against numpy and statsmodels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.errors import AnalysisInputError
from analysis.timeseries import DailyPoint, cumulative_rates, wilson_interval


def test_wilson_matches_statsmodels() -> None:
    for x, n in [(0, 20), (3, 20), (20, 20), (412, 5000)]:
        assert wilson_interval(x, n, 0.05) == pytest.approx(proportion_confint(x, n, 0.05, method="wilson"),
                                                            abs=1e-12)


def test_cumulative_rates_match_numpy() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(500, 900, (2, 7))
    x = rng.binomial(n, 0.1)
    start = date(2026, 3, 1)
    daily = [DailyPoint(start + timedelta(d), "subject", v, int(n[k, d]), {"click": int(x[k, d])})
             for d in range(7) for k, v in enumerate(("plain", "urgent"))]
    points = cumulative_rates(daily, "click")
    urgent = [p for p in points if p.variant == "urgent"]
    assert [p.day for p in urgent] == [start + timedelta(d) for d in range(7)]
    assert [p.rate for p in urgent] == pytest.approx(np.cumsum(x[1]) / np.cumsum(n[1]))
    assert urgent[-1].ci == pytest.approx(proportion_confint(x[1].sum(), n[1].sum(), method="wilson"))


def test_bad_daily_counts() -> None:
    with pytest.raises(AnalysisInputError, match=r"daily\[0\]"):
        cumulative_rates([DailyPoint(date(2026, 1, 1), "s", "a", 5, {"click": 9})], "click")
