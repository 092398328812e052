"""``sendlab serve`` started as a real process on a loopback port, spoken to over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from bandit import load_policy
from tests.api.conftest import ADMIN_KEY, SEND_KEY
from tests.api.flow import walk_the_contract

SENDLAB = Path(sys.executable).parent / "sendlab"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(
    db: str, *, workers: int = 1, timeout: float = 180.0
) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """Start ``sendlab serve``, wait until /healthz answers, yield a client and the process, then stop it."""
    port = free_port()
    env = {**os.environ, "SENDLAB_ADMIN_KEY": ADMIN_KEY, "SENDLAB_SEND_KEY": SEND_KEY}
    env.pop("SENDLAB_CONFIG", None)
    process = subprocess.Popen(
        [str(SENDLAB), "serve", "--db", db, "--port", str(port), "--workers", str(workers),
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: the workers are stopped with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"sendlab serve exited with {process.returncode}: {output}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("sendlab serve did not answer /healthz in time")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30.0) as client:
            yield client, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        try:  # a worker the master did not stop in time would outlive the test
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_serve_on_sqlite_over_real_http(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'served.db'}") as (client, _):
        walk_the_contract(client)
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {SEND_KEY}"}).text
        assert 'sendlab_decisions_total{experiment="walk"} 201' in metrics
        assert client.get("/v1/experiments").status_code == 401  # keys came from the environment


@pytest.mark.postgres
def test_postgres_four_workers_lose_and_double_nothing_even_when_one_is_killed(pg_url):
    with running_server(pg_url, workers=4) as (client, process):
        seen = walk_the_contract(client)
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        send = {"Authorization": f"Bearer {SEND_KEY}"}
        # every acknowledged decision is in the store, whichever worker answered
        for d in seen["decisions"][:20]:
            assert client.get(f"/v1/decisions/{d['decision_id']}", headers=admin).status_code == 200

        # 8 threads post overlapping unsubscribes at once: each event is sent by two threads
        decisions = seen["decisions"]
        events = [{"event_id": f"unsub-{i}", "decision_id": d["decision_id"], "type": "unsubscribe"}
                  for i, d in enumerate(decisions)]
        parts = [events[i::4] for i in range(4)] * 2
        base = str(client.base_url)

        def post(part: list[dict]) -> dict:
            with httpx.Client(base_url=base, timeout=60) as own:
                response = own.post("/v1/outcomes", json={"events": part}, headers=send)
                assert response.status_code == 200, response.text
                return response.json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, parts))
        assert sum(a["accepted"] for a in answers) == len(events)
        assert sum(a["duplicates"] for a in answers) == len(events)
        body = client.get("/v1/experiments/walk/results?detail=false", headers=admin).json()
        stored = sum(a["events"].get("unsubscribe", 0) for a in body["arms"] if a["slot"] == "subject")
        assert stored == sum(1 for d in decisions if d["reason"] in ("assigned", "policy"))

        # 4 clients assign and post outcomes for what they were assigned, concurrently, while one of
        # the 4 workers is SIGKILLed: whatever was acknowledged is stored, exactly once.
        workers = worker_pids(process.pid)
        assert len(workers) == 4, workers
        load = MixedLoad(base, send, rounds=30)
        threads = [threading.Thread(target=load.run, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        assert load.acknowledged_enough.wait(60), "no answers under load"
        # the victim is a worker serving clients right now (most open client connections)
        port = client.base_url.port
        victim = max(workers, key=lambda pid: open_connections(pid, port))
        assert open_connections(victim, port) >= 1
        os.kill(victim, signal.SIGKILL)
        load.killed_at = load.answers
        for t in threads:
            t.join(180)
        assert not any(t.is_alive() for t in threads)
        assert load.wrong_answers == []
        assert load.unanswered <= 4  # at most what the killed worker held in flight (one per client)
        assert load.answers - load.killed_at >= 40  # the other workers kept answering
        assert len(load.acknowledged_events) >= 200

        counts = stored_counts(pg_url, list(load.acknowledged_decisions), list(load.sent_events))
        decisions_stored, events_stored = counts
        assert decisions_stored == dict.fromkeys(load.acknowledged_decisions, 1)
        for event_id, decision_id in load.acknowledged_events.items():
            assert events_stored.get(event_id) == (1, decision_id), event_id
        assert set(events_stored) <= set(load.sent_events)  # nothing stored that was never sent
        assert all(n == 1 for n, _ in events_stored.values())
        again = client.post("/v1/outcomes", headers=send, json={"events": [
            {"event_id": e, "decision_id": d, "type": "click"} for e, d in load.acknowledged_events.items()
        ]}).json()
        acknowledged = len(load.acknowledged_events)
        assert again == {"accepted": 0, "duplicates": acknowledged, "orphans": 0, "erased": 0}


class MixedLoad:
    """Each client, round after round: assign a batch of 10 and one recipient, then post a click for
    every decision acknowledged in its previous round. Records what was sent and what was acknowledged.
    """

    def __init__(self, base: str, headers: dict[str, str], rounds: int) -> None:
        self.base, self.headers, self.rounds = base, headers, rounds
        self.lock = threading.Lock()
        self.answers = 0
        self.killed_at = 0
        self.acknowledged_enough = threading.Event()
        self.acknowledged_decisions: set[str] = set()
        self.acknowledged_events: dict[str, str] = {}  # event id -> decision id
        self.sent_events: dict[str, str] = {}
        self.unanswered = 0  # requests cut off (the killed worker's) or answered with an error
        self.wrong_answers: list[dict] = []  # outcome answers that did not accept every new event

    def _post(self, http: httpx.Client, path: str, body: dict) -> dict | None:
        try:
            response = http.post(path, json=body, headers=self.headers)
        except httpx.TransportError:
            with self.lock:
                self.unanswered += 1
            return None  # never acknowledged: may or may not be stored
        if response.status_code != 200:
            with self.lock:
                self.unanswered += 1
            return None
        with self.lock:
            self.answers += 1
            if self.answers >= 40:
                self.acknowledged_enough.set()
        return response.json()

    def run(self, client_no: int) -> None:
        previous: list[str] = []
        with httpx.Client(base_url=self.base, timeout=30) as http:
            for r in range(self.rounds):
                recipients = [{"recipient_id": f"load-{client_no}-{r}-{j}"} for j in range(10)]
                batch = self._post(http, "/v1/experiments/walk/assign/batch", {"recipients": recipients})
                one = self._post(http, "/v1/experiments/walk/assign",
                                 {"recipient_id": f"solo-{client_no}-{r}"})
                current = [d["decision_id"] for d in (batch or {}).get("decisions", [])]
                current += [one["decision_id"]] if one else []
                with self.lock:
                    self.acknowledged_decisions.update(current)
                events = {f"load-{client_no}-{r}-{j}": d for j, d in enumerate(previous)}
                with self.lock:
                    self.sent_events.update(events)
                answer = self._post(http, "/v1/outcomes", {"events": [
                    {"event_id": e, "decision_id": d, "type": "click"} for e, d in events.items()
                ]}) if events else None
                if answer is not None:
                    with self.lock:
                        self.acknowledged_events.update(events)
                        if answer != {"accepted": len(events), "duplicates": 0, "orphans": 0, "erased": 0}:
                            self.wrong_answers.append(answer)
                previous = current


def stored_counts(
    url: str, decision_ids: list[str], event_ids: list[str]
) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """Straight from the database: rows per decision id, and (rows, decision id) per event id."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            decisions = conn.execute(sqlalchemy.text(
                "SELECT id, count(*) FROM decisions WHERE id = ANY(:ids) GROUP BY id"
            ), {"ids": decision_ids}).all()
            events = conn.execute(sqlalchemy.text(
                "SELECT event_id, count(*), min(decision_id) FROM outcomes WHERE event_id = ANY(:ids) "
                "GROUP BY event_id"
            ), {"ids": event_ids}).all()
    finally:
        engine.dispose()
    return {d: n for d, n in decisions}, {e: (n, d) for e, n, d in events}


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes under ``parent`` (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children
            if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


def open_connections(pid: int, port: int) -> int:
    """How many established TCP connections on ``port`` the process ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                count += 1
    return count


@pytest.mark.postgres
def test_two_workers_background_learners_learn_each_decision_once(pg_url, monkeypatch):
    """The workers' learners race on every check (every outcome is due); the experiment's learning lock
    makes them take turns, so each decision is learned exactly once, without a call to /learn."""
    monkeypatch.setenv("SENDLAB_LEARNER_POLL_SECONDS", "0.05")
    spec = {
        "key": "race",
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        "design": {"type": "bandit", "policy": "thompson", "update": {"every_outcomes": 1, "delay_hours": 0}},
        "reward": {"events": {"click": 1.0}},
        "consent": {"missing": "allow"},
    }
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    send = {"Authorization": f"Bearer {SEND_KEY}"}
    with running_server(pg_url, workers=2) as (client, _):
        assert client.post("/v1/experiments", json=spec, headers=admin).status_code == 201
        sent = 0
        for round_ in range(6):
            recipients = [{"recipient_id": f"r{round_}-{i}"} for i in range(50)]
            batch = client.post("/v1/experiments/race/assign/batch", json={"recipients": recipients},
                                headers=send)
            decisions = batch.json()["decisions"]
            events = [{"event_id": f"e-{d['decision_id']}", "decision_id": d["decision_id"], "type": "click"}
                      for d in decisions[::3]]
            posted = client.post("/v1/outcomes", json={"events": events}, headers=send)
            assert posted.json()["accepted"] == len(events)
            sent += len(decisions)
            time.sleep(0.1)
        engine = sqlalchemy.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            deadline = time.monotonic() + 60
            while True:
                with engine.connect() as conn:
                    learned = conn.execute(sqlalchemy.text(
                        "SELECT max(learned_decisions), count(*) FROM policy_snapshots"
                        " WHERE experiment_key = 'race'")).one()
                if learned[0] == sent or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            with engine.connect() as conn:
                unlearned = conn.execute(sqlalchemy.text(
                    "SELECT count(*) FROM decisions WHERE experiment_key = 'race' AND learned_version IS NULL"
                )).scalar_one()
                state = conn.execute(sqlalchemy.text(
                    "SELECT state FROM policy_snapshots WHERE experiment_key = 'race'"
                    " ORDER BY version DESC LIMIT 1")).scalar_one()
        finally:
            engine.dispose()
    assert learned[0] == sent and unlearned == 0
    assert learned[1] >= 2  # at least one background run stored a snapshot
    alpha, beta = load_policy(bytes(state)).posterior()
    assert float((alpha + beta - 2).sum()) == sent  # each decision in the posterior once
