"""Requests per second of the service over real HTTP on loopback: single vs batch assign, outcomes.

Starts ``sendlab serve`` (and a bare FastAPI app that returns a constant, the framework's floor) as
real processes on free loopback ports, then measures with httpx from this process.

    python -m benchmarks.service [--db URL] [--single 400] [--concurrency 4] [--batches 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI

from benchmarks.report import format_table, write_section

KEY = "bench-admin-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
SPEC = {
    "key": "bench",
    "slots": {
        "subject": {"variants": [{"id": "a", "content": "Hello {{ first_name }}"},
                                 {"id": "b", "content": "Hi"}]},
        "cta": {"variants": [{"id": "shop", "content": "Shop"}, {"id": "see", "content": "See"}]},
    },
    "design": {"type": "bandit", "policy": "thompson"},
    "reward": {"events": {"click": 1.0}},
}


def floor_app() -> FastAPI:
    """A bare FastAPI app with one POST route returning a constant: what the framework costs alone."""
    app = FastAPI()

    @app.post("/floor")
    def floor(body: dict) -> dict:
        return {"ok": True}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _process(args: list[str], health: str, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([*args, "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + health, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _latencies(call: Callable[[httpx.Client, int], None], base: str, n: int, concurrency: int) -> tuple:
    """Run ``call`` n times from ``concurrency`` threads; wall time and each call's latency."""
    clients = [httpx.Client(base_url=base, timeout=60) for _ in range(concurrency)]
    latencies: list[float] = []

    def work(worker: int) -> list[float]:
        out = []
        for i in range(worker, n, concurrency):
            start = time.perf_counter()
            call(clients[worker], i)
            out.append(time.perf_counter() - start)
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for part in pool.map(work, range(concurrency)):
            latencies += part
    wall = time.perf_counter() - start
    for c in clients:
        c.close()
    return wall, np.array(latencies)


def _measure_store(db: str, args: argparse.Namespace, env: dict[str, str]) -> list[list[object]]:
    """Single assign, each batch size and one bulk of outcomes against ``sendlab serve --db db``."""
    store = db.split(":", 1)[0].split("+")[0]
    rows: list[list[object]] = []
    sendlab = str(Path(sys.executable).parent / "sendlab")
    with _process([sendlab, "serve", "--db", db, "--log-level", "warning"], "/healthz", env) as base:
        httpx.post(base + "/v1/experiments", json=SPEC, headers=HEADERS).raise_for_status()
        path = "/v1/experiments/bench/assign"

        def single(c: httpx.Client, i: int) -> None:
            c.post(path, json={"recipient_id": f"s{i}", "context": {"first_name": "Ana"}},
                   headers=HEADERS).raise_for_status()

        wall, lat = _latencies(single, base, args.single, args.concurrency)
        rows.append([store, "single assign", args.single, 1, args.single / wall, args.single / wall,
                     1000 * np.percentile(lat, 50), 1000 * np.percentile(lat, 99)])
        decision_ids: list[str] = []
        with httpx.Client(base_url=base, timeout=900) as client:
            for size in args.batch_sizes:
                context = {"first_name": "Ana"}
                body = {"recipients": [{"recipient_id": f"b{size}-{i}", "context": context}
                                       for i in range(size)]}
                times = []
                for _ in range(2 if size <= 10_000 else 1):
                    start = time.perf_counter()
                    response = client.post("/v1/experiments/bench/assign/batch", json=body, headers=HEADERS)
                    response.raise_for_status()
                    times.append(time.perf_counter() - start)
                decision_ids = [d["decision_id"] for d in response.json()["decisions"]]
                rows.append([store, f"batch assign of {size:,}", len(times), size, len(times) / sum(times),
                             size * len(times) / sum(times), 1000 * statistics.median(times),
                             1000 * max(times)])
            events = [{"event_id": f"e{i}", "decision_id": d, "type": "click"}
                      for i, d in enumerate(decision_ids[:50_000])]
            start = time.perf_counter()
            client.post("/v1/outcomes", json={"events": events}, headers=HEADERS).raise_for_status()
            took = time.perf_counter() - start
            rows.append([store, f"outcomes, bulk of {len(events):,}", 1, len(events), 1 / took,
                         len(events) / took, 1000 * took, 1000 * took])
    return rows


def _api_layer_rows(n: int, repeats: int = 5) -> list[list[object]]:
    """The api layer of one batch in process: the model path it had beside the lean path it has.

    Parsing: ``json.loads`` and ``BatchAssignRequest`` (what FastAPI does with a model body) against
    :func:`api.batch.parse_batch_body`; formatting: ``decision_to_dict`` and ``json.dumps`` as Starlette's
    ``JSONResponse`` renders against :func:`api.batch.decisions_json`. Each with CPython's default
    garbage-collector thresholds and with the served process's (:data:`api.app.SERVER_GC_THRESHOLDS`).
    """
    import gc
    import json

    from api.app import SERVER_GC_THRESHOLDS
    from api.batch import decisions_json, parse_batch_body
    from api.convert import decision_to_dict
    from api.models.assign import BatchAssignRequest
    from experiments.service import ExperimentService
    from experiments.spec import parse_spec
    from experiments.store import create_tables, make_engine

    def model_parse(raw: bytes) -> list:
        body = BatchAssignRequest.model_validate(json.loads(raw))
        return [(r.recipient_id, r.context) for r in body.recipients]

    def model_format(decisions: list) -> bytes:
        return json.dumps({"decisions": [decision_to_dict(d) for d in decisions]}, ensure_ascii=False,
                          allow_nan=False, indent=None, separators=(",", ":")).encode()

    raw = json.dumps({"recipients": [{"recipient_id": f"r{i}", "context": {"first_name": "Ana"}}
                                     for i in range(n)]}).encode()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/layer.db")
        create_tables(engine)
        service = ExperimentService(engine)
        service.create(parse_spec(SPEC))
        decisions = service.assign_batch("bench", parse_batch_body(raw))
        engine.dispose()
    assert model_parse(raw) == parse_batch_body(raw)
    assert json.loads(model_format(decisions)) == json.loads(decisions_json(decisions))

    def median_seconds(work: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    default = gc.get_threshold()
    rows: list[list[object]] = []
    try:
        for label, thresholds in (("default", default), ("served", SERVER_GC_THRESHOLDS)):
            gc.set_threshold(*thresholds)
            parse = (median_seconds(lambda: model_parse(raw)), median_seconds(lambda: parse_batch_body(raw)))
            fmt = (median_seconds(lambda: model_format(decisions)),
                   median_seconds(lambda: decisions_json(decisions)))
            for step, (model_s, lean_s) in (("parse the body", parse), ("write the answer", fmt)):
                rows.append([step, f"{label} {thresholds}", 1000 * model_s, 1000 * lean_s, model_s / lean_s])
    finally:
        gc.set_threshold(*default)
    return rows


@contextmanager
def _throwaway_postgres(admin_url: str) -> Iterator[str | None]:
    """A fresh database on the server of ``admin_url`` (None when no server answers), dropped after."""
    import psycopg

    try:
        admin = psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True,
                                connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"sendlab_bench_{os.getpid()}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="PostgreSQL server to create a throwaway database on ('' to skip)")
    parser.add_argument("--single", type=int, default=400, help="single-assign requests")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batches", default="1000,10000,100000", help="batch sizes")
    parser.add_argument("--layer", type=int, default=100_000, help="batch size of the in-process api layer "
                        "comparison (0 to skip)")
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batches.split(",")]
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.service:floor_app",
               "--log-level", "warning", "--host", "127.0.0.1"]
    env = {**os.environ, "SENDLAB_ADMIN_KEY": KEY, "SENDLAB_SEND_KEY": "bench-send"}
    rows: list[list[object]] = []
    with _process(uvicorn, "/docs", env) as floor_base:
        def constant(c: httpx.Client, i: int) -> None:
            c.post("/floor", json={"recipient_id": str(i)}).raise_for_status()

        wall, lat = _latencies(constant, floor_base, args.single, args.concurrency)
        rows.append(["-", "bare FastAPI constant (floor)", args.single, 1, args.single / wall,
                     args.single / wall, 1000 * np.percentile(lat, 50), 1000 * np.percentile(lat, 99)])
    with tempfile.TemporaryDirectory() as tmp:
        rows += _measure_store(f"sqlite:///{tmp}/bench.db", args, env)
    skipped = ""
    if args.pg:
        with _throwaway_postgres(args.pg) as pg_url:
            if pg_url is None:
                skipped = f" PostgreSQL skipped: no server at {args.pg}."
            else:
                rows += _measure_store(pg_url, args, env)
    headers = ["store", "call", "requests", "recipients per request", "requests/s", "recipients/s",
               "p50 ms", "p99 ms"]
    table = format_table(headers, rows)
    if args.layer:
        layer = _api_layer_rows(args.layer)
        table += (f"\n\nThe api layer of one {args.layer:,}-recipient batch, in process (median of 5):\n\n"
                  + format_table(["step", "gc thresholds", "model path ms", "lean path ms", "model / lean"],
                                 layer))
    write_section(
        "service",
        "Service over real HTTP on loopback: single vs batch assign, bulk outcomes",
        "python -m benchmarks.service " + " ".join(sys.argv[1:]),
        table,
        notes=(
            "One `sendlab serve` worker per store, a Thompson-sampling experiment (2 x 2 arms); single "
            f"requests from {args.concurrency} client threads on the same machine; batches sent one at a "
            "time (p50/p99 columns are the median and worst of their repeats). The floor is a bare FastAPI "
            "route returning a constant, measured in the same run. Shared 2-core machine: compare ratios. "
            "Api layer: the model path is what the batch route did before (FastAPI's model body, "
            "`decision_to_dict` through `JSONResponse`), the lean path what it does now (`api.batch`); "
            "`served` are the garbage-collector thresholds `sendlab serve` sets in each worker."
            + skipped
        ),
    )


if __name__ == "__main__":
    main()
