"""``POST /v1/features/compute``: the same features as Python, admin only, bounded, 422 by field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api.models.features import MAX_INLINE_EVENTS
from experiments.features import FeatureSettings, compute_features, events_from_frame
from tests.api.conftest import ADMIN, SEND
from tests.experiments.features.test_hand_history import history

URL = "/v1/features/compute"


def body(**changes) -> dict:
    events = history().replace({np.nan: None}).to_dict("records")
    return {"as_of": "2024-06-01", "events": events, "k": 3, "window_days": 90, **changes}


def test_the_answer_is_the_python_result(client) -> None:
    response = client.post(URL, json=body(), headers=ADMIN)
    assert response.status_code == 200, response.text
    expected = compute_features([events_from_frame(history())],
                                FeatureSettings(as_of="2024-06-01", k=3, window_days=90)).to_dict()
    assert response.json() == json.loads(json.dumps(expected))
    ann = next(r for r in response.json()["recipients"] if r["recipient_id"] == "ann")
    assert (ann["recency_days"], ann["frequency"], ann["monetary"], ann["rfm"]) == (
        0.5, 2, 35.5, {"r": 5, "f": 4, "m": 4})


def test_only_the_admin_key_may_compute(client) -> None:
    assert client.post(URL, json=body(), headers=SEND).status_code == 403
    assert client.post(URL, json=body()).status_code == 401


@pytest.mark.parametrize(("changes", "loc", "message"), [
    ({"as_of": "next week"}, ["body", "as_of"], "must be an ISO 8601 date or date-time"),
    ({"k": 11}, ["body", "k"], "11 segments need at least 11 recipients with distinct features"),
    ({"k_min": 5, "k_max": 3}, ["body"], "k_max (3) must not be below k_min (5)"),
    ({"engagement_windows": [7, 7]}, ["body", "engagement_windows"], "a window is given twice"),
    ({"horizon_days": 30}, ["body", "horizon_days"], "5-fold cross-validation needs at least 5 of each"),
    ({"events": []}, ["body", "events"], "at least 1 item"),
])
def test_bad_settings_are_422_at_their_field(client, changes, loc, message) -> None:
    response = client.post(URL, json=body(**changes), headers=ADMIN)
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["loc"] == loc and message in problem["msg"], problem


def test_a_bad_event_is_422_at_its_index_and_field(client) -> None:
    events = body()["events"]
    events[3]["timestamp"] = "3 June"
    events[5]["amount"] = None  # a purchase
    response = client.post(URL, json=body(events=events), headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "events", 3, "timestamp"],
                                          "msg": "must be an ISO 8601 date or date-time, got '3 June'"}]


def test_the_history_sent_inline_is_bounded(client) -> None:
    event = {"recipient_id": "a", "timestamp": "2024-05-01", "type": "open"}
    response = client.post(URL, json=body(events=[event] * (MAX_INLINE_EVENTS + 1)), headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events"]
