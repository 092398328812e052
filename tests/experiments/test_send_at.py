"""``send_at``: the reward window and the learning delay run from when the email goes out, not from
when it was assigned (a send assigned at 09:00 for 18:00 keeps its whole window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from experiments.errors import InvalidInput
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.store import decisions_table
from tests.experiments.conftest import Clock, make_spec

NINE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the clock fixture's start
SIX_PM = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def click(event_id: str, decision_id: str, at: datetime) -> OutcomeEvent:
    return OutcomeEvent(event_id=event_id, decision_id=decision_id, type="click", timestamp=at)


def test_the_window_runs_from_send_at(service: ExperimentService, clock: Clock) -> None:
    service.create(make_spec(key="w", reward={"events": {"click": 1.0}, "window_hours": 72}))
    later, now = service.assign_batch("w", [("a", {}), ("b", {})], send_at=[SIX_PM, None])
    # 70 h after the send is 79 h after the assignment: inside the window of the one sent at 18:00 only
    at = SIX_PM + timedelta(hours=70)
    clock.now = at
    service.record_outcomes([click("e1", later.decision_id, at), click("e2", now.decision_id, at)])
    summary = service.summarize("w")
    assert summary.excluded_late_events == 1
    assert sum(a.event_counts.get("click", 0) for a in summary.arms if a.slot == "subject") == 1
    # past the window of the send too
    service.record_outcomes([click("e3", later.decision_id, SIX_PM + timedelta(hours=73))])
    assert service.summarize("w").excluded_late_events == 2


def test_an_event_between_assignment_and_send_counts(service: ExperimentService) -> None:
    service.create(make_spec(key="w", reward={"events": {"click": 1.0}, "window_hours": 72}))
    d = service.assign("w", "a", {}, send_at=SIX_PM)
    service.record_outcomes([click("e1", d.decision_id, NINE + timedelta(hours=2))])  # sent early
    assert service.summarize("w").excluded_late_events == 0


def test_learning_waits_for_the_delay_after_the_send(service: ExperimentService, clock: Clock) -> None:
    spec = make_spec(
        key="b", slots={"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}},
        design={"type": "bandit", "policy": "thompson", "update": {"delay_hours": 2}},
        reward={"events": {"click": 1.0}},
    )
    service.create(spec)
    service.assign_batch("b", [(f"s{i}", {}) for i in range(10)], send_at=SIX_PM)
    service.assign_batch("b", [(f"n{i}", {}) for i in range(5)])  # sent at once
    clock.now = NINE + timedelta(hours=3)
    service.learn("b")
    assert service.learning("b").learned_decisions == 5  # those sent at 09:00 only
    clock.now = SIX_PM + timedelta(hours=1)
    service.learn("b")
    assert service.learning("b").learned_decisions == 5
    clock.now = SIX_PM + timedelta(hours=2, minutes=1)
    service.learn("b")
    assert service.learning("b").learned_decisions == 15


def test_send_at_is_stored_as_utc(service: ExperimentService, engine: Engine) -> None:
    service.create(make_spec(key="w"))
    paris = timezone(timedelta(hours=1))
    times = [datetime(2026, 3, 2, 19, 0, tzinfo=paris), datetime(2026, 3, 2, 18, 0), None]
    service.assign_batch("w", [("a", {}), ("b", {}), ("c", {})], send_at=times)
    with engine.connect() as conn:
        rows = dict(conn.execute(select(decisions_table.c.recipient_id, decisions_table.c.send_at)).all())
    assert rows == {"a": datetime(2026, 3, 2, 18, 0), "b": datetime(2026, 3, 2, 18, 0), "c": None}


@pytest.mark.parametrize(
    ("send_at", "field"),
    [
        ("2026-03-02T18:00:00Z", "send_at"),
        ([SIX_PM], "send_at"),  # one time for three recipients
        ([SIX_PM, "tomorrow", None], "recipients[1].send_at"),
        (datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "send_at"),
    ],
)
def test_a_bad_send_at_is_invalid_input_and_logs_nothing(
    service: ExperimentService, engine: Engine, send_at: object, field: str
) -> None:
    service.create(make_spec(key="w"))
    with pytest.raises(InvalidInput) as caught:
        service.assign_batch("w", [("a", {}), ("b", {}), ("c", {})], send_at=send_at)
    assert caught.value.field == field
    with engine.connect() as conn:
        assert conn.execute(select(decisions_table.c.id)).first() is None
