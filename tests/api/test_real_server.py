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

from tests.api.conftest import ADMIN_KEY, SEND_KEY
from tests.api.flow import walk_the_contract

SENDLAB = Path(sys.executable).parent / "sendlab"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(
    db: str, *, workers: int = 1, timeout: float = 60.0
) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """Start ``sendlab serve``, wait until /healthz answers, yield a client and the process, then stop it."""
    port = free_port()
    env = {**os.environ, "SENDLAB_ADMIN_KEY": ADMIN_KEY, "SENDLAB_SEND_KEY": SEND_KEY}
    env.pop("SENDLAB_CONFIG", None)
    process = subprocess.Popen(
        [str(SENDLAB), "serve", "--db", db, "--port", str(port), "--workers", str(workers),
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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


def test_serve_on_sqlite_over_real_http(tmp_path):
    with running_server(f"sqlite:///{tmp_path / 'served.db'}") as (client, _):
        walk_the_contract(client)
        metrics = client.get("/metrics").text
        assert 'sendlab_decisions_total{experiment="walk"} 201' in metrics
        assert client.get("/v1/experiments").status_code == 401  # keys came from the environment


@pytest.mark.postgres
def test_postgres_two_workers_lose_and_double_nothing_even_when_one_is_killed(pg_url):
    with running_server(pg_url, workers=2) as (client, process):
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

        # SIGKILL one worker while 4 threads post outcomes: every acknowledged event must be stored
        workers = worker_pids(process.pid)
        assert len(workers) == 2, workers
        batches = [[{"event_id": f"kill-{b}-{j}", "decision_id": decisions[(5 * b + j) % len(decisions)]
                     ["decision_id"], "type": "click"} for j in range(5)] for b in range(160)]
        acknowledged: list[dict] = []
        started = threading.Event()

        def load(share: list[list[dict]]) -> None:
            with httpx.Client(base_url=base, timeout=30) as own:
                for batch in share:
                    try:
                        response = own.post("/v1/outcomes", json={"events": batch}, headers=send)
                    except httpx.TransportError:
                        continue  # never acknowledged: may or may not be stored
                    started.set()
                    if response.status_code == 200:
                        acknowledged.extend(batch)

        threads = [threading.Thread(target=load, args=(batches[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        assert started.wait(30)
        time.sleep(0.3)
        os.kill(workers[0], signal.SIGKILL)
        for t in threads:
            t.join(120)
        assert len(acknowledged) >= 100  # the other worker kept answering
        again = client.post("/v1/outcomes", json={"events": acknowledged}, headers=send).json()
        assert again == {"accepted": 0, "duplicates": len(acknowledged), "orphans": 0}


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes under ``parent`` (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children
            if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]
