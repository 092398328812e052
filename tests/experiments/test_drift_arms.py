"""A fixed split's arms watched on their own: each arm's daily reward against its earlier days, seeded."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from analysis.drift import calibrate_cusum_threshold
from experiments.drift_block import DriftAlertCache, monitor_log
from experiments.drift_reader import DriftCell, DriftLog

START = date(2026, 3, 2)
DAYS = 14
SENDS = 300  # per arm and day
RATES = np.array([0.05, 0.10, 0.20])


def fixed_split_log(rng: np.random.Generator, rates_on_day, design: str = "ab") -> DriftLog:
    """:data:`DAYS` daily sends of :data:`SENDS` per arm, clicks drawn at ``rates_on_day(day)``, read
    once every window has closed."""
    cells = []
    for day in range(DAYS):
        clicks = rng.binomial(SENDS, rates_on_day(day))
        cells += [DriftCell(START + timedelta(days=day), None, None, arm, SENDS, float(c), float(c))
                  for arm, c in enumerate(clicks)]
    variants = tuple({"subject": name} for name in ("plain", "urgent", "emoji"))
    return DriftLog("k", design, 24.0, datetime(2026, 4, 1), tuple(cells), variants)


def test_each_arm_is_judged_against_its_own_earlier_days():
    log = fixed_split_log(np.random.default_rng(0), lambda day: RATES)
    verdict = monitor_log(log)
    assert [a.arm for a in verdict.arms] == [0, 1, 2]
    assert verdict.arms[1].variants == {"subject": "urgent"}
    arm = verdict.arms[2].report
    assert [p.day for p in arm.points] == list(range(1, DAYS))
    # day 3 of the emoji arm, by hand: Beta(1 + clicks, 1 + misses) of days 0-2, Beta-Binomial moments
    clicks = [c.reward_sum for c in log.cells if c.arm == 2]
    a, b = 1 + sum(clicks[:3]), 1 + 3 * SENDS - sum(clicks[:3])
    mean = a / (a + b)
    variance = SENDS * mean * (1 - mean) + SENDS * (SENDS - 1) * a * b / ((a + b) ** 2 * (a + b + 1))
    point = arm.points[2]
    assert point.predicted == pytest.approx(SENDS * mean)
    assert point.observed == clicks[3] and point.decisions == SENDS
    assert point.residual == pytest.approx((clicks[3] - SENDS * mean) / np.sqrt(variance))
    # the false alarm rate is shared: half to the total, half split among the three arms
    assert arm.false_alarm_rate == pytest.approx(0.05 / 2 / 3)
    assert arm.threshold == pytest.approx(calibrate_cusum_threshold(90, 0.05 / 6))
    assert verdict.total.false_alarm_rate == pytest.approx(0.025)
    block = verdict.to_dict()
    assert block["false_alarm_rate"] == 0.05 and len(block["arms"]) == 3
    assert block["arms"][2]["arm"] == 2 and block["arms"][2]["points"][2]["residual"] == point.residual


def test_adaptive_designs_watch_no_arm_on_its_own():
    log = fixed_split_log(np.random.default_rng(0), lambda day: RATES, design="bandit")
    assert monitor_log(log).arms == ()


def test_an_arm_whose_rate_changes_raises_its_alert():
    # urgent falls from 10% to 4% on day 7; plain and emoji stay: 200 seeds
    def rates(day):
        return RATES if day < 7 else np.array([0.05, 0.04, 0.20])

    first, total_first, others = [], [], 0
    for seed in range(200):
        verdict = monitor_log(fixed_split_log(np.random.default_rng(seed), rates))
        first.append(verdict.arms[1].report.first_alarm_day)
        total_first.append(verdict.total.first_alarm_day)
        others += verdict.arms[0].report.alert or verdict.arms[2].report.alert
    first_day = np.array([np.inf if d is None else d for d in first])
    total_day = np.array([np.inf if d is None else d for d in total_first])
    # never before the change; by day 10 in most seeds (measured 90%), by the last day in every one
    assert np.all(first_day >= 7)
    assert np.mean(first_day <= 10) >= 0.85
    assert np.all(first_day <= DAYS - 1)
    # the day's total, diluted by the arms that did not change, sees it later or not at all
    assert np.mean(total_day <= DAYS - 1) < np.mean(first_day <= 10)
    # the stationary arms alarm no more often than their shares allow (2 x 0.05 / 6 of 200: about 3)
    assert others <= 8


def test_stationary_arms_keep_the_false_alarm_rate_over_200_seeds():
    alerts = arm_alerts = 0
    for seed in range(200):
        verdict = monitor_log(fixed_split_log(np.random.default_rng(1000 + seed), lambda day: RATES))
        alerts += verdict.alert
        arm_alerts += any(a.report.alert for a in verdict.arms)
    # at most 5% of the 200 runs raise any alert of the block (calibrated for 90 days; 14 judged here)
    assert alerts <= 10
    assert arm_alerts <= alerts


class _Catalog:
    """A service double: experiments with a status, each read of a log counted; ``drifting`` keys alarm."""

    def __init__(self) -> None:
        self.status = {"a": "running", "b": "running"}
        self.drifting: set[str] = set()
        self.reads: list[str] = []

    def list(self):
        return [SimpleNamespace(key=k, status=s) for k, s in self.status.items()]

    def read_drift(self, key, *, include_machine=False):
        self.reads.append(key)
        rates = (lambda day: RATES if day < 7 else np.array([0.05, 0.01, 0.20])) if key in self.drifting \
            else (lambda day: RATES)
        return fixed_split_log(np.random.default_rng(0), rates)


def test_the_alert_cache_reads_each_log_once_per_ttl():
    catalog, cache, t0 = _Catalog(), DriftAlertCache(ttl_seconds=60), datetime(2026, 4, 1, 12)
    assert cache.alerts(catalog, t0) == {"a": False, "b": False}
    catalog.drifting.add("b")
    assert cache.alerts(catalog, t0 + timedelta(seconds=59)) == {"a": False, "b": False}  # held
    assert catalog.reads == ["a", "b"]
    assert cache.alerts(catalog, t0 + timedelta(seconds=60)) == {"a": False, "b": True}  # read again
    assert catalog.reads == ["a", "b", "a", "b"]
    catalog.status["a"] = "archived"
    catalog.status["c"] = "running"
    assert cache.alerts(catalog, t0 + timedelta(seconds=61)) == {"b": True, "c": False}  # c is new
    assert catalog.reads[-1:] == ["c"]
    assert cache.alerts(catalog, t0) == {"b": True, "c": False} and catalog.reads[-2:] == ["b", "c"]
    uncached = DriftAlertCache(ttl_seconds=0)
    uncached.alerts(catalog, t0)
    uncached.alerts(catalog, t0)
    assert catalog.reads[-4:] == ["b", "c", "b", "c"]


def _direct_known(cells: list[DriftCell], day: date, version: int | None, adaptive: bool,
                  n_arms: int) -> np.ndarray:
    """The totals a group's prediction knows, summed directly from the cells (the reference)."""
    out = np.zeros((3, n_arms))
    for c in cells:
        learned = c.learned_version is not None and version is not None and c.learned_version <= version
        if (learned if adaptive else c.day < day):
            out[:, c.arm] += (c.decisions, c.reward_sum, c.reward_sum_squares)
    return out


@pytest.mark.parametrize("design", ["ab", "bandit"])
def test_each_judged_group_knows_exactly_the_cells_before_it(design: str) -> None:
    from experiments.drift_block import _arm_totals, _predict, drift_days

    rng = np.random.default_rng(7)
    cells = []
    for d in range(12):
        for pv in ([None] if design == "ab" else [None, d + 1, d + 2]):
            for lv in [None, *range(max(1, d - 2), d + 2)]:
                for arm in range(3):
                    n = int(rng.integers(1, 40))
                    s = float(rng.uniform(0, n))
                    cells.append(DriftCell(date(2026, 1, 1) + timedelta(days=d), pv, lv, arm, n, s, s * 1.5))
    cells.sort(key=lambda x: (x.day, x.policy_version or 0, x.learned_version or 0, x.arm))
    log = DriftLog("k", design, 24.0, datetime(2026, 3, 1), tuple(cells))
    days = drift_days(log)
    assert days
    for judged in days:
        day = date(2026, 1, 1) + timedelta(days=judged.day)
        version = judged.policy_version if design == "bandit" else None
        group = [c for c in cells if c.day == day and (version is None or c.policy_version == version)]
        sends = _arm_totals(group, 3)[0]
        expected = _predict(_direct_known(cells, day, version, design == "bandit", 3), sends, False)
        assert expected is not None
        assert judged.predicted == pytest.approx(expected[0], rel=1e-12)
        assert judged.variance == pytest.approx(expected[1], rel=1e-12)
