"""``send_time`` over HTTP: the spec's key, the batch's ``send_date`` and each decision's ``send_at``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY, make_spec
from tests.api.test_bad_input import stored_rows


def utc_hour(text: str) -> tuple[str, int]:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.utcoffset() is not None and not moment.utcoffset()  # UTC
    return moment.date().isoformat(), moment.hour


SEND_TIME = {"hours": [9, 12, 18], "timezone_attr": "tz", "default_timezone": "UTC"}


def test_a_batch_answers_send_at_beside_the_variants(make_client, sqlite_url):
    client = make_client(sqlite_url)
    created = client.post("/v1/experiments", json=make_spec(send_time=SEND_TIME), headers=ADMIN)
    assert created.status_code == 201, created.text
    body = {"send_date": "2026-11-01", "recipients": [
        {"recipient_id": "a", "context": {"tz": "America/New_York", "consent": True}},
        {"recipient_id": "b", "context": {"tz": "nowhere", "consent": True}},
    ]}
    response = client.post("/v1/experiments/hello/assign/batch", json=body, headers=SEND)
    assert response.status_code == 200, response.text
    a, b = response.json()["decisions"]
    assert "send_time" not in a["variants"]
    # 09:00, 12:00 or 18:00 EST (UTC-5 since 02:00 that day)
    assert utc_hour(a["send_at"]) in {("2026-11-01", 14), ("2026-11-01", 17), ("2026-11-01", 23)}
    assert utc_hour(b["send_at"]) in {("2026-11-01", 9), ("2026-11-01", 12), ("2026-11-01", 18)}
    assert "nowhere" in b["content_notes"]["send_time"]
    single = {"recipient_id": "c", "send_date": "2026-03-08", "context": {"tz": "America/New_York"}}
    one = client.post("/v1/experiments/hello/assign", json=single, headers=SEND).json()
    assert utc_hour(one["send_at"]) in {("2026-03-08", 13), ("2026-03-08", 16), ("2026-03-08", 22)}


def test_an_unknown_zone_in_the_spec_is_a_422_naming_the_field(make_client, sqlite_url):
    client = make_client(sqlite_url)
    spec = make_spec(send_time={**SEND_TIME, "default_timezone": "Europe/Atlantis"})
    response = client.post("/v1/experiments", json=spec, headers=ADMIN)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "send_time", "default_timezone"] and "Europe/Atlantis" in problem["msg"]


def test_send_date_is_checked(make_client, sqlite_url):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=make_spec(), headers=ADMIN)
    body = {"send_date": "2026-03-08", "recipients": [{"recipient_id": "a"}]}
    response = client.post("/v1/experiments/hello/assign/batch", json=body, headers=SEND)
    assert response.status_code == 422 and "send_date" in response.text
    body = {"send_date": "tomorrow", "recipients": [{"recipient_id": "a"}]}
    response = client.post("/v1/experiments/hello/assign/batch", json=body, headers=SEND)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "send_date"]


@pytest.mark.parametrize(("send_date", "zone"), [("0001-01-01", "Pacific/Auckland"),
                                                 ("9999-12-31", "Pacific/Honolulu")])
def test_a_send_date_at_the_ends_of_the_calendar_is_a_422_and_nothing_is_written(
    make_client, sqlite_url, send_date, zone
):
    # 09:00 on 0001-01-01 in Auckland is in year 0 in UTC, 18:00 on 9999-12-31 in Honolulu in year 10000
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=make_spec(send_time=SEND_TIME), headers=ADMIN)
    before = stored_rows(client)
    single = {"recipient_id": "y2", "context": {"tz": zone}, "send_date": send_date}
    batch = {"send_date": send_date, "recipients": [{"recipient_id": "y2", "context": {"tz": zone}}]}
    for path, body in (("assign", single), ("assign/batch", batch)):
        response = client.post(f"/v1/experiments/hello/{path}", json=body, headers=SEND)
        assert response.status_code == 422, response.text
        (only,) = response.json()["detail"]
        assert only["loc"] == ["body", "send_date"]
        assert only["msg"].startswith(f"out of range: {send_date} is not between 0001-01-02 and 9999-12-30")
    assert stored_rows(client) == before


def test_the_first_and_last_send_dates_have_a_send_time_in_every_zone(make_client, sqlite_url):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=make_spec(send_time=SEND_TIME), headers=ADMIN)
    for send_date, zone in (("0001-01-02", "Pacific/Kiritimati"), ("9999-12-30", "Etc/GMT+12")):
        body = {"recipient_id": zone, "context": {"tz": zone}, "send_date": send_date}
        response = client.post("/v1/experiments/hello/assign", json=body, headers=SEND)
        assert response.status_code == 200, response.text


def test_results_by_send_hour(make_client, sqlite_url):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=make_spec(send_time=SEND_TIME), headers=ADMIN)
    body = {"send_date": "2026-03-09", "recipients": [
        {"recipient_id": f"r{i}", "context": {"consent": True}} for i in range(90)
    ]}
    decisions = client.post("/v1/experiments/hello/assign/batch", json=body, headers=SEND).json()["decisions"]
    response = client.get("/v1/experiments/hello/results?segment=send_time", headers=ADMIN)
    assert response.status_code == 200, response.text
    segments = response.json()["segments"]
    hours = [utc_hour(d["send_at"])[1] for d in decisions]  # the default zone is UTC
    assert segments["attribute"] == "send_time"
    assert segments["values"] == {f"{h:02d}:00": hours.count(h) for h in (9, 12, 18)}


def test_sendlab_assign_takes_send_date(tmp_path):
    import json as json_module

    from typer.testing import CliRunner

    from api.cli import app

    db = f"sqlite:///{tmp_path / 'sendlab.db'}"
    spec = tmp_path / "spec.json"
    spec.write_text(json_module.dumps(make_spec(send_time={**SEND_TIME, "hours": [9]})))
    runner = CliRunner()
    assert runner.invoke(app, ["experiments", "create", str(spec), "--db", db]).exit_code == 0
    result = runner.invoke(app, ["assign", "hello", "-r", "ana", "-c", "tz=America/New_York",
                                 "--send-date", "2026-11-01", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert utc_hour(json_module.loads(result.stdout)["send_at"]) == ("2026-11-01", 14)
    result = runner.invoke(app, ["assign", "hello", "-r", "ana", "--send-date", "Sunday", "--db", db])
    assert result.exit_code == 1 and "--send-date" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["assign", "hello", "-r", "ana", "-c", "tz=Pacific/Auckland",
                                 "--send-date", "0001-01-01", "--db", db])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "send_date: out of range: 0001-01-01 is not between 0001-01-02 and 9999-12-30" in result.output


def test_overlapping_windows_are_a_422_naming_the_field(make_client, sqlite_url):
    client = make_client(sqlite_url)
    windows = [{"start": "09:00", "end": "11:00"}, {"start": "10:00", "end": "12:00"}]
    spec = make_spec(send_time={"windows": windows, "timezone_attr": "tz"})
    response = client.post("/v1/experiments", json=spec, headers=ADMIN)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "send_time", "windows"] and "overlap" in problem["msg"]


def test_a_default_send_date_answers_the_next_send_at_not_one_in_the_past(sqlite_url):
    """At 09:19 in Tokyo (00:19 UTC), 09:00 has passed: the default local date is the next day; an
    explicit send_date of today keeps 09:00 today and says it is past in ``content_notes``."""
    engine = make_engine(sqlite_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=lambda: datetime(2026, 12, 8, 0, 19, tzinfo=UTC), seed=1)
    settings = Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY, learner=False)
    with TestClient(create_app(settings, service=service)) as client:
        spec = make_spec(send_time={**SEND_TIME, "hours": [9]}, design={"type": "ab"})
        assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
        body = {"recipient_id": "tk5", "context": {"tz": "Asia/Tokyo", "first_name": "Ken"}}
        default = client.post("/v1/experiments/hello/assign", json=body, headers=SEND).json()
        assert default["send_at"] == "2026-12-09T00:00:00Z" and default["content_notes"] == {}
        dated = client.post("/v1/experiments/hello/assign", json={**body, "send_date": "2026-12-08"},
                            headers=SEND).json()
        assert dated["send_at"] == "2026-12-08T00:00:00Z"
        assert dated["content_notes"]["send_time"] == (
            "send_date 2026-12-08: 09:00 in Asia/Tokyo (2026-12-08T00:00:00Z) is already past at"
            " 2026-12-08T00:19:00Z")
    engine.dispose()
