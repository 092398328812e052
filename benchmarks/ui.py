"""How fast the /ui pages answer for an experiment with 1,000,000 decisions.

An A/B/C test of the subject and a Thompson-sampling bandit are filled through the real service
(``assign_batch`` in chunks over 20 simulated days, clicks and unsubscribes posted with
``record_outcomes``; not timed). Then, in process through FastAPI's TestClient, each page is timed
cold (the page cache emptied before every request: the SQL summary, the analysis and the charts are all
recomputed) cached (served from the page cache within its time limit) and stale (answered from the cache
while a background refresh runs), beside the JSON results of
``GET /v1/experiments/{key}/results`` as the baseline: the same SQL summary and analysis, no charts.

    python -m benchmarks.ui [--n 1000000] [--pg URL] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

import api.ui
from api.app import create_app
from api.results import analyze_summary
from api.settings import Settings
from api.ui.cache import TimedCache
from benchmarks.report import format_table, write_section
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

SLOTS = {"subject": {"variants": [{"id": "plain", "content": "Spring sale"},
                                  {"id": "urgent", "content": "Ends tonight"},
                                  {"id": "personal", "content": "For you"}]}}
DESIGNS = {"ab": {"type": "ab"}, "bandit": {"type": "bandit", "policy": "thompson"}}
DAYS = 20
VARIANT_TO_CLICK = {"plain": 0.030, "urgent": 0.034, "personal": 0.031}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fill(service: ExperimentService, clock: Clock, key: str, n: int, rng: np.random.Generator) -> None:
    """``n`` decisions over ``DAYS`` days with their clicks and unsubscribes, learning once a day."""
    spec = {"key": key, "slots": SLOTS, "design": DESIGNS[key],
            "reward": {"events": {"click": 1.0}, "guardrails": ["unsubscribe"]}}
    service.create(parse_spec(spec))
    start = clock.now
    per_day = n // DAYS
    for day in range(DAYS):
        clock.now = start + timedelta(days=day)
        ids = [(f"{key}-{day}-{i}", {}) for i in range(per_day)]
        decisions = service.assign_batch(key, ids)
        p = np.array([VARIANT_TO_CLICK[d.variants["subject"].id] for d in decisions])
        clicked = rng.random(len(decisions)) < p
        unsub = rng.random(len(decisions)) < 0.002
        clicks_at, unsubs_at = clock.now + timedelta(hours=1), clock.now + timedelta(hours=2)
        events = [OutcomeEvent(f"{d.decision_id}:c", d.decision_id, "click", None, clicks_at)
                  for d, c in zip(decisions, clicked, strict=True) if c]
        events += [OutcomeEvent(f"{d.decision_id}:u", d.decision_id, "unsubscribe", None, unsubs_at)
                   for d, u in zip(decisions, unsub, strict=True) if u]
        clock.now += timedelta(hours=3)
        service.record_outcomes(events)
        if key == "bandit":
            clock.now += timedelta(days=3, hours=1)
            service.learn(key)


def median_ms(fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(db_name: str, url: str, n: int, repeats: int) -> list[list[object]]:
    engine = make_engine(url)
    create_tables(engine)
    clock = Clock(datetime.now(UTC) - timedelta(days=DAYS * 4 + 5))
    service = ExperimentService(engine, clock=clock, seed=1)
    rng = np.random.default_rng(5)
    started = time.perf_counter()
    for key in DESIGNS:
        fill(service, clock, key, n, rng)
    print(f"{db_name}: filled 2 x {n:,} decisions in {time.perf_counter() - started:.0f} s")
    clock.now = datetime.now(UTC)
    app = create_app(Settings(db=url), service=service)
    app.include_router(api.ui.router)
    client = TestClient(app)

    def cold() -> None:
        app.state.ui_cache = TimedCache(0.0)

    rows: list[list[object]] = []
    for key in DESIGNS:
        def get(path: str) -> Callable[[], None]:
            def call() -> None:
                answer = client.get(path)
                assert answer.status_code == 200, answer.text[:300]
            return call

        results_ms = median_ms(get(f"/v1/experiments/{key}/results"), repeats)
        summarize_ms = median_ms(lambda k=key: service.summarize(k), repeats)
        summary = service.summarize(key)
        analyze_ms = median_ms(lambda s=summary: analyze_summary(s), repeats)
        for label, path in [("experiment page", f"/ui/experiments/{key}"), ("list page", "/ui")]:
            cold_ms = median_ms(get(path), repeats, before=cold)
            app.state.ui_cache = TimedCache(3600.0)
            get(path)()  # fill the cache
            fresh_ms = median_ms(get(path), repeats)
            # every value stale: each request answers from the cache and starts a background refresh
            app.state.ui_cache = TimedCache(0.0, stale_seconds=3600.0)
            get(path)()
            pause = 3 * summarize_ms / 1000  # long enough for the previous refresh to finish
            stale_ms = median_ms(get(path), repeats, before=lambda p=pause: time.sleep(p))
            time.sleep(pause)
            rows.append([db_name, key, f"{n:,}", label, summarize_ms, analyze_ms, results_ms, cold_ms,
                         cold_ms / results_ms, fresh_ms, stale_ms, "yes" if cold_ms < 300 else "no",
                         "yes" if max(fresh_ms, stale_ms) < 300 else "no"])
    engine.dispose()
    return rows


def measure_postgres(admin_url: str, n: int, repeats: int) -> list[list[object]]:
    """``measure`` in a throwaway database created next to ``admin_url`` (dropped after)."""
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"sendlab_bench_ui_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            return measure("PostgreSQL", admin_url.rsplit("/", 1)[0] + "/" + name, n, repeats)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="decisions per experiment")
    parser.add_argument("--pg", default=None,
                        help="an admin PostgreSQL URL: a throwaway database is made beside it and dropped")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += measure("SQLite (WAL)", f"sqlite:///{Path(tmp) / 'ui.db'}", args.n, args.repeats)
    if args.pg:
        rows += measure_postgres(args.pg, args.n, args.repeats)
    headers = ["database", "experiment", "decisions", "page", "summarize ms", "analyze ms",
               "/v1 results ms (baseline)", "page cold ms", "cold / baseline", "page cached ms",
               "page stale ms", "cold < 300 ms", "cached and stale < 300 ms"]
    command = "python -m benchmarks.ui" + (f" --n {args.n}" if args.n != 1_000_000 else "") + (
        " --pg URL" if args.pg else "")
    notes = (
        "Median of the repeats, in process (TestClient, no network). `summarize` is the store's SQL "
        "aggregation (experiments/), `analyze` the statistics of every slot (analysis/), the baseline the "
        "JSON results of the same experiment (both together). `cold`: the page cache emptied before each "
        "request (summary, analysis, figures and template all recomputed). `cached`: a page younger than "
        "the cache's 15 s. `stale`: a page older than that (up to 10 minutes) is answered from the cache "
        "while one background refresh recomputes it (the refresh runs during the timed request). Only "
        "the first view of a page after the service starts, or after 10 minutes without a view, pays the "
        "cold time, almost all of it the store's summary; each page prints the age of its numbers. The "
        "list page summarises both experiments of the database."
    )
    write_section("ui", "Web pages (/ui) on an experiment with 1,000,000 decisions", command,
                  format_table(headers, rows), notes)


if __name__ == "__main__":
    main()
