"""Values on any event: ``reward.value_types`` says which event types carry value; results count those and
warn, per type, about values posted on types that carry none (once silently ignored)."""

from __future__ import annotations

import math
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from api.results import summary_warnings
from experiments.errors import SpecError
from experiments.models import OutcomeEvent
from experiments.rewards import decision_reward
from experiments.service import ExperimentService
from experiments.store import decisions_table as D
from experiments.store import orphans_table, to_db_time
from experiments.store import outcomes_table as O
from tests.experiments.conftest import Clock, make_spec

Events = list[tuple[str, float | None]]


def post_events(service: ExperimentService, key: str, n: int = 40) -> list[tuple[str, Events]]:
    """Assign ``n`` recipients and post, per decision, a click, a conversion with its order value and
    for every third one a revenue event; the events of each decision, by its id."""
    decisions = service.assign_batch(key, [(f"r{i}", {}) for i in range(n)])
    events, posted = [], []
    for i, d in enumerate(decisions):
        mine: Events = [("click", None), ("conversion", 10.0 + i)]
        if i % 3 == 0:
            mine.append(("revenue", 2.5))
        posted.append((d.decision_id, mine))
        events += [OutcomeEvent(f"{d.decision_id}-{k}", d.decision_id, kind, value)
                   for k, (kind, value) in enumerate(mine)]
    service.record_outcomes(events)
    return posted


def total_reward(service: ExperimentService, key: str) -> float:
    summary = service.summarize(key)
    return math.fsum(c.reward.sum for c in summary.combinations)


def test_values_on_types_that_carry_none_are_left_out_and_warned_about(service: ExperimentService) -> None:
    spec = make_spec(key="v", reward={"events": {"click": 1.0}, "value": "revenue"})
    service.create(spec)
    posted = post_events(service, "v")
    expected = math.fsum(decision_reward(spec.reward, events) for _, events in posted)
    assert total_reward(service, "v") == pytest.approx(expected)
    assert expected == pytest.approx(40 + 14 * 2.5)  # clicks and revenue only
    summary = service.summarize("v")
    assert summary.uncounted_value_events == {"conversion": 40}
    (warning,) = summary_warnings(summary)
    assert "40 events" in warning and "conversion: 40" in warning and "reward.value_types" in warning


def test_value_types_count_the_values_of_every_listed_type(service: ExperimentService) -> None:
    reward = {"events": {"click": 1.0}, "value": "revenue", "value_types": ["revenue", "conversion"]}
    spec = make_spec(key="v", reward=reward)
    service.create(spec)
    posted = post_events(service, "v")
    by_hand = math.fsum(1.0 + sum(v for _, v in events if v is not None) for _, events in posted)
    assert total_reward(service, "v") == pytest.approx(by_hand)
    assert math.fsum(decision_reward(spec.reward, events) for _, events in posted) == pytest.approx(by_hand)
    summary = service.summarize("v")
    assert summary.uncounted_value_events == {}
    assert summary_warnings(summary) == []


def test_without_a_value_every_posted_value_is_warned_about(service: ExperimentService) -> None:
    service.create(make_spec(key="v", reward={"events": {"click": 1.0, "conversion": 5.0}}))
    post_events(service, "v", n=9)
    summary = service.summarize("v")
    assert summary.uncounted_value_events == {"conversion": 9, "revenue": 3}
    assert "counts no values" in summary_warnings(summary)[0]


def test_value_types_need_a_value_and_old_specs_keep_their_text() -> None:
    with pytest.raises(SpecError) as caught:
        make_spec(reward={"events": {"click": 1.0}, "value_types": ["conversion"]})
    assert "value_types" in str(caught.value)
    assert "value_types" not in make_spec().canonical_json()  # a spec saved before stays one version
    assert make_spec().reward.value_event_types == ["revenue"]


def test_outcome_rows_are_stored_as_posted(service: ExperimentService, clock: Clock) -> None:
    # PostgreSQL sends the rows as binary arrays: times to the microsecond, values and their absence,
    # text of any kind and the flags come back as they were given
    service.create(make_spec())
    decided = service.assign_batch("spring", [("r0", {}), ("r1", {})])
    at = to_db_time(clock.now) + timedelta(minutes=3, microseconds=123457)
    events = [
        OutcomeEvent("ü-日本-\U0001f600 'q' \"d\" \\ {1,2}", decided[0].decision_id, "conversion", 0.1 + 0.2,
                     at.replace(tzinfo=UTC)),
        OutcomeEvent("e2", decided[1].decision_id, "click", None, None, machine=True),
        OutcomeEvent("e3", decided[1].decision_id, "revenue", -1e-300,
                     at.replace(tzinfo=UTC) + timedelta(days=9)),
        OutcomeEvent("orphan, {x}", "no-such-decision", "click", 2.0, None),
    ]
    service.record_outcomes(events)
    columns = ["event_id", "decision_id", "type", "value", "time", "received_at", "machine", "attributed"]
    with service.engine.connect() as conn:
        stored = {r.event_id: r for r in conn.execute(select(*[O.c[c] for c in columns], O.c.day, O.c.arm))}
        arm = conn.execute(select(D.c.arm).where(D.c.id == decided[1].decision_id)).scalar_one()
        orphans = conn.execute(select(*[orphans_table.c[c] for c in columns[:7]])).all()
    now = to_db_time(clock.now)
    assert tuple(stored[events[0].event_id])[:8] == (
        events[0].event_id, decided[0].decision_id, "conversion", 0.1 + 0.2, at, now, False, True)
    assert tuple(stored["e2"])[3:8] == (None, now, now, True, True)
    assert stored["e3"].value == -1e-300 and stored["e3"].attributed is False
    assert stored["e3"].arm == stored["e2"].arm == arm and stored["e3"].day == now.date()
    assert [tuple(r) for r in orphans] == [("orphan, {x}", "no-such-decision", "click", 2.0, now, now, False)]
