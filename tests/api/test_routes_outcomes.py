"""``/v1/outcomes``: one event or a bulk list, idempotent by event id."""

from __future__ import annotations

import pytest

from tests.api.conftest import SEND


@pytest.fixture
def decision_ids(client, experiment) -> list[str]:
    recipients = [{"recipient_id": f"o-{i}"} for i in range(5)]
    response = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                           headers=SEND)
    return [d["decision_id"] for d in response.json()["decisions"]]


def test_bulk_outcomes_are_idempotent_by_event_id(client, decision_ids):
    events = [{"event_id": f"e-{i}", "decision_id": d, "type": "click"} for i, d in enumerate(decision_ids)]
    first = client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 5, "duplicates": 0, "orphans": 0, "erased": 0}
    extra = {"event_id": "e-new", "decision_id": decision_ids[0], "type": "conversion", "value": 12.5,
             "timestamp": "2030-01-01T00:00:00Z"}
    again = client.post("/v1/outcomes", json={"events": events + [extra]}, headers=SEND)
    assert again.json() == {"accepted": 1, "duplicates": 5, "orphans": 0, "erased": 0}


def test_one_event_without_the_list(client, decision_ids):
    event = {"event_id": "single", "decision_id": decision_ids[0], "type": "click"}
    assert client.post("/v1/outcomes", json=event, headers=SEND).json()["accepted"] == 1
    assert client.post("/v1/outcomes", json=event, headers=SEND).json()["duplicates"] == 1


def test_events_for_unknown_decisions_are_orphans(client, decision_ids):
    events = [{"event_id": "o-1", "decision_id": "no-such-decision", "type": "click"}]
    assert client.post("/v1/outcomes", json={"events": events}, headers=SEND).json() == {
        "accepted": 0, "duplicates": 0, "orphans": 1, "erased": 0}


@pytest.mark.parametrize(
    ("event", "loc"),
    [
        ({"decision_id": "d", "type": "click"}, ["body", "events", 0, "event_id"]),
        ({"event_id": "e", "decision_id": "d", "type": ""}, ["body", "events", 0, "type"]),
        ({"event_id": "e", "decision_id": "d", "type": "click", "value": "lots"},
         ["body", "events", 0, "value"]),
        ({"event_id": "e", "decision_id": "d", "type": "click", "timestamp": "yesterday"},
         ["body", "events", 0, "timestamp"]),
        # valid ISO times whose UTC time falls outside years 1 to 9999 (an OverflowError, a 500, before)
        ({"event_id": "e", "decision_id": "d", "type": "click", "timestamp": "0001-01-01T00:00:00+01:00"},
         ["body", "events", 0, "timestamp"]),
        ({"event_id": "e", "decision_id": "d", "type": "click", "timestamp": "9999-12-31T23:59:59-05:00"},
         ["body", "events", 0, "timestamp"]),
        ({"event_id": "e\u0000", "decision_id": "d", "type": "click"}, ["body", "events", 0, "event_id"]),
        ({"event_id": "e", "decision_id": "d", "type": "cl\u0000ick"}, ["body", "events", 0, "type"]),
        ({"event_id": "e", "decision_id": "d", "type": "click", "value": 1e200},
         ["body", "events", 0, "value"]),
    ],
)
def test_bad_events_are_422_naming_the_field(client, event, loc):
    response = client.post("/v1/outcomes", json={"events": [event]}, headers=SEND)
    assert response.status_code == 422
    assert loc in [p["loc"] for p in response.json()["detail"]]


def test_an_out_of_range_timestamp_is_refused_with_its_reason_and_nothing_is_stored(client, decision_ids):
    events = [{"event_id": "fine", "decision_id": decision_ids[0], "type": "click"},
              {"event_id": "early", "decision_id": decision_ids[1], "type": "click",
               "timestamp": "0001-01-01T00:00:00+01:00"}]
    response = client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    assert response.status_code == 422
    assert response.json()["detail"] == [{
        "loc": ["body", "events", 1, "timestamp"],
        "msg": "out of range: 0001-01-01T00:00:00+01:00 is not between years 1 and 9999 in UTC",
    }]
    # nothing of the call was stored: the good event is new when posted again
    again = client.post("/v1/outcomes", json={"events": events[:1]}, headers=SEND)
    assert again.json() == {"accepted": 1, "duplicates": 0, "orphans": 0, "erased": 0}


def test_empty_bulk_list_is_422(client):
    response = client.post("/v1/outcomes", json={"events": []}, headers=SEND)
    assert response.status_code == 422
    assert ["body", "events"] in [p["loc"] for p in response.json()["detail"]]
