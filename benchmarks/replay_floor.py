"""``replay_files`` on a 1,000,000-row log against the pandas/numpy floor, CSV and Parquet (issue 19).

The log is :mod:`benchmarks.replay`'s (10 variants, three features), written once as CSV and as
Parquet (not timed). Cases, each in its own process, in turn, ``--repeat`` times (medians reported):

- ``floor csv`` / ``floor parquet``: ``pandas.read_csv`` / ``pandas.read_parquet`` of the whole file and
  a numpy IPS of the uniform policy (``np.mean(reward / (K * propensity))``): reading plus the
  arithmetic, nothing validated;
- ``replay csv`` / ``replay parquet``: :func:`simulations.replay_files.replay_files` with Thompson
  sampling trained on the first half and ``ips, snips, dr`` on the second (what ``sendlab replay
  --policy`` runs, without the command line's start-up).

Run: ``python -m benchmarks.replay_floor [--rows N] [--repeat R] [--no-write]``; prints a table (wall and
CPU seconds, ratio to the floor of the same format) and writes the ``replay-floor`` section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K = 10
CASES = ("floor csv", "replay csv", "floor parquet", "replay parquet")


def run_case(case: str, folder: Path) -> dict[str, float]:
    kind, fmt = case.split()
    path = folder / f"log.{fmt}"
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    if kind == "floor":
        import pandas as pd

        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        value = float(np.mean(frame["reward"].to_numpy() / (K * frame["propensity"].to_numpy())))
    else:
        from simulations.candidates import CandidateSpec
        from simulations.column_maps import default_column_map
        from simulations.logs import log_columns
        from simulations.replay_files import replay_files

        columns = default_column_map(log_columns(path))
        result = replay_files(path, columns, candidate=CandidateSpec(name="thompson", policy="thompson"),
                              estimators=("ips", "snips", "dr"))
        value = result.replay.candidates[0].estimates[0].value
    return {"wall": time.perf_counter() - start_wall, "cpu": time.process_time() - start_cpu, "value": value}


def _child_env(folder: Path) -> dict[str, str]:
    """The cases' environment: Python's bytecode cache on, in ``folder`` (so SendLab's modules are compiled
    once, as after an install, whatever the caller's ``PYTHONDONTWRITEBYTECODE``; nothing is written to
    the repository)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}


def _run(case: str, folder: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.replay_floor", "--case", case, "--folder",
                          str(folder)], check=True, capture_output=True, text=True, env=_child_env(folder))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.folder)))
        return
    from benchmarks.replay import write_log
    from benchmarks.report import format_table, write_section

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_log(folder / "log.parquet", args.rows)
        import pandas as pd

        pd.read_parquet(folder / "log.parquet").to_csv(folder / "log.csv", index=False)
        for case in CASES:  # warm-up, not timed: bytecode compiled, both files in the page cache
            _run(case, folder)
        load_before = os.getloadavg()[0]
        times: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
        for _ in range(args.repeat):
            for case in CASES:
                times[case].append(_run(case, folder))
        load_after = os.getloadavg()[0]

    def median(case: str, key: str) -> float:
        return float(np.median([t[key] for t in times[case]]))

    rows, ratios = [], {}
    for case in CASES:
        floor = "floor " + case.split()[1]
        wall, cpu = median(case, "wall"), median(case, "cpu")
        ratios[case] = (wall / median(floor, "wall"), cpu / median(floor, "cpu"))
        rows.append([case, f"{args.rows:,}", f"{wall:.2f}", f"{ratios[case][0]:.2f}x", f"{cpu:.2f}",
                     f"{ratios[case][1]:.2f}x"])
    table = format_table(["case", "rows", "seconds", "vs floor", "CPU seconds", "CPU vs floor"], rows)
    values = {t["value"] for case in ("replay csv", "replay parquet") for t in times[case]}
    same = len(values) == 1
    csv, parquet = ratios["replay csv"], ratios["replay parquet"]
    met = all(r <= 1.5 for r in (*csv, *parquet))
    notes = (
        f"Medians of {args.repeat} runs, each case in its own process, in turn, after one untimed run of "
        "each (both files in the page cache, and Python's bytecode cache on for every case, in a temporary "
        "folder: SendLab's modules are compiled once, as after an install). Each case's time includes its "
        "imports: pandas for the floor; pyarrow, numpy.random, pydantic and SendLab's modules for the "
        "replay, which imports neither pandas nor scipy. The log is `benchmarks.replay`'s (10 variants, "
        "three features) as CSV and as Parquet. The floor reads the whole file with pandas and takes a "
        "numpy IPS of the uniform policy; the replay is `simulations.replay_files.replay_files` with "
        "Thompson sampling trained on the first half and `ips, snips, dr` on the second (no command-line "
        "start-up): it also checks every row, trains, fits the reward model on a sample of at most "
        f"200,000 rows and predicts for {args.rows - args.rows // 2:,}. Its IPS estimate is "
        + ("the same from both files in every run" if same else f"NOT the same in all runs: {sorted(values)}")
        + f". Goal: within 1.5x of the floor for both formats: **{'met' if met else 'missed'}** (CSV "
        f"{csv[0]:.2f}x wall and {csv[1]:.2f}x CPU, Parquet {parquet[0]:.2f}x and {parquet[1]:.2f}x). "
        f"Load average {load_before:.1f} when the timed runs began and {load_after:.1f} when they ended, "
        "on two cores: read the ratios, and the CPU seconds (the process's own) rather than the wall seconds."
    )
    if args.no_write:
        print(table)
        print(notes)
        return
    title = f"`replay_files` on {args.rows:,} logged sends against the pandas/numpy floor (issue 19)"
    rows_option = f" --rows {args.rows}" if args.rows != 1_000_000 else ""
    command = f"python -m benchmarks.replay_floor{rows_option} --repeat {args.repeat}"
    write_section("replay-floor", title, command, table, notes)


if __name__ == "__main__":
    main()
