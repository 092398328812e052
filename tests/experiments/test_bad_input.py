"""Bad input to the service is an :class:`InvalidInput` naming the field, on SQLite and on PostgreSQL
alike, and nothing of the call is written: out-of-range timestamps, NUL characters (which PostgreSQL
cannot store in text or JSON), numbers beyond what sums of rewards can hold, and the field paths of a
single assignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from experiments.errors import AssignmentError, InvalidInput
from experiments.limits import MAX_EVENT_TYPE_LENGTH
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.store import (
    decisions_table,
    experiments_table,
    orphans_table,
    outcomes_table,
    versions_table,
)
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


def test_an_outcome_type_is_held_to_the_length_its_column_and_the_api_allow(
    service: ExperimentService, engine: Engine
) -> None:
    """The service accepted a ``type`` of 128 characters while the column and the API model take 64:
    on PostgreSQL the insert failed after the checks passed. One limit now, checked before any write."""
    service.create(make_spec())
    d = service.assign("spring", "r1", {})
    long_type = "c" * (MAX_EVENT_TYPE_LENGTH + 1)
    error = refused(
        lambda: service.record_outcomes([OutcomeEvent("e1", d.decision_id, "click"),
                                         OutcomeEvent("e2", d.decision_id, long_type)]),
        "events[1].type",
    )
    longest = MAX_EVENT_TYPE_LENGTH
    assert error.reason == f"must be a non-empty string of at most {longest} chars, got {long_type!r}"
    assert rows(engine, outcomes_table) == 0 and rows(engine, orphans_table) == 0
    counts = service.record_outcomes([OutcomeEvent("e1", d.decision_id, "c" * MAX_EVENT_TYPE_LENGTH),
                                      OutcomeEvent("e2", "unknown", "c" * MAX_EVENT_TYPE_LENGTH)])
    assert (counts.accepted, counts.orphans) == (1, 1)


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


# -------------------------------------------------------------------------------------------- assignment

NAN, INF = float("nan"), float("inf")
NUL = "must not contain a NUL character (\\u0000)"


@pytest.mark.parametrize(
    ("recipient_id", "context", "field", "reason"),
    [
        ("", {}, "recipient_id", "must be a non-empty string of at most 128 chars"),
        ("r\x00", {}, "recipient_id", NUL),
        ("r1", {"consent": NAN}, "context.consent", "must be a JSON value (finite numbers), got nan"),
        ("r1", {"device": [1, [INF]]}, "context.device", "must be a JSON value (finite numbers), got inf"),
        ("r1", {"first_name": "A\x00na"}, "context.first_name", NUL),
        ("r1", {"device": {"a\x00": 1}}, "context.device", "a key " + NUL),
    ],
)
def test_one_recipient_is_refused_at_its_own_fields_and_nothing_is_logged(
    service: ExperimentService, engine: Engine, recipient_id: str, context: dict[str, Any], field: str,
    reason: str,
) -> None:
    """``assign`` names one recipient: its problems are at ``recipient_id`` and ``context.<name>``
    (they were reported at ``recipients[0]...``, a list the call does not have)."""
    service.create(make_spec(design={"type": "multivariate", "context": ["device"]}))
    error = refused(lambda: service.assign("spring", recipient_id, context), field)
    assert error.reason == reason
    assert rows(engine, decisions_table) == 0


@pytest.mark.parametrize(
    ("recipients", "field"),
    [
        ([("a", {}), ("b\x00", {})], "recipients[1].recipient_id"),
        ([("a", {"first_name": "x\x00"}), ("b", {})], "recipients[0].context.first_name"),
        ([("a", {}), ("b", {"device": NAN})], "recipients[1].context.device"),
    ],
)
def test_a_batch_is_refused_at_the_recipient_at_fault_and_nothing_is_logged(
    service: ExperimentService, engine: Engine, recipients: list[tuple[str, dict[str, Any]]], field: str
) -> None:
    service.create(make_spec(design={"type": "multivariate", "context": ["device"]}))
    refused(lambda: service.assign_batch("spring", recipients), field)
    assert rows(engine, decisions_table) == 0


def test_a_policy_never_sees_a_value_that_cannot_be_stored(
    service: ExperimentService, engine: Engine
) -> None:
    """A contextual policy's attribute that is not finite is the caller's error at its path (the policy
    refused it itself before, a 500)."""
    service.create(make_spec(design={"type": "contextual", "policy": "linear_ts", "context": ["age"]},
                             reward={"events": {"click": 1.0}}))
    refused(lambda: service.assign("spring", "r1", {"age": INF}), "context.age")
    refused(lambda: service.assign_batch("spring", [("r1", {"age": 3}), ("r2", {"age": NAN})]),
            "recipients[1].context.age")
    assert rows(engine, decisions_table) == 0
    assert service.assign("spring", "r1", {"age": 3}).propensity > 0


def test_a_propensity_outside_0_1_is_an_error_of_its_own_call_and_logs_nothing(
    service: ExperimentService, engine: Engine, clock: Any
) -> None:
    """A spec stored before its numbers were checked (a variant weight of Infinity) gave NaN
    propensities: the insert failed inside the transaction it shared with other calls (SQLite's group
    commit), failing them too. The propensities are checked before the rows are handed on."""
    service.create(make_spec())
    service.create(make_spec(key="other"))
    with engine.begin() as conn:
        for table in (versions_table, experiments_table):
            text = conn.execute(select(table.c.spec).where(table.c.key == "spring")).scalar_one()
            stored = text.replace('"weight":1.0', '"weight":Infinity')
            conn.execute(update(table).where(table.c.key == "spring").values(spec=stored))
    fresh = ExperimentService(engine, clock=clock, seed=7)  # reads the stored spec again
    expected = (r"experiment 'spring': the design gave 1 recipient a propensity outside \[0, 1\] "
                r"\(such as nan\); nothing was logged")
    with pytest.raises(AssignmentError, match=expected):
        fresh.assign("spring", "r1", {})
    assert rows(engine, decisions_table) == 0
    assert fresh.assign("other", "r1", {}).propensity == 0.25
    assert rows(engine, decisions_table) == 1
