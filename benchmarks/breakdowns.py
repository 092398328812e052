"""What the breakdown rollups cost the writes and save the reads: a whole-send batch assigned and its
outcomes posted for a spec that records no attribute and for one that records six (three categories,
three numbers; every recorded attribute is a segment and a covariate, so each learnable decision adds
rows to ``rollup_segments`` and ``rollup_covariates`` beside ``rollup_adaptive``), then the segments,
the covariate sums and the adaptive sums read from the rollups beside the full scans of the log they
replaced.

Each write case is the median of ``--repeats`` batches of ``--n`` recipients; the reads are the median
of five, after all batches. SQLite (WAL, a temp file) always; PostgreSQL too with ``--pg URL`` (a
throwaway database on that server, dropped after).

Run: ``python -m benchmarks.breakdowns [--n 20000] [--repeats 3] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.report import format_table, write_section
from benchmarks.store import throwaway_postgres
from experiments.adaptive_reader import log_adaptive_sums, read_adaptive_log
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from experiments.store.breakdown_rollups import compiled_version
from experiments.store.breakdown_tables import stored_covariate_stats, stored_segment_stats
from experiments.store.segments import covariate_arm_stats, segment_arm_stats
from experiments.store.summaries import event_types

RECORDED = ["country", "device", "tier", "age", "recency_days", "spend_90d"]


def spec(key: str, record: list[str]) -> Any:
    return parse_spec({
        "key": key,
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        "design": {"type": "bandit", "policy": "thompson"},
        "reward": {"events": {"click": 1.0}, "guardrails": ["unsubscribe"]},
        "consent": {"missing": "allow"},
        "record": record,
    })


def context(i: int) -> dict[str, Any]:
    return {"country": ["US", "DE", "FR", "JP", "BR"][i % 5], "device": ["mobile", "desktop"][i % 2],
            "tier": i % 4 == 0, "age": 18 + i % 60, "recency_days": i % 365,
            "spend_90d": (i * 7919) % 10007 / 3}


def _median(f: Callable[[], Any], times: int = 5) -> tuple[float, Any]:
    out, seconds = None, []
    for _ in range(times):
        start = time.perf_counter()
        out = f()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), out


def measure(url: str, n: int, repeats: int) -> dict[str, float]:
    engine = make_engine(url)
    create_tables(engine)
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    service = ExperimentService(engine, clock=lambda: now, seed=1)
    figures: dict[str, float] = {}
    for case, record in (("plain", []), ("recorded", RECORDED)):
        service.create(spec(case, record))
        assign, post = [], []
        for r in range(repeats):
            recipients = [(f"r{r}-{i}", context(i)) for i in range(n)]
            start = time.perf_counter()
            decided = service.assign_batch(case, recipients)
            assign.append(time.perf_counter() - start)
            clicked = now + timedelta(minutes=1)
            events = [OutcomeEvent(f"{case}-{r}-{i}", d.decision_id, "click", None, clicked)
                      for i, d in enumerate(decided) if i % 3 == 0]
            start = time.perf_counter()
            service.record_outcomes(events)
            post.append(time.perf_counter() - start)
        figures[f"assign {case}"] = statistics.median(assign)
        figures[f"outcomes {case}"] = statistics.median(post)
    with engine.connect() as conn:
        compiled = compiled_version(conn, "recorded", 1)
        types = event_types(compiled)
        figures["segments rollups"], a = _median(
            lambda: stored_segment_stats(conn, "recorded", 1, "country", types))
        figures["segments scan"], b = _median(lambda: segment_arm_stats(conn, compiled, "country"))
        figures["covariate rollups"], _ = _median(
            lambda: stored_covariate_stats(conn, "recorded", 1, "spend_90d"))
        figures["covariate scan"], _ = _median(lambda: covariate_arm_stats(conn, compiled, "spend_90d"))
        figures["adaptive rollups"], _ = _median(lambda: read_adaptive_log(conn, compiled))
        figures["adaptive scan"], _ = _median(lambda: log_adaptive_sums(conn, compiled))
        assert {k: v.decisions for k, v in a.items()} == {k: v.decisions for k, v in b.items()}
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        results.append(("sqlite", measure(f"sqlite:///{Path(folder) / 'bench.db'}", args.n, args.repeats)))
    if args.pg:
        with throwaway_postgres(args.pg) as url:
            results.append(("postgresql", measure(url, args.n, args.repeats)))
    rows = []
    for db, f in results:
        rows.append([db, "assign batch (ms)", f["assign plain"] * 1e3, f["assign recorded"] * 1e3,
                     f["assign recorded"] / f["assign plain"]])
        rows.append([db, "outcomes post (ms)", f["outcomes plain"] * 1e3, f["outcomes recorded"] * 1e3,
                     f["outcomes recorded"] / f["outcomes plain"]])
        for read in ("segments", "covariate", "adaptive"):
            rows.append([db, f"{read} read (ms)", f[f"{read} scan"] * 1e3, f[f"{read} rollups"] * 1e3,
                         f[f"{read} rollups"] / f[f"{read} scan"]])
    table = format_table(["database", "what", "plain / scan", "6 recorded / rollups", "ratio"], rows)
    decisions = args.n * args.repeats
    write_section(
        "breakdowns", "Breakdown rollups: write cost and read saving",
        "python -m benchmarks.breakdowns " + " ".join(sys.argv[1:]), table,
        f"Writes: batches of {args.n:,} recipients (a third get a click), a spec recording no attribute "
        "beside one recording six. Reads: after "
        f"{decisions:,} decisions of the recording spec, the log's full scan beside the rollups "
        "(`country` segments, `spend_90d` covariate, the adaptive sums).",
    )


if __name__ == "__main__":
    main()
