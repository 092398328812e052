"""What the drift monitor's read costs: the stored drift rollups beside the full scan of the log.

The log of :mod:`benchmarks.analysis` (N decisions of a 3 x 2 design, 5% holdout, clicks, conversions
with revenue, unsubscribes), built by ``INSERT ... SELECT`` and made adaptive: the learnable decisions
spread over 10 policy versions, those of versions 1-9 learned by the next version. Its rollups are then
computed from the log (untimed, as the migration does). Timed in the same run, cold and warm (best of
3): ``read_drift_cells`` (what the drift block and the ``/metrics`` gauge read: the drift rollups) and
``log_drift_cells`` (the two ``GROUP BY`` over the log it read before, still what ``include_machine``
reads). The two must give the same cells.

Run: ``python -m benchmarks.drift_rollups [--decisions N] [--pg-url URL]`` (PostgreSQL is skipped, and
said so, when no server answers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from benchmarks.analysis import ADAPTIVE_SPEC, PG_DEFAULT, build_log, throwaway_postgres
from benchmarks.bulk_load import prepare_store
from benchmarks.report import format_table, write_section
from experiments.assignment import compile_experiment
from experiments.drift_reader import read_drift_cells
from experiments.rollup_deltas import within_tolerance
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from experiments.store.drift_rollups import log_drift_cells

POLICY_VERSIONS = 10


def _seconds(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _best(fn: Callable[[], Any], repeats: int = 3) -> float:
    return min(_seconds(fn)[0] for _ in range(repeats))


def measure(label: str, url: str, count: int) -> list[object]:
    """Build the log at ``url``; time both reads in this run."""
    engine = make_engine(url)
    create_tables(engine)
    info = ExperimentService(engine, seed=1).create(parse_spec(ADAPTIVE_SPEC))
    compiled = compile_experiment(info.spec, info.version)
    build_log(engine, compiled, count, policy_versions=POLICY_VERSIONS)
    with engine.begin() as conn:  # learned by the next snapshot, but the last version's decisions
        conn.execute(text("UPDATE decisions SET learned_version = policy_version + 1 "
                          f"WHERE policy_version < {POLICY_VERSIONS}"))
    prepare_store(engine)  # the rollups again, from the log as learned
    engine.dispose()
    engine = make_engine(url)  # a fresh pool: the first read of each is cold
    with engine.connect() as conn:
        rollup_cold, stored = _seconds(lambda: read_drift_cells(conn, compiled))
        scan_cold, scanned = _seconds(lambda: log_drift_cells(conn, compiled))
        rollup_warm = _best(lambda: read_drift_cells(conn, compiled))
        scan_warm = _best(lambda: log_drift_cells(conn, compiled))
    engine.dispose()
    same = [(c.key, c.decisions) for c in stored] == [(c.key, c.decisions) for c in scanned] and all(
        within_tolerance(a.reward_sum, b.reward_sum) and within_tolerance(a.reward_sum_squares,
                                                                          b.reward_sum_squares)
        for a, b in zip(stored, scanned, strict=True))
    return [label, f"{count:,}", len(stored), rollup_cold * 1e3, scan_cold * 1e3, scan_cold / rollup_cold,
            rollup_warm * 1e3, scan_warm * 1e3, scan_warm / rollup_warm, "yes" if same else "NO"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(measure("SQLite", f"sqlite:///{folder}/drift.db", args.decisions))
    notes = ""
    with throwaway_postgres(args.pg_url) as pg:
        if pg is None:
            notes = " PostgreSQL: no server answered, skipped."
        else:
            rows.append(measure("PostgreSQL", pg, args.decisions))
    table = format_table(
        ["store", "decisions", "cells", "rollups cold ms", "log scan cold ms", "scan / rollups cold",
         "rollups warm ms", "log scan warm ms", "scan / rollups warm", "same cells"], rows)
    write_section(
        "drift-rollups", "The drift monitor's read: drift rollups beside the log scan",
        f"python -m benchmarks.drift_rollups --decisions {args.decisions}", table,
        "The log of benchmarks.analysis (3 x 2 design, 5% holdout) spread over 10 policy versions, "
        "versions 1-9 learned. `rollups`: `read_drift_cells` (the `drift_rollups` table); `log scan`: "
        "`log_drift_cells`, the two GROUP BY over the log the monitor read before (and `include_machine` "
        "still reads). Cold: the first read on a fresh connection pool (the OS page cache stays warm); "
        "warm: best of 3. Compare ratios." + notes,
    )


if __name__ == "__main__":
    main()
