"""Requests per second of the service over real HTTP on loopback: single vs batch assign, outcomes.

Starts ``sendlab serve`` and a bare FastAPI app that returns a constant (the framework's floor) as real
processes on free loopback ports, both through :func:`api.cli.serve.run_server` (the same uvicorn
configuration, one worker, the same process tuning), then measures with httpx from this process. The
floor and the single assigns are measured in alternating rounds, so that both see the same load of a
shared machine, and the goals of issue 4 are checked on the figures of the run:

- single-assign p99 within 3x of the floor's p99 (each store);
- a 100,000-recipient batch in under 5 seconds on SQLite.

Single assigns are also measured while the worker's background learner is running (issue 23): before
each of those rounds, a second experiment gets a backlog of ``--learn-backlog`` decisions with clicks
(not timed); the round starts once the learner (polling every 0.1 s) has committed its first batch of
it, runs while it learns the rest and ends after its share of the requests, learned or not; the idle
rounds start once the learner is done (an untimed wait, bounded: a learner that does not begin or finish
within ``LEARNER_DEADLINE`` stops the run). The goals list says how many decisions were left to learn
when those rounds began and ended, and in how many the learner was still learning at the end. Every
decision measured is checked to be the policy's (not a fallback).

    python -m benchmarks.api [--pg URL] [--single 1000] [--concurrency 4] [--batches 1000,10000,100000]
                             [--learn-backlog 20000] [--section service]
"""

from __future__ import annotations

import argparse
import json
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
from typing import NamedTuple

import httpx
import numpy as np
from fastapi import FastAPI

from api.app import tune_garbage_collector
from api.cli.serve import run_server
from benchmarks.report import format_table, write_section

KEY = "bench-admin-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
LEARNING_SPEC = {
    "key": "bench-learning",
    "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
    "design": {"type": "bandit", "policy": "thompson", "update": {"every_outcomes": 1, "delay_hours": 0}},
    "reward": {"events": {"click": 1.0}},
    "consent": {"attribute": None},
}
SPEC = {
    "key": "bench",
    "slots": {
        "subject": {"variants": [{"id": "a", "content": "Hello {{ first_name }}"},
                                 {"id": "b", "content": "Hi"}]},
        "cta": {"variants": [{"id": "shop", "content": "Shop"}, {"id": "see", "content": "See"}]},
    },
    "design": {"type": "bandit", "policy": "thompson"},
    "reward": {"events": {"click": 1.0}},
    "consent": {"attribute": None},
}
"""Both specs read no consent attribute (consent is checked before the send): every recipient is
decided by the policy, with the same request bodies as before consent was read by default. A
recipient without consent would get the default variants and never be learned from."""


P99_GOAL_RATIO = 3.0
BATCH_GOAL_SECONDS = 5.0
BATCH_GOAL_SIZE = 100_000
ROUNDS = 8
WARM_UP = 40
LEARNER_DEADLINE = 300


def floor_app() -> FastAPI:
    """A bare FastAPI app with one POST route returning a constant: what the framework costs alone.

    Its process is tuned as each ``sendlab serve`` worker is (:func:`api.app.tune_garbage_collector`).
    """
    tune_garbage_collector()
    app = FastAPI()

    @app.post("/floor")
    def floor(body: dict) -> dict:
        return {"ok": True}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served(NamedTuple):
    """A server started by :func:`_process`: its base URL and process id."""

    base: str
    pid: int


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _process(args: list[str], health: str, env: dict[str, str]) -> Iterator[Served]:
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
        yield Served(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _latencies(
    call: Callable[[httpx.Client, int], None], clients: list[httpx.Client], first: int, n: int
) -> tuple[float, np.ndarray]:
    """Calls ``first`` .. ``first + n - 1``, one thread per client; wall time and each call's latency."""
    concurrency = len(clients)

    def work(worker: int) -> list[float]:
        out = []
        for i in range(first + worker, first + n, concurrency):
            start = time.perf_counter()
            call(clients[worker], i)
            out.append(time.perf_counter() - start)
        return out

    latencies: list[float] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for part in pool.map(work, range(concurrency)):
            latencies += part
    return time.perf_counter() - start, np.array(latencies)


Target = tuple[Served, Callable[[httpx.Client, int], None], Callable[[int], None] | None]


def _single_rounds(
    targets: dict[str, Target], n: int, concurrency: int
) -> dict[str, tuple[float, np.ndarray, float]]:
    """Each target (server, call, prepare) gets ``n`` calls from ``concurrency`` clients, in
    :data:`ROUNDS` alternating rounds after :data:`WARM_UP` calls that are not counted; wall time,
    latencies and the server's CPU seconds over the counted calls. ``prepare(round)``, when given, runs
    before each of the target's rounds, untimed."""
    clients = {name: [httpx.Client(base_url=served.base, timeout=60) for _ in range(concurrency)]
               for name, (served, _, _) in targets.items()}
    out = {name: (0.0, np.array([]), 0.0) for name in targets}
    try:
        for name, (_, call, _) in targets.items():
            _latencies(call, clients[name], -WARM_UP, WARM_UP)
        per_round = max(n // ROUNDS, concurrency)
        for r in range(ROUNDS):
            for name, (served, call, prepare) in targets.items():
                if prepare is not None:
                    prepare(r)
                cpu = _cpu_seconds(served.pid)
                wall, lat = _latencies(call, clients[name], r * per_round, per_round)
                cpu = _cpu_seconds(served.pid) - cpu
                total_wall, total_lat, total_cpu = out[name]
                out[name] = (total_wall + wall, np.concatenate([total_lat, lat]), total_cpu + cpu)
    finally:
        for own in clients.values():
            for c in own:
                c.close()
    return out


@contextmanager
def _floor() -> Iterator[Served]:
    floor = [sys.executable, "-m", "benchmarks.api", "--serve-floor"]
    with _process(floor, "/docs", dict(os.environ)) as served:
        yield served


def _measure_store(db: str, args: argparse.Namespace, env: dict[str, str]) -> tuple[list[list[object]], dict]:
    """The floor and single assigns (alternating rounds), each batch size and one bulk of outcomes
    against ``sendlab serve --db db``; the rows and the figures the goals are checked on."""
    store = db.split(":", 1)[0].split("+")[0]
    rows: list[list[object]] = []
    figures: dict[str, float] = {}
    sendlab = str(Path(sys.executable).parent / "sendlab")
    serve = [sendlab, "serve", "--db", db, "--log-level", "warning"]
    with _process(serve, "/healthz", env) as served, _floor() as floor:
        base = served.base
        httpx.post(base + "/v1/experiments", json=SPEC, headers=HEADERS).raise_for_status()
        path = "/v1/experiments/bench/assign"

        def single(c: httpx.Client, i: int) -> None:
            c.post(path, json={"recipient_id": f"s{i}", "context": {"first_name": "Ana"}},
                   headers=HEADERS).raise_for_status()

        def constant(c: httpx.Client, i: int) -> None:
            c.post("/floor", json={"recipient_id": f"s{i}", "context": {"first_name": "Ana"}},
                   headers=HEADERS).raise_for_status()

        check = httpx.post(base + path, json={"recipient_id": "check", "context": {"first_name": "Ana"}},
                           headers=HEADERS)
        check.raise_for_status()
        if check.json()["reason"] != "policy":
            raise RuntimeError(f"a single assign was not made by the policy: {check.json()['reason']}")
        httpx.post(base + "/v1/experiments", json=LEARNING_SPEC, headers=HEADERS).raise_for_status()
        backlog = _Backlog(base, db, args.learn_backlog)
        measured = _single_rounds(
            {"single": (served, single, backlog.wait_until_learned), "floor": (floor, constant, None),
             "learning": (served, single, backlog.add)},  # the floor too runs once the learner is idle
            args.single, args.concurrency)
        backlog.wait_until_learned(ROUNDS)
        backlog.engine.dispose()
        figures["left at start"], figures["left at end"] = backlog.left_at_start, backlog.left_at_end
        figures["still learning"], figures["drain seconds"] = backlog.still_learning, backlog.drain_seconds
        for name, label in (("floor", "bare FastAPI constant (floor)"), ("single", "single assign"),
                            ("learning", "single assign, the learner running")):
            wall, lat, cpu = measured[name]
            figures[f"{name} p50"] = 1000 * float(np.percentile(lat, 50))
            figures[f"{name} p99"] = 1000 * float(np.percentile(lat, 99))
            figures[f"{name} cpu"] = 1000 * cpu / len(lat)
            rows.append([store, label, len(lat), 1, len(lat) / wall, len(lat) / wall,
                         figures[f"{name} p50"], figures[f"{name} p99"], figures[f"{name} cpu"]])
        decision_ids: list[str] = []
        with httpx.Client(base_url=base, timeout=900) as client:
            for size in args.batch_sizes:
                context = {"first_name": "Ana"}
                times = []
                cpu = 0.0
                for repeat in range(2 if size <= 10_000 else 1):
                    recipients = [{"recipient_id": f"b{size}-{repeat}-{i}", "context": context}
                                  for i in range(size)]
                    body = json.dumps({"recipients": recipients}).encode()  # before the clock
                    cpu -= _cpu_seconds(served.pid)
                    start = time.perf_counter()
                    response = client.post("/v1/experiments/bench/assign/batch", content=body,
                                           headers={**HEADERS, "Content-Type": "application/json"})
                    response.raise_for_status()
                    times.append(time.perf_counter() - start)
                    cpu += _cpu_seconds(served.pid)
                decisions = response.json()["decisions"]
                if {d["reason"] for d in decisions} != {"policy"}:
                    raise RuntimeError("a batch's decisions were not all made by the policy")
                decision_ids = [d["decision_id"] for d in decisions]
                figures[f"batch {size}"] = max(times)
                rows.append([store, f"batch assign of {size:,}", len(times), size, len(times) / sum(times),
                             size * len(times) / sum(times), 1000 * statistics.median(times),
                             1000 * max(times), 1000 * cpu / len(times)])
            size = max(args.batch_sizes)  # every recipient a first name of their own: a rendering each
            distinct = [{"recipient_id": f"d{size}-{i}", "context": {"first_name": f"N{i}"}}
                        for i in range(size)]
            body = json.dumps({"recipients": distinct}).encode()
            cpu = _cpu_seconds(served.pid)
            start = time.perf_counter()
            client.post("/v1/experiments/bench/assign/batch", content=body,
                        headers={**HEADERS, "Content-Type": "application/json"}).raise_for_status()
            took = time.perf_counter() - start
            cpu = _cpu_seconds(served.pid) - cpu
            rows.append([store, f"batch assign of {size:,}, every first name distinct", 1, size, 1 / took,
                         size / took, 1000 * took, 1000 * took, 1000 * cpu])
            events = [{"event_id": f"e{i}", "decision_id": d, "type": "click"}
                      for i, d in enumerate(decision_ids[:50_000])]
            cpu = _cpu_seconds(served.pid)
            start = time.perf_counter()
            client.post("/v1/outcomes", json={"events": events}, headers=HEADERS).raise_for_status()
            took = time.perf_counter() - start
            cpu = _cpu_seconds(served.pid) - cpu
            rows.append([store, f"outcomes, bulk of {len(events):,}", 1, len(events), 1 / took,
                         len(events) / took, 1000 * took, 1000 * took, 1000 * cpu])
    commits = _commit_latencies(db, args.single)
    figures["commit p50"], figures["commit p99"] = (1000 * float(np.percentile(commits, q)) for q in (50, 99))
    rows.append([store, "commit of one row (reference)", len(commits), 1, len(commits) / commits.sum(),
                 len(commits) / commits.sum(), figures["commit p50"], figures["commit p99"], "-"])
    return rows, figures


class _Backlog:
    """Decisions with clicks for the background learner of the served worker to learn, one backlog
    before each learner round; counts what it learned while the measured rounds ran.

    A learner that does not begin, or does not finish a backlog, within :data:`LEARNER_DEADLINE`
    seconds stops the benchmark: rounds measured with an idle learner would be mislabelled.
    """

    def __init__(self, base: str, db: str, size: int) -> None:
        from sqlalchemy import text

        from experiments.store import make_engine

        self.base, self.size = base, size
        self.engine = make_engine(db)
        self.query = text("SELECT count(*) FROM decisions WHERE experiment_key = 'bench-learning' "
                          "AND learned_version IS NOT NULL")
        self.total = 0
        self.left_at_start = 0  # decisions left to learn when the learner rounds began, summed
        self.left_at_end = 0  # ... and when they ended
        self.still_learning = 0  # learner rounds that ended before the learner finished their backlog
        self.drain_seconds = 0.0  # waiting, untimed, for the learner to finish after those rounds
        self._before: int | None = None

    def learned(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self.query).scalar_one())

    def _wait(self, done: Callable[[], bool], what: str) -> float:
        start = time.monotonic()
        while not done():
            if time.monotonic() - start > LEARNER_DEADLINE:
                raise RuntimeError(f"the background learner did not {what} within {LEARNER_DEADLINE} s")
            time.sleep(0.02)
        return time.monotonic() - start

    def add(self, round_: int) -> None:
        """Assign a backlog and click a fifth of it; return once the learner committed its first batch
        of it (the round is then measured while it learns the rest)."""
        recipients = [{"recipient_id": f"l{round_}-{i}"} for i in range(self.size)]
        with httpx.Client(base_url=self.base, timeout=600) as client:
            answer = client.post("/v1/experiments/bench-learning/assign/batch",
                                 json={"recipients": recipients}, headers=HEADERS)
            answer.raise_for_status()
            decisions = answer.json()["decisions"]
            reasons = {d["reason"] for d in decisions}
            if reasons != {"policy"}:  # a fallback is never learned from
                raise RuntimeError(f"the backlog's decisions were not made by the policy: {reasons}")
            events = [{"event_id": f"l{d['decision_id']}", "decision_id": d["decision_id"], "type": "click"}
                      for d in decisions[::5]]
            client.post("/v1/outcomes", json={"events": events}, headers=HEADERS).raise_for_status()
        self.total += self.size
        start = self.learned()
        self._wait(lambda: self.learned() > start, "begin a backlog")
        self._before = self.learned()
        self.left_at_start += self.total - self._before

    def wait_until_learned(self, _round: int) -> None:
        """Count what the learner left of the last backlog when its round ended, then wait (untimed)
        until it has learned the rest."""
        if self._before is not None:
            left = self.total - self.learned()
            self.left_at_end += left
            self.still_learning += left > 0
            self._before = None
            self.drain_seconds += self._wait(lambda: self.learned() >= self.total, "finish a backlog")


def _commit_latencies(db: str, n: int) -> np.ndarray:
    """Seconds per transaction that inserts one row and commits, one after another, on the store's own
    engine settings: the wait for durability that every acknowledged decision includes."""
    from sqlalchemy import text

    from experiments.store import make_engine

    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_commit (x INTEGER)"))
        out = []
        with engine.connect() as conn:
            for i in range(n):
                start = time.perf_counter()
                conn.execute(text("INSERT INTO bench_commit (x) VALUES (:x)"), {"x": i})
                conn.commit()
                out.append(time.perf_counter() - start)
    finally:
        engine.dispose()
    return np.array(out)


def _goals(store_figures: dict[str, dict[str, float]]) -> str:
    """The goals of issue 4, each with the run's figures and whether it is met."""
    lines = []
    for store, f in store_figures.items():
        ratio, ratio50 = f["single p99"] / f["floor p99"], f["single p50"] / f["floor p50"]
        verdict = "met" if ratio <= P99_GOAL_RATIO else "missed"
        lines.append(f"- single-assign p99 within {P99_GOAL_RATIO:g}x of the floor's, {store}: "
                     f"{f['single p99']:.3g} ms / {f['floor p99']:.3g} ms = {ratio:.2f}x, **{verdict}** "
                     f"(p50 {f['single p50']:.3g} / {f['floor p50']:.3g} ms = {ratio50:.2f}x; a commit of "
                     f"one row in the same run: p50 {f['commit p50']:.3g} ms, p99 {f['commit p99']:.3g} ms; "
                     f"server CPU per request {f['single cpu']:.2f} ms, floor {f['floor cpu']:.2f} ms)")
        if "learning p99" in f:
            ratio_l = f["learning p99"] / f["floor p99"]
            lines.append(f"- single-assign p99 while the learner runs, {store}: {f['learning p99']:.3g} ms = "
                         f"{ratio_l:.2f}x the floor's (idle learner: {ratio:.2f}x; p50 "
                         f"{f['learning p50']:.3g} ms; decisions left to learn, summed over those rounds: "
                         f"{f['left at start']:,.0f} when they began, {f['left at end']:,.0f} when they "
                         f"ended; the learner still learning at the end of {f['still learning']:.0f} "
                         f"of {ROUNDS} rounds; {f['drain seconds']:.0f} s waited after them, untimed, for it "
                         "to finish)")
        if verdict == "missed":
            lines.append(
                f"  What bounds it, in this run: a single assign costs {f['single cpu']:.2f} ms of the "
                f"server's CPU against the floor's {f['floor cpu']:.2f} ms "
                f"({f['single cpu'] / f['floor cpu']:.1f}x), "
                "and the concurrent requests of one worker queue for its interpreter; each also waits for "
                "its commit (the commit row above), which the floor does not. On this shared 2-core "
                "machine the clients run beside the server."
            )
    for store, f in store_figures.items():
        took = f.get(f"batch {BATCH_GOAL_SIZE}")
        if took is None:
            continue
        goal = store == "sqlite"
        verdict = ("**met**" if took < BATCH_GOAL_SECONDS else "**missed**") if goal else "(no goal set)"
        lines.append(f"- a {BATCH_GOAL_SIZE:,}-recipient batch in under {BATCH_GOAL_SECONDS:g} s on SQLite, "
                     f"{store}: {took:.2f} s, {verdict}")
    return "\n".join(lines)


def _api_layer_rows(n: int, repeats: int = 5) -> list[list[object]]:
    """The api layer of one batch in process: the model path it had beside the lean path it has.

    Parsing: ``json.loads`` and ``BatchAssignRequest`` (what FastAPI does with a model body) against
    :func:`api.batch.parse_batch_body`; formatting: ``decision_to_dict`` and ``json.dumps`` as Starlette's
    ``JSONResponse`` renders against :func:`api.batch.decisions_json`. Each with CPython's default
    garbage-collector thresholds and with the served process's (:data:`api.app.SERVER_GC_THRESHOLDS`).
    """
    import gc

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
    parser.add_argument("--single", type=int, default=1000, help="single-assign requests (and as many floor "
                        "requests)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batches", default="1000,10000,100000", help="batch sizes")
    parser.add_argument("--layer", type=int, default=100_000, help="batch size of the in-process api layer "
                        "comparison (0 to skip)")
    parser.add_argument("--learn-backlog", type=int, default=20_000, help="decisions for the background "
                        "learner to learn before each round measured with the learner running")
    parser.add_argument("--section", default="service", help="the BENCHMARKS.md section to write")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:  # the floor's own process (started by the benchmark)
        run_server("benchmarks.api:floor_app", host="127.0.0.1", port=args.port, workers=1,
                   log_level="warning")
        return
    args.batch_sizes = [int(b) for b in args.batches.split(",")]
    env = {**os.environ, "SENDLAB_ADMIN_KEY": KEY, "SENDLAB_SEND_KEY": "bench-send",
           "SENDLAB_LEARNER": "on", "SENDLAB_LEARNER_POLL_SECONDS": "0.1"}
    rows: list[list[object]] = []
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        part, figures["sqlite"] = _measure_store(f"sqlite:///{tmp}/bench.db", args, env)
        rows += part
    skipped = ""
    if args.pg:
        with _throwaway_postgres(args.pg) as pg_url:
            if pg_url is None:
                skipped = f" PostgreSQL skipped: no server at {args.pg}."
            else:
                part, figures["postgresql"] = _measure_store(pg_url, args, env)
                rows += part
    headers = ["store", "call", "requests", "recipients per request", "requests/s", "recipients/s",
               "p50 ms", "p99 ms", "server CPU ms per request"]
    table = format_table(headers, rows)
    table += "\n\nGoals of issue 4, on this run's figures:\n\n" + _goals(figures)
    if args.layer:
        layer = _api_layer_rows(args.layer)
        table += (f"\n\nThe api layer of one {args.layer:,}-recipient batch, in process (median of 5):\n\n"
                  + format_table(["step", "gc thresholds", "model path ms", "lean path ms", "model / lean"],
                                 layer))
    learner_notes = (
        "Single assigns with the learner running: before each such round the second experiment "
        f"(Thompson, 3 arms, `every_outcomes: 1`) gets {args.learn_backlog:,} decisions and clicks on a "
        "fifth of them; the round starts once the worker's background learner "
        "(`SENDLAB_LEARNER_POLL_SECONDS=0.1`) has committed its first batch of them and runs while it "
        "learns the rest, and ends after its share of the requests whether or not the learner has "
        "finished (the goals line says in how many rounds it was still learning at the end); the "
        "single-assign and floor rounds start once it is done (the wait is untimed; a learner that does "
        f"not begin or finish a backlog within {LEARNER_DEADLINE} s stops the run). Both experiments "
        "read no consent attribute (`consent: {attribute: null}`, consent checked before the send), so "
        "every decision is made by the policy (checked on the answers) with the request bodies of the "
        "earlier runs. On PostgreSQL the "
        "learning lock is a row lock on the experiment, which assigns never take (batches of 5,000 "
        "decisions): the learner costs the assigns a share of the worker's CPU. On SQLite a learning "
        "batch holds the database's one write lock (`BEGIN IMMEDIATE`), so the scheduled learner learns "
        "1,000 decisions per batch and pauses 0.15 s between batches, longer than SQLite's busy handler "
        "sleeps, so that a waiting assign gets the lock after one batch (without the pause the learner "
        "took the lock back every time: p99 2.2 s, 24.6x the floor, in an earlier run). "
    )
    write_section(
        args.section,
        "Service over real HTTP on loopback: single vs batch assign, bulk outcomes"
        + ("" if args.section == "service" else f" ({args.section})"),
        " ".join(["python -m benchmarks.api", *sys.argv[1:]]),
        table,
        notes=learner_notes + (
            "The rest as in the full run's section: one worker per store, floor and single assigns in "
            f"{ROUNDS} alternating rounds (after {WARM_UP} uncounted calls each), {args.concurrency} client "
            "threads; a short run on a shared 2-core machine under load: compare the ratios." + skipped
            if args.section != "service" else
            "The send-time path behind these figures: one query for the experiment's state (compiled spec "
            "and restored policy cached per version), decision rows bound once and written by one statement "
            "(`COPY` on PostgreSQL), a group commit of concurrent requests on SQLite (WAL, "
            "`synchronous=NORMAL`: durable against a killed process, not a power cut), time-ordered "
            "(version-7) decision ids, renderings shared by recipients with the same field values. "
            "One `sendlab serve` worker per store, a Thompson-sampling experiment (2 x 2 arms, a templated "
            "subject line; every recipient has the same first name unless the row says otherwise). "
            "The floor is a bare FastAPI route returning a constant, served by the same "
            "`api.cli.serve.run_server` (same uvicorn configuration, one worker, the same garbage-collector "
            "tuning) and measured in the same run: floor and single assigns alternate in "
            f"{ROUNDS} rounds (after {WARM_UP} uncounted calls each), {args.concurrency} client threads on "
            "the same machine, the same request body. Batches are sent one at a time (p50/p99 columns are "
            "the median and worst of their repeats; each repeat assigns new recipients; the body is encoded "
            "before the clock starts, the answer read in full before it stops). Shared 2-core machine: "
            "compare ratios, and expect them to move from run to run: with the code of 2026-11-29 the "
            "single-assign p99 ratio ranged 1.6x to 2.1x on SQLite and 1.9x to 3.3x on "
            "PostgreSQL over five runs, one full-size run missing the PostgreSQL goal at 3.31x. "
            "Api layer: the model path is what the batch route did before (FastAPI's model body, "
            "`decision_to_dict` through `JSONResponse`), the lean path what it does now (`api.batch`); "
            "`served` are the garbage-collector thresholds `sendlab serve` sets in each worker."
            + skipped
        ),
    )


if __name__ == "__main__":
    main()
