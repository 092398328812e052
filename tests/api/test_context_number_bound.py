"""A stored context number lies within ±2**53 (``MAX_CONTEXT_NUMBER``): beyond it an assignment, a batch
and a preview are a 422 at the attribute and nothing is written, on SQLite and PostgreSQL. A log that
holds such a number from before the bound still gives results (never a 500), and a covariate that
cannot be summed is a 422 at ``covariate``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from experiments.limits import MAX_CONTEXT_NUMBER
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY
from tests.api.test_bad_input import any_client, problem, stored_rows  # noqa: F401 - any_client: a fixture

KEY = "linear"
SPEC: dict[str, Any] = {
    "key": KEY,
    "slots": {"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}},
    "design": {"type": "contextual", "policy": "linear_ts", "context": ["recency_days"]},
    "consent": {"missing": "allow"},
    "reward": {"events": {"click": 1.0}},
}
AT_BOUND = [MAX_CONTEXT_NUMBER, -MAX_CONTEXT_NUMBER, float(MAX_CONTEXT_NUMBER)]
#: just above the bound: the next integer, the next double, and what overflowed the policies and results
ABOVE = [MAX_CONTEXT_NUMBER + 1, -(MAX_CONTEXT_NUMBER + 1), float(MAX_CONTEXT_NUMBER + 2), 1e155, 1e300]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path) -> Iterator[TestClient]:
    """A client on a service whose generator is seeded, with the linear Thompson-sampling experiment."""
    url = (f"sqlite:///{tmp_path / 'sendlab.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    create_tables(engine)
    settings = Settings(db=url, admin_key=ADMIN_KEY, send_key=SEND_KEY, learner="off")
    with TestClient(create_app(settings, service=ExperimentService(engine, seed=4))) as client:
        assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
        yield client
    engine.dispose()


def assign(client: TestClient, rid: str, value: Any) -> Any:
    return client.post(f"/v1/experiments/{KEY}/assign", headers=SEND,
                       json={"recipient_id": rid, "context": {"recency_days": value}})


@pytest.mark.parametrize("value", AT_BOUND)
def test_a_context_number_at_the_bound_is_assigned_batched_and_previewed(seeded, value) -> None:
    response = assign(seeded, "r", value)
    assert response.status_code == 200, response.text
    assert 0 < response.json()["propensity"] <= 1
    recipients = [{"recipient_id": "s", "context": {"recency_days": value}}]
    batch = seeded.post(f"/v1/experiments/{KEY}/assign/batch", json={"recipients": recipients}, headers=SEND)
    assert batch.status_code == 200, batch.text
    preview = seeded.post(f"/v1/experiments/{KEY}/preview", json={"recipients": recipients}, headers=ADMIN)
    assert preview.status_code == 200, preview.text


@pytest.mark.parametrize("value", ABOVE)
def test_a_context_number_above_the_bound_is_422_and_nothing_is_written(seeded, value) -> None:
    before = stored_rows(seeded)
    loc, msg = problem(assign(seeded, "r", value))
    assert loc == ["body", "context", "recency_days"]
    assert "between -2**53 and 2**53" in msg and repr(value) in msg
    recipients = [{"recipient_id": "ok", "context": {"recency_days": 3}},
                  {"recipient_id": "bad", "context": {"recency_days": value}}]
    for path, key in (("assign/batch", SEND), ("preview", ADMIN)):
        loc, msg = problem(seeded.post(f"/v1/experiments/{KEY}/{path}", json={"recipients": recipients},
                                       headers=key))
        assert loc == ["body", "recipients", 1, "context", "recency_days"] and "2**53" in msg
    assert stored_rows(seeded) == before


def test_a_nested_stored_number_above_the_bound_is_refused(any_client) -> None:  # noqa: F811
    body = {"recipient_id": "r", "context": {"country": {"spend": [1.0, 1e20]}}}
    loc, msg = problem(any_client.post("/v1/experiments/hello/assign", json=body, headers=SEND))
    assert loc == ["body", "context", "country"] and "2**53" in msg


def send(client: TestClient, round_: int, values: dict[int, float]) -> None:
    """Assign 20 recipients (``recency_days`` ``i``, or ``values[i]``) and post a click for every third."""
    decisions = []
    for i in range(20):
        response = assign(client, f"r{i}", values.get(i, i))
        assert response.status_code == 200, response.text
        decisions.append(response.json()["decision_id"])
    events = [{"event_id": f"{round_}-{i}", "decision_id": d, "type": "click"}
              for i, d in enumerate(decisions) if i % 3 == 0]
    assert client.post("/v1/outcomes", json={"events": events}, headers=SEND).status_code == 200


@pytest.mark.parametrize("value", [1e150, 1e300])
def test_results_of_a_log_with_a_number_stored_before_the_bound_are_not_a_500(seeded, monkeypatch, value):
    send(seeded, 0, {})
    assert seeded.post(f"/v1/experiments/{KEY}/learn", headers=ADMIN).status_code == 200
    with monkeypatch.context() as old_code:  # stored as the service did before the bound
        old_code.setattr("experiments.service.inputs.MAX_CONTEXT_NUMBER", float("inf"))
        send(seeded, 1, {0: value})
    for path in ("results", "report", "results?segment=recency_days"):
        response = seeded.get(f"/v1/experiments/{KEY}/{path}", headers=ADMIN)
        assert response.status_code == 200, f"{path}: {response.text}"
    adaptive = seeded.get(f"/v1/experiments/{KEY}/results", headers=ADMIN).json()["adaptive"]
    assert "1 decisions hold a context number beyond ±2**53" in adaptive["estimator_note"]
    assert adaptive["skipped"] == {}
    for path in ("results", "report"):
        response = seeded.get(f"/v1/experiments/{KEY}/{path}?covariate=recency_days", headers=ADMIN)
        if value == 1e150:  # its square still fits a double: the sums are finite
            assert response.status_code == 200, response.text
            continue
        assert response.status_code == 422, response.text
        (only,) = response.json()["detail"]
        assert only["loc"] == ["query", "covariate"]
        assert only["msg"].startswith(
            "'recency_days' cannot adjust the results: its stored values are too large to sum")
