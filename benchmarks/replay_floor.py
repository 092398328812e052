"""``replay_files`` on a 1,000,000-row log against the pandas/numpy floor, CSV and Parquet (issue 19).

The log is :mod:`benchmarks.replay`'s (10 variants, three features), written once as CSV and as
Parquet (not timed). Cases, each in its own process, in turn, ``--repeat`` times (medians reported):

- ``floor csv`` / ``floor parquet``: ``pandas.read_csv`` / ``pandas.read_parquet`` of the whole file and
  a numpy IPS of the uniform policy (``np.mean(reward / (K * propensity))``): reading plus the
  arithmetic, nothing validated;
- ``replay csv`` / ``replay parquet``: :func:`simulations.replay_files.replay_files` with Thompson
  sampling trained on the first half and ``ips, snips, dr`` on the second (what ``sendlab replay
  --policy`` runs, without the command line's start-up).

Run: ``python -m benchmarks.replay_floor [--rows N] [--repeat R]``; prints a table (wall and CPU seconds,
ratio to the floor of the same format).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.folder)))
        return
    from benchmarks.replay import write_log

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_log(folder / "log.parquet", args.rows)
        import pandas as pd

        pd.read_parquet(folder / "log.parquet").to_csv(folder / "log.csv", index=False)
        times: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
        for _ in range(args.repeat):
            for case in CASES:
                out = subprocess.run([sys.executable, "-m", "benchmarks.replay_floor", "--case", case,
                                      "--folder", str(folder)], check=True, capture_output=True, text=True,
                                     env={**os.environ})
                times[case].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| case | rows | seconds | vs floor | CPU seconds | CPU vs floor |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        wall = float(np.median([t["wall"] for t in times[case]]))
        cpu = float(np.median([t["cpu"] for t in times[case]]))
        floor = "floor " + case.split()[1]
        floor_wall = float(np.median([t["wall"] for t in times[floor]]))
        floor_cpu = float(np.median([t["cpu"] for t in times[floor]]))
        print(f"| {case} | {args.rows:,} | {wall:.2f} | {wall / floor_wall:.2f}x | {cpu:.2f} | "
              f"{cpu / floor_cpu:.2f}x |")


if __name__ == "__main__":
    main()
