"""Rows per second of the decision and outcome log at a send of 1,000,000 recipients.

A send of ``--n`` recipients is assigned and logged through ``ExperimentService.assign_batch`` in
batches of ``--batch``, then one click per decision is ingested through ``record_outcomes`` in
batches of the same size, and ``summarize(key)`` is timed over the whole log. The baseline, in the
same database and the same run, is a plain ``executemany`` insert of the very same rows (read back
from the service's tables, untimed) into plain tables of the same columns, keys and indexes. Each
database is measured in a fresh process, so its peak memory (``resource.getrusage``) is its own.
SQLite (WAL, a temp file) always; PostgreSQL too with ``--pg URL``: a throwaway database is created on
that server and dropped after.

Run: ``python -m benchmarks.store [--n 1000000] [--batch 100000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Column, Index, MetaData, Table, select
from sqlalchemy.engine import Engine

from benchmarks.report import format_table, write_section
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, decisions_table, make_engine, outcomes_table

SPEC = {
    "key": "store-bench",
    "slots": {
        "subject": {
            "variants": [
                {"id": v, "content": f"Subject {v}", "features": {"tone": v}}
                for v in ("plain", "urgent", "personal")
            ]
        },
        "cta": {"variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]},
    },
    "design": {"type": "multivariate"},
    "holdout": 0.05,
    "reward": {"events": {"click": 1.0}},
}
WARM_UP = 100  # recipients assigned, untimed, before the measured send


@dataclass(frozen=True)
class PhaseTiming:
    """One measured phase: ``rows`` written in ``seconds``; ``peak_rss_mb`` is the process peak so far."""

    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


@dataclass(frozen=True)
class StoreTimings:
    """Every phase of one database's run."""

    assign: PhaseTiming
    assign_floor: PhaseTiming
    outcomes: PhaseTiming
    outcomes_floor: PhaseTiming
    summarize_seconds: tuple[float, float]  # first call, second call
    summarize_rss_mb: float
    start_rss_mb: float


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def recipients(start: int, count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` recipients numbered from ``start`` with a small context."""
    rng = np.random.default_rng(seed)
    device = rng.choice(["mobile", "desktop"], count)
    segment = rng.choice(["new", "loyal", "lapsed"], count)
    return [
        (f"user-{start + i}", {"device": str(device[i]), "segment": str(segment[i]), "consent": True})
        for i in range(count)
    ]


def plain_copy(source: Table, name: str, metadata: MetaData) -> Table:
    """A table of the same columns, primary key, unique constraints and indexes as ``source``.

    A partial index keeps its predicate (``sqlite_where``, ``postgresql_where``): without it the copy
    would index every row where the service's table indexes a few.
    """
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, unique=c.unique)
        for c in source.columns
    ]
    table = Table(name, metadata, *columns)
    for index in source.indexes:
        Index(f"{name}_{index.name}", *(table.c[c.name] for c in index.columns), unique=index.unique,
              **index.dialect_kwargs)
    return table


def read_in_batches(engine: Engine, table: Table, key: str, order: str, size: int) -> Iterator[list[dict]]:
    """Rows of ``table`` for experiment ``key`` in batches of ``size``, by keyset on column ``order``."""
    last = None
    while True:
        query = select(table).where(table.c.experiment_key == key)
        if last is not None:
            query = query.where(table.c[order] > last)
        query = query.order_by(table.c[order]).limit(size)
        with engine.connect() as conn:
            batch = [dict(row._mapping) for row in conn.execute(query)]
        if not batch:
            return
        last = batch[-1][order]
        yield batch


def time_plain_inserts(
    engine: Engine, source: Table, target: Table, key: str, order: str, size: int, drop: tuple[str, ...]
) -> PhaseTiming:
    """Copy the service's rows into ``target`` with one timed executemany per batch (reading untimed)."""
    seconds, count = 0.0, 0
    for batch in read_in_batches(engine, source, key, order, size):
        rows = [{k: v for k, v in row.items() if k not in drop} for row in batch]
        start = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(target.insert(), rows)
        seconds += time.perf_counter() - start
        count += len(rows)
    return PhaseTiming(count, seconds, peak_rss_mb())


def measure(url: str, n: int, batch: int) -> StoreTimings:
    """Run every phase on the database at ``url`` (its tables are created here)."""
    start_rss = peak_rss_mb()
    engine = make_engine(url)
    create_tables(engine)
    metadata = MetaData()
    plain_decisions = plain_copy(decisions_table, "plain_decisions", metadata)
    plain_outcomes = plain_copy(outcomes_table, "plain_outcomes", metadata)
    metadata.create_all(engine)
    service = ExperimentService(engine, seed=1)
    key = SPEC["key"]
    service.create(parse_spec(SPEC))
    # warm the connection pool and statement caches on another experiment, untimed, so the measured
    # experiment holds exactly the n decisions that the plain copy inserts again
    service.create(parse_spec({**SPEC, "key": key + "-warm-up"}))
    service.assign_batch(key + "-warm-up", recipients(-WARM_UP, WARM_UP, seed=99))

    decision_ids: list[str] = []
    seconds = 0.0
    for first in range(0, n, batch):
        send = recipients(first, min(batch, n - first), seed=first)
        start = time.perf_counter()
        decisions = service.assign_batch(key, send)
        seconds += time.perf_counter() - start
        assert len(decisions) == len(send)
        decision_ids += [d.decision_id for d in decisions]
        del decisions, send
    assign = PhaseTiming(len(decision_ids), seconds, peak_rss_mb())
    assign_floor = time_plain_inserts(engine, decisions_table, plain_decisions, key, "id", batch, ())

    seconds, accepted = 0.0, 0
    for first in range(0, n, batch):
        events = [OutcomeEvent(f"click-{d}", d, "click") for d in decision_ids[first : first + batch]]
        start = time.perf_counter()
        counts = service.record_outcomes(events)
        seconds += time.perf_counter() - start
        assert counts.accepted == len(events), counts
        accepted += counts.accepted
        del events
    outcomes = PhaseTiming(accepted, seconds, peak_rss_mb())
    outcomes_floor = time_plain_inserts(engine, outcomes_table, plain_outcomes, key, "id", batch, ("id",))

    summaries = []
    for _ in range(2):
        start = time.perf_counter()
        summary = service.summarize(key)
        summaries.append(time.perf_counter() - start)
    subject = [arm for arm in summary.arms if arm.slot == "subject"]
    holdout = [summary.holdout] if summary.holdout is not None else []
    logged = sum(arm.decisions for arm in subject + holdout)
    clicked = sum(arm.event_counts.get("click", 0) for arm in subject + holdout)
    assert (logged, clicked) == (n, n), (logged, clicked)  # the summary saw the whole log
    engine.dispose()
    return StoreTimings(
        assign, assign_floor, outcomes, outcomes_floor, (summaries[0], summaries[1]), peak_rss_mb(), start_rss
    )


def measure_in_fresh_process(url: str, n: int, batch: int) -> StoreTimings:
    """``measure`` in a new interpreter, so ``ru_maxrss`` covers this database alone."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, url, n, batch).result()


@contextmanager
def throwaway_postgres(server_url: str) -> Iterator[str]:
    """A new database on the server of ``server_url``, dropped (with its connections) on exit."""
    import psycopg

    base = server_url.replace("postgresql+psycopg://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )
    server = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    name = f"sendlab_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server + "/postgres", autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield "postgresql+psycopg://" + server.split("://", 1)[1] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_rows(db_name: str, t: StoreTimings) -> list[list[object]]:
    """The report's rows for one database."""
    return [
        [
            db_name,
            "assign_batch (decisions)",
            t.assign.rows,
            t.assign.seconds,
            t.assign.rows_per_second,
            t.assign_floor.rows_per_second,
            t.assign.seconds / t.assign_floor.seconds,
            t.assign.peak_rss_mb,
        ],
        [
            db_name,
            "record_outcomes (clicks)",
            t.outcomes.rows,
            t.outcomes.seconds,
            t.outcomes.rows_per_second,
            t.outcomes_floor.rows_per_second,
            t.outcomes.seconds / t.outcomes_floor.seconds,
            t.outcomes.peak_rss_mb,
        ],
        [
            db_name,
            "summarize (1st / 2nd call)",
            t.assign.rows,
            f"{t.summarize_seconds[0]:.3g} / {t.summarize_seconds[1]:.3g}",
            "-",
            "-",
            "-",
            t.summarize_rss_mb,
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="recipients in the send (and click events)")
    parser.add_argument("--batch", type=int, default=100_000, help="recipients or events per call")
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL; a throwaway database is used")
    args = parser.parse_args()
    if args.n < 1 or args.batch < 1:
        parser.error("--n and --batch must be positive")
    rows: list[list[object]] = []
    start_rss = []
    with tempfile.TemporaryDirectory() as tmp:
        timings = measure_in_fresh_process(f"sqlite:///{Path(tmp) / 'store.db'}", args.n, args.batch)
        rows += table_rows("SQLite (WAL)", timings)
        start_rss.append(timings.start_rss_mb)
    if args.pg:
        with throwaway_postgres(args.pg) as url:
            timings = measure_in_fresh_process(url, args.n, args.batch)
        rows += table_rows("PostgreSQL", timings)
        start_rss.append(timings.start_rss_mb)
    headers = [
        "database",
        "operation",
        "rows",
        "seconds",
        "rows/s",
        "plain executemany rows/s",
        "x plain (time)",
        "peak RSS MB",
    ]
    table = format_table(headers, rows)
    command = f"python -m benchmarks.store --n {args.n} --batch {args.batch}" + (
        " --pg URL" if args.pg else ""
    )
    notes = (
        f"A multivariate design (3 x 2 variants, 5% holdout), {args.n:,} recipients in calls of "
        f"{args.batch:,}; then one click per decision through `record_outcomes` in calls of {args.batch:,} "
        "(decision lookup, attribution window, idempotent insert with RETURNING, one transaction per call). "
        "`plain executemany rows/s`: the same rows, read back from the service's tables (untimed), inserted "
        "by one executemany per batch into plain tables with the same columns, keys and indexes (partial "
        "ones with their predicates), in the same database and run; `x plain (time)` is the service's "
        "time over that. `summarize`: the SQL "
        "aggregation of the results over the whole log, twice. `peak RSS MB`: `ru_maxrss` of the fresh "
        f"process measuring that database, so far (after imports it was "
        f"{', '.join(f'{mb:.0f}' for mb in start_rss)} MB)."
    )
    write_section(
        "store", "Store throughput at scale (assign_batch, record_outcomes, summarize)", command, table, notes
    )


if __name__ == "__main__":
    main()
