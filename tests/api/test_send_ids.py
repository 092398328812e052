"""``send_id`` over HTTP (single and batch assign) and ``sendlab assign --send-id``: a retried send logs
nothing new and answers the original decisions, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app
from experiments.store import decisions_table, make_engine
from tests.api.conftest import ADMIN, SEND, make_spec

runner = CliRunner()
BANDIT = make_spec(
    key="retry", design={"type": "bandit", "policy": "thompson"}, reward={"events": {"click": 1.0}}
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sendlab.db'}"
    return str(request.getfixturevalue("pg_url"))


def stored_count(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decisions_table)).scalar_one())
    finally:
        engine.dispose()


def batch(n: int, send_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recipients": [{"recipient_id": f"r{i}", "context": {"first_name": f"N{i}"}} for i in range(n)]
    }
    if send_id is not None:
        body["send_id"] = send_id
    return body


def test_a_batch_posted_twice_with_a_send_id_is_logged_once(make_client, db_url):
    client = make_client(db_url)
    assert client.post("/v1/experiments", json=BANDIT, headers=ADMIN).status_code == 201
    first = client.post("/v1/experiments/retry/assign/batch", json=batch(200, "s-1"), headers=SEND)
    again = client.post("/v1/experiments/retry/assign/batch", json=batch(200, "s-1"), headers=SEND)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert stored_count(db_url) == 200
    # without a send id, today's behaviour: every post logs again
    client.post("/v1/experiments/retry/assign/batch", json=batch(200), headers=SEND)
    assert stored_count(db_url) == 400


def test_two_clients_posting_the_same_send_at_once_get_identical_answers(make_client, db_url):
    clients = [make_client(db_url), make_client(db_url)]  # two apps: two workers, engines of their own
    clients[0].post("/v1/experiments", json=BANDIT, headers=ADMIN)
    answers: list[Any] = [None, None]
    start = threading.Barrier(2)

    def post(i: int) -> None:
        start.wait(30)
        answers[i] = clients[i].post(
            "/v1/experiments/retry/assign/batch", json=batch(300, "race"), headers=SEND
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert stored_count(db_url) == 300


def test_a_single_assign_with_a_send_id_is_logged_once(make_client, sqlite_url):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=BANDIT, headers=ADMIN)
    body = {"recipient_id": "ann", "context": {"first_name": "Ann"}, "send_id": "s"}
    first = client.post("/v1/experiments/retry/assign", json=body, headers=SEND).json()
    again = client.post("/v1/experiments/retry/assign", json=body, headers=SEND).json()
    in_batch = client.post(
        "/v1/experiments/retry/assign/batch",
        json={"send_id": "s", "recipients": [{"recipient_id": "ann", "context": {"first_name": "Ann"}}]},
        headers=SEND,
    ).json()["decisions"][0]
    # the single route writes times with "Z", the batch route with "+00:00": compare the instants
    for answer in (first, again, in_batch):
        answer["created_at"] = datetime.fromisoformat(answer["created_at"])
    assert first == again == in_batch
    assert stored_count(sqlite_url) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/experiments/retry/assign", {"recipient_id": "a", "send_id": ""}),
        ("/v1/experiments/retry/assign", {"recipient_id": "a", "send_id": "x" * 129}),
        ("/v1/experiments/retry/assign", {"recipient_id": "a", "send_id": "a\u0000b"}),
        ("/v1/experiments/retry/assign/batch", {"recipients": [{"recipient_id": "a"}], "send_id": 5}),
        ("/v1/experiments/retry/assign/batch", {"recipients": [{"recipient_id": "a"}], "send_id": ""}),
    ],
)
def test_a_bad_send_id_is_a_422_at_send_id(make_client, sqlite_url, path, body):
    client = make_client(sqlite_url)
    client.post("/v1/experiments", json=BANDIT, headers=ADMIN)
    response = client.post(path, json=body, headers=SEND)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "send_id"]
    assert stored_count(sqlite_url) == 0


def test_a_cli_rerun_with_send_id_adds_nothing(tmp_path, db_url):
    spec = tmp_path / "retry.json"
    spec.write_text(json.dumps(BANDIT))
    assert runner.invoke(app, ["experiments", "create", str(spec), "--db", db_url]).exit_code == 0
    send = tmp_path / "send.csv"
    send.write_text("recipient_id,first_name\n" + "".join(f"r{i},N{i}\n" for i in range(60)))
    runs = []
    for _ in range(2):
        result = runner.invoke(
            app, ["assign", "retry", "--file", str(send), "--send-id", "mon", "--db", db_url, "--json"]
        )
        assert result.exit_code == 0, result.output
        runs.append(json.loads(result.output))
    assert runs[0] == runs[1]
    assert stored_count(db_url) == 60
    single = runner.invoke(
        app,
        ["assign", "retry", "-r", "r7", "-c", "first_name=N7", "--send-id", "mon", "--db", db_url, "--json"],
    )
    assert json.loads(single.output) == runs[0][7]
    assert stored_count(db_url) == 60
    bad = runner.invoke(app, ["assign", "retry", "-r", "r7", "--send-id", "", "--db", db_url])
    assert bad.exit_code != 0
    assert "--send-id" in bad.output and "Traceback" not in bad.output
