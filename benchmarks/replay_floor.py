"""``replay_files`` on a 1,000,000-row log against the pandas/numpy floor, CSV and Parquet (issue 19).

The log is :mod:`benchmarks.replay`'s (10 variants, three features), written once as CSV and as
Parquet (not timed). Cases, each in its own process:

- ``floor csv`` / ``floor parquet``: ``pandas.read_csv`` / ``pandas.read_parquet`` of the whole file and
  a numpy IPS of the uniform policy (``np.mean(reward / (K * propensity))``): reading plus the
  arithmetic, nothing validated;
- ``replay csv`` / ``replay parquet``: :func:`simulations.replay_files.replay_files` with Thompson
  sampling trained on the first half and ``ips, snips, dr`` on the second (what ``sendlab replay
  --policy`` runs, without the command line's start-up).

The cases run in interleaved rounds, so that a change of the machine's load falls on both sides of a
ratio: each round runs, for each format, the floor and the replay back to back (the floor first in
even rounds, the replay first in odd ones). Each round gives a ratio per format (replay / floor, wall
and CPU seconds); the table reports the median seconds, the median of the rounds' ratios and their
spread (lowest and highest).

Run: ``python -m benchmarks.replay_floor [--rows N] [--rounds R] [--no-write]``; prints a table and
writes the ``replay-floor`` section of BENCHMARKS.md.
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
FORMATS = ("csv", "parquet")
CASES = tuple(f"{kind} {fmt}" for fmt in FORMATS for kind in ("floor", "replay"))


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
        from simulations.log_files import log_columns
        from simulations.replay_files import replay_files
        from simulations.streaming import ReplayRequest

        columns = default_column_map(log_columns(path))
        request = ReplayRequest(candidate=CandidateSpec(name="thompson", policy="thompson"),
                                estimators=("ips", "snips", "dr"))
        result = replay_files(path, columns, request)
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


def round_order(index: int) -> list[str]:
    """The cases of round ``index``: per format, the floor then the replay in even rounds, the other way
    round in odd ones."""
    kinds = ("floor", "replay") if index % 2 == 0 else ("replay", "floor")
    return [f"{kind} {fmt}" for fmt in FORMATS for kind in kinds]


def summarise(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per case: median wall and CPU seconds; per replay case also the median, lowest and highest of the
    rounds' ratios to the floor of the same format (``wall_ratio``, ``wall_low``, ...)."""
    out: dict[str, dict[str, float]] = {}
    for case in CASES:
        fmt = case.split()[1]
        row = {key: float(np.median([r[case][key] for r in rounds])) for key in ("wall", "cpu")}
        for key in ("wall", "cpu"):
            ratios = [r[case][key] / r[f"floor {fmt}"][key] for r in rounds]
            row |= {f"{key}_ratio": float(np.median(ratios)), f"{key}_low": min(ratios),
                    f"{key}_high": max(ratios)}
        out[case] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.folder)))
        return
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
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
        rounds = []
        for index in range(args.rounds):
            rounds.append({case: _run(case, folder) for case in round_order(index)})
            done = ", ".join(f"{c} {r['wall']:.2f} s ({r['cpu']:.2f} CPU)" for c, r in rounds[-1].items())
            print(f"round {index + 1}/{args.rounds}: {done}", file=sys.stderr)
        load_after = os.getloadavg()[0]

    stats = summarise(rounds)
    def ratio(case: str, key: str) -> str:
        row = stats[case]
        if case.startswith("floor"):
            return "1.00x"
        return f"{row[key + '_ratio']:.2f}x ({row[key + '_low']:.2f}-{row[key + '_high']:.2f})"

    rows = [[case, f"{args.rows:,}", f"{stats[case]['wall']:.2f}", ratio(case, "wall"),
             f"{stats[case]['cpu']:.2f}", ratio(case, "cpu")] for case in CASES]
    table = format_table(["case", "rows", "seconds", "vs floor (spread)", "CPU seconds",
                          "CPU vs floor (spread)"], rows)
    values = {r[case]["value"] for r in rounds for case in ("replay csv", "replay parquet")}
    same = len(values) == 1
    csv, parquet = stats["replay csv"], stats["replay parquet"]
    met = all(s[f"{key}_ratio"] <= 1.5 for s in (csv, parquet) for key in ("wall", "cpu"))
    notes = (
        f"Medians of {args.rounds} interleaved rounds; in each round, for each format, the floor and the "
        "replay ran back to back, the floor first in even rounds and the replay first in odd ones, and the "
        "round's ratio is the replay's time over the floor's; the table gives the median of the rounds' "
        "ratios and, in brackets, the lowest and the highest. Each case runs in its own process, after one "
        "untimed run of each (both files in the page cache, and Python's bytecode cache on for every case, "
        "in a temporary folder: SendLab's modules are compiled once, as after an install). Each case's "
        "time includes its imports: pandas for the floor; pyarrow, numpy.random and SendLab's "
        "modules for the replay, which imports neither pandas, scipy nor pydantic. The log is "
        "`benchmarks.replay`'s "
        "(10 variants, three features) as CSV and as Parquet. The floor reads the whole file with pandas "
        "and takes a numpy IPS of the uniform policy; the replay is `simulations.replay_files.replay_files` "
        "with Thompson sampling trained on the first half and `ips, snips, dr` on the second (no "
        "command-line start-up): it also checks every row, trains, fits the reward model on a sample of at "
        f"most 200,000 rows and predicts for {args.rows - args.rows // 2:,}. Its IPS estimate is "
        + ("the same from both files in every run" if same else f"NOT the same in all runs: {sorted(values)}")
        + ". Goal: within 1.5x of the floor for both formats (median ratios): "
        f"**{'met' if met else 'missed'}** "
        f"(CSV {csv['wall_ratio']:.2f}x wall and {csv['cpu_ratio']:.2f}x CPU, Parquet "
        f"{parquet['wall_ratio']:.2f}x and {parquet['cpu_ratio']:.2f}x). Load average {load_before:.1f} "
        f"when the timed rounds began and {load_after:.1f} when they ended, on two cores: read the ratios, "
        "and the CPU seconds (the process's own) rather than the wall seconds."
    )
    if args.no_write:
        print(table)
        print(notes)
        return
    title = f"`replay_files` on {args.rows:,} logged sends against the pandas/numpy floor (issue 19)"
    rows_option = f" --rows {args.rows}" if args.rows != 1_000_000 else ""
    command = f"python -m benchmarks.replay_floor{rows_option} --rounds {args.rounds}"
    write_section("replay-floor", title, command, table, notes)


if __name__ == "__main__":
    main()
