"""The SQL behind results by segment, CUPED and the skewness note, against numpy on the raw rows.

Every statistic the store aggregates (counts, sums of the reward, its squares and cubes, event counts,
the covariate sums) is recomputed here from the recipients, outcomes and reward rule the test itself
made, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from experiments.errors import InvalidInput
from experiments.limits import MAX_SEGMENTS
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from tests.experiments.conftest import Clock, make_spec

N = 900


def _context(i: int, rng: np.random.Generator) -> dict[str, Any]:
    context: dict[str, Any] = {"consent": True}
    u = rng.random()
    if u < 0.7:
        context["clicks_30d"] = int(rng.poisson(3))
    elif u < 0.85:
        context["clicks_30d"] = float(rng.uniform(0, 10))
    elif u < 0.9:
        context["clicks_30d"] = "12"  # text: not a number
    elif u < 0.93:
        context["clicks_30d"] = None
    # else: absent
    if rng.random() < 0.9:
        context["country"] = str(rng.choice(["CA", "US", "FR"]))
    context["vip"] = bool(rng.random() < 0.3)
    context["tier"] = int(rng.integers(1, 3))
    if i % 50 == 0:
        context["consent"] = False  # nothing stored: a fallback decision, never in the arms
    return context


@pytest.fixture
def logged(service: ExperimentService, clock: Clock) -> dict[str, Any]:
    """A multivariate send with a 10% holdout; rewards 1 x click + 5 x conversion + revenue values."""
    service.create(make_spec(record=["clicks_30d", "country", "vip", "tier"], holdout=0.1))
    rng = np.random.default_rng(21)
    recipients = [(f"r{i}", _context(i, rng)) for i in range(N)]
    decisions = service.assign_batch("spring", recipients)
    events, reward = [], {}
    for i, (d, (_, ctx)) in enumerate(zip(decisions, recipients, strict=True)):
        x = ctx.get("clicks_30d")
        base = x if isinstance(x, int | float) and not isinstance(x, bool) else 3.0
        r = 0.0
        clicked = rng.random() < min(0.05 + 0.05 * base, 0.9)
        if clicked:
            events += [OutcomeEvent(f"c{i}-{k}", d.decision_id, "click", None, clock.now) for k in range(2)]
            r += 1.0
        if clicked and rng.random() < 0.3:
            events.append(OutcomeEvent(f"v{i}", d.decision_id, "conversion", None, clock.now))
            value = float(np.round(rng.lognormal(3, 1.5), 2))  # skewed revenue
            events.append(OutcomeEvent(f"m{i}", d.decision_id, "revenue", value, clock.now))
            r += 5.0 + value
        reward[d.decision_id] = (r, clicked)
    service.record_outcomes(events)
    return {"decisions": decisions, "contexts": [c for _, c in recipients], "reward": reward}


def _rows(logged: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per learnable decision: its variants, context, reward and click flag."""
    out = []
    for d, ctx in zip(logged["decisions"], logged["contexts"], strict=True):
        if d.reason not in ("assigned", "policy"):
            continue
        r, clicked = logged["reward"][d.decision_id]
        out.append({"variants": {s: v.id for s, v in d.variants.items()}, "context": ctx, "y": r,
                    "click": clicked})
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_arm_sums_of_cubes_match_numpy(service: ExperimentService, logged: dict[str, Any]) -> None:
    rows = _rows(logged)
    summary = service.summarize("spring")
    assert summary.holdout is not None and summary.holdout.decisions > 0
    for arm in summary.arms:
        y = np.array([r["y"] for r in rows if r["variants"][arm.slot] == arm.variant])
        assert arm.decisions == y.size
        assert arm.reward.sum == pytest.approx(y.sum(), rel=1e-12)
        assert arm.reward.sum_squares == pytest.approx(np.sum(y**2), rel=1e-12)
        assert arm.reward.sum_cubes == pytest.approx(np.sum(y**3), rel=1e-12)
    for combo in summary.combinations:
        y = np.array([r["y"] for r in rows if r["variants"] == combo.variants])
        assert combo.reward.sum_cubes == pytest.approx(np.sum(y**3), rel=1e-12)


@pytest.mark.parametrize("attribute", ["country", "vip", "tier"])
def test_segment_statistics_match_numpy(
    service: ExperimentService, logged: dict[str, Any], attribute: str
) -> None:
    rows = _rows(logged)
    seg = service.summarize_segments("spring", attribute)
    labels = {_label(r["context"].get(attribute)) for r in rows}
    assert set(seg.segments) == labels - {None}
    assert seg.missing == sum(_label(r["context"].get(attribute)) is None for r in rows)
    assert seg.decisions == len(rows)
    for label, summary in seg.segments.items():
        assert summary.holdout is None and summary.daily == []
        for arm in summary.arms:
            mine = [r for r in rows if r["variants"][arm.slot] == arm.variant
                    and _label(r["context"].get(attribute)) == label]
            y = np.array([r["y"] for r in mine])
            assert arm.decisions == len(mine)
            assert arm.reward.sum == pytest.approx(y.sum(), rel=1e-12, abs=1e-12)
            assert arm.reward.sum_squares == pytest.approx(np.sum(y**2), rel=1e-12, abs=1e-12)
            assert arm.reward.sum_cubes == pytest.approx(np.sum(y**3), rel=1e-12, abs=1e-12)
            assert arm.event_counts["click"] == sum(r["click"] for r in mine)
            assert arm.intended_share == pytest.approx(0.5)


def test_covariate_statistics_match_numpy(service: ExperimentService, logged: dict[str, Any]) -> None:
    rows = _rows(logged)
    cov = service.summarize_covariate("spring", "clicks_30d")
    assert cov.attribute == "clicks_30d"
    assert len(cov.arms) == 4
    for arm in cov.arms:
        mine = [r for r in rows if r["variants"][arm.slot] == arm.variant]
        seen = [r for r in mine if _number(r["context"].get("clicks_30d")) is not None]
        x = np.array([_number(r["context"]["clicks_30d"]) for r in seen])
        y = np.array([r["y"] for r in seen])
        assert (arm.decisions, arm.observed, arm.missing) == (len(mine), len(seen), len(mine) - len(seen))
        assert 0 < arm.missing < arm.decisions
        xy = arm.xy
        for got, want in [(xy.sum_x, x.sum()), (xy.sum_x_squares, x @ x), (xy.sum_y, y.sum()),
                          (xy.sum_y_squares, y @ y), (xy.sum_xy, x @ y)]:
            assert got == pytest.approx(want, rel=1e-12)


def test_attributes_that_cannot_be_grouped_by(service: ExperimentService, logged: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="not stored with the decisions") as info:
        service.summarize_segments("spring", "device")
    assert info.value.field == "segment"
    with pytest.raises(InvalidInput, match="not an attribute name") as info:
        service.summarize_covariate("spring", 'a"b')
    assert info.value.field == "covariate"
    with pytest.raises(InvalidInput, match=f"segments need an attribute with at most {MAX_SEGMENTS}"):
        service.summarize_segments("spring", "clicks_30d")  # over 100 distinct numbers
