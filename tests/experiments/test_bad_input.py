"""Bad input to the service is an :class:`InvalidInput` naming the field, on SQLite and on PostgreSQL
alike, and nothing of the call is written: out-of-range timestamps, NUL characters (which PostgreSQL
cannot store in text or JSON), numbers beyond what sums of rewards can hold, and the field paths of a
single assignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from experiments.errors import InvalidInput
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.store import orphans_table, outcomes_table
from tests.experiments.conftest import make_spec


def rows(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def refused(call: Any, field: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.field == field, info.value
    return info.value


# ---------------------------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    "timestamp",
    [
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1))),  # 0000-12-31T23:00 in UTC
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),  # year 10000 in UTC
    ],
)
def test_an_outcome_timed_beyond_the_utc_calendar_is_refused_and_nothing_is_stored(
    service: ExperimentService, engine: Engine, timestamp: datetime
) -> None:
    service.create(make_spec())
    d = service.assign("spring", "r1", {})
    good = OutcomeEvent("e1", d.decision_id, "click")
    bad = OutcomeEvent("e2", d.decision_id, "click", timestamp=timestamp)
    error = refused(lambda: service.record_outcomes([good, bad]), "events[1].timestamp")
    assert error.reason == f"out of range: {timestamp.isoformat()} is not between years 1 and 9999 in UTC"
    assert rows(engine, outcomes_table) == 0
    # the calendar's own ends, in UTC, are fine
    edges = [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    counts = service.record_outcomes([OutcomeEvent(f"edge{i}", "unknown", "click", timestamp=t)
                                      for i, t in enumerate(edges)])
    assert counts.orphans == 2


@pytest.mark.parametrize("field", ["event_id", "decision_id", "type", "user_agent"])
def test_a_nul_character_in_an_outcome_is_refused_and_nothing_is_stored(
    service: ExperimentService, engine: Engine, field: str
) -> None:
    service.create(make_spec())
    d = service.assign("spring", "r1", {})
    values: dict[str, Any] = {"event_id": "e2", "decision_id": d.decision_id, "type": "click",
                              "user_agent": "Mozilla/5.0"}
    values[field] = values[field][:1] + "\x00" + values[field][1:]
    events = [OutcomeEvent("e1", d.decision_id, "click"), OutcomeEvent(**values)]
    error = refused(lambda: service.record_outcomes(events), f"events[1].{field}")
    assert error.reason == "must not contain a NUL character (\\u0000)"
    assert rows(engine, outcomes_table) == 0 and rows(engine, orphans_table) == 0


def test_an_outcome_value_lies_within_1e12(service: ExperimentService, engine: Engine) -> None:
    """Results sum rewards, their squares and cubes: a value of 1e200 made them infinite."""
    service.create(make_spec(reward={"events": {"click": 1.0}, "value": "purchase"}))
    d = service.assign("spring", "r1", {})
    for value in (1e200, -1e13):
        error = refused(
            lambda v=value: service.record_outcomes([OutcomeEvent("e1", d.decision_id, "purchase", v)]),
            "events[0].value",
        )
        assert error.reason == f"must lie between -1e+12 and 1e+12, got {value!r}"
    assert rows(engine, outcomes_table) == 0
    service.record_outcomes([OutcomeEvent("e1", d.decision_id, "purchase", 1e12),
                             OutcomeEvent("e2", d.decision_id, "purchase", -1e12)])
    assert rows(engine, outcomes_table) == 2
    service.summarize("spring")  # the sums stay finite
