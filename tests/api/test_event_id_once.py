"""An accepted event re-posted with an unknown decision is a duplicate, not a second row (an orphan),
on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.conftest import SEND
from tests.api.test_bad_input import any_client, stored_rows  # noqa: F401 - any_client: a fixture


def test_an_accepted_event_id_is_not_stored_again_as_an_orphan(any_client) -> None:  # noqa: F811
    client = any_client
    decision = client.post("/v1/experiments/hello/assign", json={"recipient_id": "r"}, headers=SEND).json()
    event = {"event_id": "e1", "decision_id": decision["decision_id"], "type": "click"}
    assert client.post("/v1/outcomes", json={"events": [event]}, headers=SEND).json() == {
        "accepted": 1, "duplicates": 0, "orphans": 0, "erased": 0}
    before = stored_rows(client)
    again = {**event, "decision_id": "no-such-decision"}
    answer = client.post("/v1/outcomes", json={"events": [again, {**again, "event_id": "e2"}]}, headers=SEND)
    assert answer.json() == {"accepted": 0, "duplicates": 1, "orphans": 1, "erased": 0}
    after = stored_rows(client)
    assert after["outcomes"] == before["outcomes"]
    assert after["orphan_outcomes"] == before["orphan_outcomes"] + 1  # e2 only
