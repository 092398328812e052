"""/metrics across worker processes: each worker's values in its own file, a scrape sums them all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.metrics import LATENCY_BUCKETS, ServiceMetrics, merge_worker_files
from api.metrics_files import WorkerFile, read_file, worker_files
from tests.api.conftest import ADMIN_KEY, SEND_KEY
from tests.api.test_metrics import parse_exposition
from tests.api.test_real_server import running_server

ASSIGN = "/v1/experiments/{key}/assign"
ROOT = Path(__file__).resolve().parents[2]


def test_two_registries_on_one_directory_render_the_sum(tmp_path):
    one, two = ServiceMetrics(tmp_path), ServiceMetrics(tmp_path)
    one.count_decisions("spring", 3)
    two.count_decisions("spring", 4)
    two.count_decisions("autumn", 1)
    one.count_outcomes(accepted=5, duplicates=1, orphans=0)
    two.count_outcomes(accepted=2, duplicates=0, orphans=3)
    rng = np.random.default_rng(1)
    latencies = rng.exponential(0.05, 300)
    for i, seconds in enumerate(latencies):
        (one if i % 3 else two).observe_request("/v1/outcomes", 200 if i % 10 else 422, float(seconds))
    for registry in (one, two):  # whichever worker answers the scrape says the same
        samples = parse_exposition(registry.render())
        assert samples['sendlab_decisions_total{experiment="spring"}'] == 7
        assert samples['sendlab_decisions_total{experiment="autumn"}'] == 1
        assert samples['sendlab_outcomes_total{result="accepted"}'] == 7
        assert samples['sendlab_outcomes_total{result="orphan"}'] == 3
        assert samples['sendlab_http_requests_total{route="/v1/outcomes",status="200"}'] == 270
        assert samples['sendlab_http_errors_total{status="422"}'] == 30
        for bound in LATENCY_BUCKETS:
            label = f"{bound:g}" if not float(bound).is_integer() else str(int(bound))
            key = f'sendlab_http_request_duration_seconds_bucket{{route="/v1/outcomes",le="{label}"}}'
            assert samples[key] == np.sum(latencies <= bound), bound
        count = samples['sendlab_http_request_duration_seconds_count{route="/v1/outcomes"}']
        assert count == 300
        total = samples['sendlab_http_request_duration_seconds_sum{route="/v1/outcomes"}']
        assert total == pytest.approx(latencies.sum())
        pids = [k for k in samples if k.startswith("sendlab_process_start_time_seconds")]
        assert pids == [f'sendlab_process_start_time_seconds{{pid="{os.getpid()}"}}']


def test_a_worker_file_grows_and_reads_back(tmp_path):
    file = WorkerFile(tmp_path)
    key_to_value = {json.dumps(["x_total", [["experiment", f"e{i:05d}" * 20]], None]): float(i)
                    for i in range(3000)}  # about 1.5 MB of keys: the 64 kB file grows several times
    for key, value in key_to_value.items():
        file.set(key, value)
    file.set(next(iter(key_to_value)), 42.0)  # an update is in place
    expected = {**key_to_value, next(iter(key_to_value)): 42.0}
    assert read_file(file.path) == expected
    assert file.path.stat().st_size > 1_000_000
    file.close()
    assert read_file(file.path) == expected  # the values outlive the process that wrote them


def test_a_file_cut_short_reads_what_is_complete(tmp_path):
    file = WorkerFile(tmp_path)
    file.set("a", 1.0)
    file.set("b", 2.0)
    data = file.path.read_bytes()
    short = tmp_path / "worker-1-x.metrics"
    short.write_bytes(data[:30])  # the header says more is used than the file holds
    assert read_file(short) == {"a": 1.0}
    short.write_bytes(b"\x00" * 3)
    assert read_file(short) == {}


CHILD = """
import sys
from api.metrics import ServiceMetrics
metrics = ServiceMetrics(sys.argv[1])
n = int(sys.argv[2])
for _ in range(n):
    metrics.observe_request("/healthz", 200, 0.001)
metrics.count_decisions("spring", n)
"""


def test_files_of_exited_processes_still_count_but_their_gauges_go(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(n)], env=env)
                for n in (5, 7, 11)]
    assert [child.wait(120) for child in children] == [0, 0, 0]
    families, gauge = merge_worker_files(tmp_path)
    decisions = {f.name: f for f in families}["sendlab_decisions_total"]
    assert decisions.values == {(("experiment", "spring"),): 23.0}
    assert gauge.values == {}  # no live worker: no start time
    here = ServiceMetrics(tmp_path)
    samples = parse_exposition(here.render())
    assert samples['sendlab_http_requests_total{route="/healthz",status="200"}'] == 23
    assert [k for k in samples if k.startswith("sendlab_process_start")] == [
        f'sendlab_process_start_time_seconds{{pid="{os.getpid()}"}}']


def _worker_counts(directory: Path, name: str, labels: list[list[str]]) -> list[float]:
    """Per worker file, its value of one series (0 when it has none)."""
    key = json.dumps([name, labels, None], separators=(",", ":"))
    return [read_file(path).get(key, 0.0) for path in worker_files(directory)]


def test_a_scrape_of_a_multi_worker_server_counts_every_workers_requests(tmp_path, monkeypatch):
    directory = tmp_path / "metrics"
    monkeypatch.setenv("SENDLAB_METRICS_DIR", str(directory))  # so the test can read each worker's file
    spec = {"key": "m", "slots": {"s": {"variants": [{"id": "a"}, {"id": "b"}]}}, "design": {"type": "ab"}}
    with running_server(f"sqlite:///{tmp_path / 'served.db'}", workers=2) as (client, _):
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        send = {"Authorization": f"Bearer {SEND_KEY}"}
        assert client.post("/v1/experiments", json=spec, headers=admin).status_code == 201
        base = str(client.base_url)
        deadline = time.monotonic() + 180  # both workers built their app (a busy host imports slowly)

        def workers_seen() -> int:
            text = client.get("/metrics", headers=admin).text
            return len(re.findall(r"sendlab_process_start_time_seconds\{", text))

        while workers_seen() < 2:
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.5)

        def assign(i: int) -> int:
            # a new connection per request, so the kernel hands them to either worker
            response = httpx.post(f"{base}/v1/experiments/m/assign", json={"recipient_id": f"r{i}"},
                                  headers={**send, "Connection": "close"}, timeout=30)
            assert response.status_code == 200, response.text
            return 1

        made = 0
        labels = [["route", ASSIGN], ["status", "200"]]
        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):  # until both workers have answered some (almost always the first round)
                made += sum(pool.map(assign, range(made, made + 40)))
                per_worker = _worker_counts(directory, "sendlab_http_requests_total", labels)
                if sum(1 for n in per_worker if n > 0) == 2:
                    break
        assert len(per_worker) == 2 and min(per_worker) > 0, per_worker  # spread over both workers
        assert sum(per_worker) == made

        for _ in range(6):  # scrapes answered by either worker all count every request
            text = httpx.get(f"{base}/metrics", headers={"Connection": "close", **admin}, timeout=30).text
            samples = parse_exposition(text)
            assert samples['sendlab_decisions_total{experiment="m"}'] == made
            assert samples[f'sendlab_http_requests_total{{route="{ASSIGN}",status="200"}}'] == made
            assert samples[f'sendlab_http_request_duration_seconds_count{{route="{ASSIGN}"}}'] == made
            pids = re.findall(r'sendlab_process_start_time_seconds\{pid="(\d+)"\}', text)
            assert len(set(pids)) == 2  # one gauge per live worker, labelled by pid
