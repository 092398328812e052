"""Off-policy estimators over 10,000,000 logged rounds with 10 variants: seconds and peak memory.

Each case runs in its own process (so its peak resident memory is its own) and prints one JSON line;
the parent prints the table and writes the "replay" section of BENCHMARKS.md.

Cases:

- ``numpy_ips``: the floor, a plain numpy one-liner of IPS on arrays already in memory
  (``np.mean(pi_logged / propensity * reward)``), not exact, no interval, no validation;
- ``ips``, ``snips``, ``dr``: :func:`simulations.estimators.estimator_states` chunk by chunk (exact
  mergeable sums, variance, weight diagnostics), timing the estimator only (not the data generation);
- ``ips+snips+dr``: the three on each chunk, as ``sendlab replay`` runs them;
- ``validated``: the three plus :func:`simulations.logs.validate_frame` on each chunk given as a
  pandas frame with string variant ids (the loader's work), generation included;
- ``parquet``: the three from a Parquet file read in chunks by :func:`simulations.logs.iter_logs`
  (reading, validation and estimation timed; writing the file is not);
- ``dask``: the same as ``validated`` on Dask partitions (a local ``distributed`` cluster in threads,
  ``processes=False``), generation included.

Run: ``python -m benchmarks.replay [--rows N] [--chunk-rows M]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

K = 10
SEED = 2026


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _logging_distribution() -> np.ndarray:
    weights = np.linspace(1.0, 3.0, K)
    return weights / weights.sum()


def _target_distribution() -> np.ndarray:
    weights = np.linspace(3.0, 1.0, K) ** 2
    return weights / weights.sum()


def _chunk_arrays(index: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([SEED, index])
    logging = _logging_distribution()
    actions = rng.choice(K, size=rows, p=logging)
    rewards = (rng.random(rows) < 0.02 + 0.01 * (actions % 3)).astype(float)
    return actions, rewards, logging[actions]


def _chunk_frame(index: int, rows: int) -> pd.DataFrame:
    actions, rewards, propensities = _chunk_arrays(index, rows)
    names = np.array([f"v{a}" for a in range(K)], dtype=object)
    return pd.DataFrame({"variant": names[actions], "reward": rewards, "propensity": propensities})


class ConstantModel:
    """A fitted reward model stand-in: the same prediction for every row (its cost is not the point)."""

    def __init__(self) -> None:
        self.row = np.full(K, 0.03)

    def predict(self, contexts: object) -> np.ndarray:
        return np.broadcast_to(self.row, (len(contexts), K))


def _target(data: object) -> np.ndarray:
    return np.broadcast_to(_target_distribution(), (data.n, K))  # type: ignore[attr-defined]


def _chunks(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    return [(i, min(chunk_rows, rows - start)) for i, start in enumerate(range(0, rows, chunk_rows))]


def run_case(case: str, rows: int, chunk_rows: int) -> dict[str, float]:
    from simulations.chunked import summarize_chunk
    from simulations.data import LoggedData
    from simulations.estimators import estimator_states
    from simulations.logs import LoadReport, column_map, validate_frame

    names = tuple(f"v{a}" for a in range(K))
    model = ConstantModel()
    baseline = _peak_rss_mb()
    value = float("nan")
    if case == "numpy_ips":
        parts = [_chunk_arrays(i, m) for i, m in _chunks(rows, chunk_rows)]
        actions = np.concatenate([p[0] for p in parts])
        rewards = np.concatenate([p[1] for p in parts])
        propensities = np.concatenate([p[2] for p in parts])
        pi_logged = _target_distribution()[actions]
        del parts
        start = time.perf_counter()
        value = float(np.mean(pi_logged / propensities * rewards))
        seconds = time.perf_counter() - start
    elif case in ("ips", "snips", "dr", "ips+snips+dr"):
        estimators = ("ips", "snips", "dr") if case == "ips+snips+dr" else (case,)
        seconds = 0.0
        totals = {}
        for i, m in _chunks(rows, chunk_rows):
            actions, rewards, propensities = _chunk_arrays(i, m)
            data = LoggedData(np.zeros((m, 0)), actions, rewards, propensities, names)
            target = _target(data)
            start = time.perf_counter()
            q = model.predict(range(m)) if "dr" in estimators else None
            for name, state in estimator_states(estimators, data, target, q).items():
                totals[name] = totals[name] + state if name in totals else state
            seconds += time.perf_counter() - start
        value = totals[estimators[0]].value
    elif case == "validated":
        columns = column_map(action="variant", reward="reward", propensity="propensity", actions=names)
        start = time.perf_counter()
        total = None
        for i, m in _chunks(rows, chunk_rows):
            report: LoadReport = validate_frame(_chunk_frame(i, m), columns, names, first_row=i * chunk_rows)
            summary = summarize_chunk(report, _target, ("ips", "snips", "dr"), reward_model=model)
            total = summary if total is None else total + summary
        seconds = time.perf_counter() - start
        value = total.states["ips"].value
    elif case == "parquet":
        import tempfile
        from pathlib import Path

        import pyarrow as pa
        import pyarrow.parquet as pq

        from simulations.chunked import estimate_chunks
        from simulations.logs import iter_logs

        columns = column_map(action="variant", reward="reward", propensity="propensity", actions=names)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "sends.parquet"
            writer = None
            for i, m in _chunks(rows, chunk_rows):
                table = pa.Table.from_pandas(_chunk_frame(i, m), preserve_index=False)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            assert writer is not None
            writer.close()
            start = time.perf_counter()
            total = estimate_chunks(iter_logs(path, columns, chunk_rows=chunk_rows), _target,
                                    ("ips", "snips", "dr"), reward_model=model)
            seconds = time.perf_counter() - start
        value = total.states["ips"].value
    elif case == "dask":
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        from simulations.dask_estimation import estimate_dask

        columns = column_map(action="variant", reward="reward", propensity="propensity", actions=names)
        cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
        with cluster, Client(cluster):
            chunks = _chunks(rows, chunk_rows)
            frame = dd.from_map(lambda c: _chunk_frame(*c), chunks, meta=_chunk_frame(0, 1).iloc[:0])
            start = time.perf_counter()
            total = estimate_dask(frame, columns, _target, ("ips", "snips", "dr"), reward_model=model)
            seconds = time.perf_counter() - start
        value = total.states["ips"].value
    else:
        raise SystemExit(f"unknown case {case!r}")
    return {"case": case, "rows": rows, "seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
            "baseline_rss_mb": baseline, "ips": value}


CASES = ("numpy_ips", "ips", "snips", "dr", "ips+snips+dr", "validated", "parquet", "dask")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--case", choices=CASES, help="run one case in this process and print JSON")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.rows, args.chunk_rows)))
        return
    from benchmarks.report import format_table, write_section

    results = []
    for case in CASES:
        command = [sys.executable, "-m", "benchmarks.replay", "--case", case, "--rows", str(args.rows),
                   "--chunk-rows", str(args.chunk_rows)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    floor = results[0]["seconds"]
    rows = [
        [r["case"], f"{r['rows']:,}", r["seconds"], f"{r['rows'] / r['seconds']:,.0f}",
         f"{r['seconds'] / floor:,.0f}x", f"{r['peak_rss_mb']:,.0f}", f"{r['ips']:.6f}"]
        for r in results
    ]
    table = format_table(
        ["case", "rows", "seconds", "rows/s", "time vs numpy floor", "peak RSS (MB)", "IPS value"], rows
    )
    notes = (
        f"{K} variants, chunks of {args.chunk_rows:,} rows, each case in its own process (peak RSS includes "
        "the interpreter and imported libraries, about "
        f"{min(r['baseline_rss_mb'] for r in results):,.0f} MB). `ips`, `snips`, `dr` time the estimator "
        "only; `validated` and `dask` include generating each chunk as a pandas frame with string variant "
        "ids and validating it; `parquet` reads, validates and estimates from a file (writing it is not "
        "timed). The chunked estimates are exact sums (identical for any chunking) with variance and "
        "weight diagnostics; the numpy floor is a single float mean of arrays in memory."
    )
    command = f"python -m benchmarks.replay --rows {args.rows} --chunk-rows {args.chunk_rows}"
    write_section("replay", f"Off-policy replay: {args.rows:,} logged rounds", command, table, notes)


if __name__ == "__main__":
    main()
