"""What a single assign acknowledges is committed: on SQLite, ``sendlab serve`` killed under concurrent
load keeps every decision it answered; a decision the database refuses is an error and is not stored."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY, make_spec
from tests.api.test_real_server import running_server

BANDIT = make_spec(key="durable", design={"type": "bandit", "policy": "thompson"},
                   reward={"events": {"click": 1.0}})


def test_a_commit_the_database_refuses_is_a_500_and_stores_nothing(tmp_path):
    settings = Settings(db=f"sqlite:///{tmp_path / 'refuse.db'}", admin_key=ADMIN_KEY, send_key=SEND_KEY)
    app = create_app(settings)
    engine = app.state.engine
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TRIGGER no_poison BEFORE INSERT ON decisions WHEN NEW.recipient_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/experiments", json=BANDIT, headers=ADMIN).status_code == 201
        refused = client.post("/v1/experiments/durable/assign", json={"recipient_id": "poison"}, headers=SEND)
        assert refused.status_code == 500
        assert refused.json() == {"detail": "internal error (logged)"}
        fine = client.post("/v1/experiments/durable/assign", json={"recipient_id": "fine"}, headers=SEND)
        assert fine.status_code == 200
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT id, recipient_id FROM decisions")).all()
    assert stored == [(fine.json()["decision_id"], "fine")]
    engine.dispose()


def test_serve_on_sqlite_killed_under_concurrent_assigns_keeps_every_answered_decision(tmp_path):
    path = tmp_path / "served.db"
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()
    with running_server(f"sqlite:///{path}") as (client, process):
        assert client.post("/v1/experiments", json=BANDIT, headers=ADMIN).status_code == 201
        base = str(client.base_url)

        def load(t: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        r = http.post("/v1/experiments/durable/assign", headers=SEND,
                                      json={"recipient_id": f"c{t}-{i}", "context": {"first_name": "Ana"}})
                    except httpx.TransportError:
                        return  # cut off by the kill: never acknowledged
                    if r.status_code == 200:
                        with lock:
                            acknowledged[r.json()["decision_id"]] = f"c{t}-{i}"
                            if len(acknowledged) >= 150:
                                enough.set()

        threads = [threading.Thread(target=load, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        assert enough.wait(120), "no answers under load"
        os.kill(process.pid, signal.SIGKILL)  # one worker: the server process itself
        process.wait()
        stop.set()
        for t in threads:
            t.join(60)
    with lock:
        answered = dict(acknowledged)
    with sqlite3.connect(path) as db:  # reopened after the kill: the WAL is recovered
        stored = dict(db.execute("SELECT id, recipient_id FROM decisions").fetchall())
    assert len(answered) >= 150
    missing = {d: r for d, r in answered.items() if stored.get(d) != r}
    assert missing == {}
