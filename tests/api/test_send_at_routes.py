"""``send_at`` over HTTP (batch-level, per recipient, single) and ``sendlab assign --send-at``."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app
from experiments.store import decisions_table, make_engine
from tests.api.conftest import ADMIN, SEND, make_spec


def stored_send_at(db: str) -> dict[str, datetime | None]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            query = select(decisions_table.c.recipient_id, decisions_table.c.send_at)
            return {rid: at for rid, at in conn.execute(query)}
    finally:
        engine.dispose()


def test_batch_and_recipient_send_at_are_stored_in_utc(make_client, sqlite_url):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=make_spec(), headers=ADMIN)
    body = {
        "send_at": "2026-03-02T18:00:00Z",
        "recipients": [
            {"recipient_id": "a"},
            {"recipient_id": "b", "send_at": "2026-03-02T20:00:00+01:00"},
        ],
    }
    assert client.post("/v1/experiments/hello/assign/batch", json=body, headers=SEND).status_code == 200
    single = {"recipient_id": "c", "send_at": "2026-03-03T07:30:00"}
    assert client.post("/v1/experiments/hello/assign", json=single, headers=SEND).status_code == 200
    none = {"recipient_id": "d"}
    assert client.post("/v1/experiments/hello/assign", json=none, headers=SEND).status_code == 200
    assert stored_send_at(sqlite_url) == {
        "a": datetime(2026, 3, 2, 18), "b": datetime(2026, 3, 2, 19), "c": datetime(2026, 3, 3, 7, 30),
        "d": None,
    }


def test_a_bad_send_at_is_a_422_at_its_field(make_client, sqlite_url):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=make_spec(), headers=ADMIN)
    bad = {"recipients": [{"recipient_id": "a"}, {"recipient_id": "b", "send_at": "tonight"}]}
    response = client.post("/v1/experiments/hello/assign/batch", json=bad, headers=SEND)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:4] == ["body", "recipients", 1, "send_at"]
    out_of_range = {"recipient_id": "a", "send_at": "0001-01-01T00:30:00+01:00"}
    response = client.post("/v1/experiments/hello/assign", json=out_of_range, headers=SEND)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "send_at"]
    assert stored_send_at(sqlite_url) == {}


def test_cli_send_at(tmp_path, sqlite_url):
    runner = CliRunner()
    spec = tmp_path / "hello.json"
    spec.write_text(json.dumps(make_spec()))
    runner.invoke(app, ["experiments", "create", str(spec), "--db", sqlite_url])
    result = runner.invoke(
        app, ["assign", "hello", "-r", "a", "--send-at", "2026-03-02T18:00:00Z", "--db", sqlite_url]
    )
    assert result.exit_code == 0, result.output
    assert stored_send_at(sqlite_url) == {"a": datetime(2026, 3, 2, 18)}
    bad = runner.invoke(app, ["assign", "hello", "-r", "b", "--send-at", "tonight", "--db", sqlite_url])
    assert bad.exit_code == 1 and "--send-at" in bad.output
