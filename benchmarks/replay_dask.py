"""``sendlab replay --dask`` against the one-process streamed replay on a log cut into day files.

The log is :mod:`benchmarks.replay`'s (10 variants, three features, Thompson sampling trained on the
first half, DM and DR with a logistic reward model fitted on a sample of it), written as ``days``
Parquet files ``day=NN/part-0.parquet``. Each case runs in its own process and prints one JSON line:

- ``streamed``: :func:`simulations.streaming.replay_source` over the
  :class:`~simulations.parquet_parts.PartitionedSource`;
- ``dask local[N]``: the same with the evaluation's chunks run on a ``LocalCluster`` of N single-threaded
  worker processes (:func:`simulations.dask_replay.dask_runner`); the cluster's start is timed apart,
  and each worker reports its own peak resident memory.

The parent checks that both give the same report (every estimate, standard error and interval) and
writes the "replay_dask" section of BENCHMARKS.md.

Run: ``python -m benchmarks.replay_dask [--rows N] [--days D] [--workers N]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.replay import K, _chunk_frame, _peak_rss_mb


def write_days(folder: Path, rows: int, days: int) -> None:
    """The log, ``rows // days`` rows a day (the last day takes the rest), one file per day."""
    per_day = rows // days
    for day in range(days):
        count = per_day if day < days - 1 else rows - per_day * (days - 1)
        (folder / f"day={day:02d}").mkdir(parents=True)
        _chunk_frame(day, count).to_parquet(folder / f"day={day:02d}" / "part-0.parquet",
                                            row_group_size=100_000)


def run_case(workers: int, folder: Path, chunk_rows: int) -> dict[str, object]:
    from simulations.candidates import CandidateSpec
    from simulations.column_maps import default_column_map
    from simulations.log_files import log_columns
    from simulations.parquet_parts import PartitionedSource, parquet_files
    from simulations.streaming import ReplayRequest, replay_source

    columns = default_column_map(log_columns(parquet_files(folder)[0]),
                                 actions=tuple(f"v{a}" for a in range(K)))
    source = PartitionedSource.open(folder, columns, chunk_rows=chunk_rows)
    request = ReplayRequest(candidate=CandidateSpec(policy="thompson"),
                            estimators=("ips", "snips", "dm", "dr"))
    if not workers:
        start = time.perf_counter()
        report = replay_source(source, request).to_dict()
        return {"case": "streamed", "seconds": time.perf_counter() - start, "report": report,
                "client_peak_mb": _peak_rss_mb(), "worker_peak_mb": []}
    from simulations.dask_replay import dask_client, dask_runner

    begin = time.perf_counter()
    with dask_client(f"local[{workers}]") as client:
        started = time.perf_counter()
        report = replay_source(source, request, run_chunks=dask_runner(client)).to_dict()
        seconds = time.perf_counter() - started
        peaks = sorted(client.run(_peak_rss_mb).values())
    return {"case": f"dask local[{workers}]", "seconds": seconds, "cluster_start_seconds": started - begin,
            "report": report, "client_peak_mb": _peak_rss_mb(), "worker_peak_mb": peaks}


def _estimate(report: dict[str, Any], name: str) -> float:
    return next(e["value"] for e in report["candidates"][0]["estimates"] if e["estimator"] == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--case", type=int, help="run one case here (0: streamed, N: N Dask workers)")
    parser.add_argument("--log", type=Path, help="the generated log's folder (for --case)")
    parser.add_argument("--write-log", type=Path, help="only generate the log here")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.write_log:
        write_days(args.write_log, args.rows, args.days)
        return
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.log, args.chunk_rows)))
        return
    from benchmarks.report import format_table, write_section

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "log"
        base = [sys.executable, "-m", "benchmarks.replay_dask", "--rows", str(args.rows), "--days",
                str(args.days), "--chunk-rows", str(args.chunk_rows)]
        subprocess.run([*base, "--write-log", str(folder)], check=True)
        for case in (0, args.workers):
            out = subprocess.run([*base, "--case", str(case), "--log", str(folder)], check=True,
                                 capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print({k: v for k, v in results[-1].items() if k != "report"}, flush=True)
    same = results[0]["report"] == results[1]["report"]
    rows = [[r["case"], f"{r['report']['logs']['rows_read']:,}", r["seconds"],
             r.get("cluster_start_seconds", "-"),
             r["client_peak_mb"], " / ".join(f"{p:,.0f}" for p in r["worker_peak_mb"]) or "-",
             f"{_estimate(r['report'], 'ips'):.6f}", f"{_estimate(r['report'], 'dr'):.6f}"] for r in results]
    headers = ["case", "rows", "seconds", "cluster start (s)", "client peak RSS (MB)",
               "peak RSS per worker (MB)", "IPS value", "DR value"]
    table = format_table(headers, rows)
    notes = (
        f"The same log as `replay` ({K} variants, three features, Thompson sampling trained on the first "
        f"half, logistic reward model for DM and DR), cut into {args.days} day files; chunks of "
        f"{args.chunk_rows:,} rows. Reports identical (every estimate, standard error and interval, "
        f"compared with `==`): **{'yes' if same else 'NO'}**. The client trains the candidate and fits "
        "the reward model in both cases (the first half is read there); the Dask workers evaluate the "
        "second half's chunks. Peak RSS is each process's `VmHWM`, interpreter and libraries included. "
        "The machine has two cores shared with other jobs: read the seconds as a ratio."
    )
    command = (f"python -m benchmarks.replay_dask --rows {args.rows} --days {args.days} "
               f"--workers {args.workers}")
    if args.no_write:
        print(table)
        print(notes)
    else:
        write_section("replay_dask", "Replay on Dask: a partitioned log, the streamed replay beside it",
                      command, table, notes)


if __name__ == "__main__":
    main()
