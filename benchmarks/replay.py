"""Off-policy replay of 10,000,000 logged sends with features and 10 variants: seconds and peak memory.

One log is generated first (not timed) as a Parquet file in SendLab's own columns: ``action`` (10
variants), ``propensity`` (the logging policy depends on the device), ``reward`` (clicks whose rate
depends on the variant, the device and the recency), and three features, ``context.device``,
``context.segment`` and ``context.recency_days``. The candidate is Thompson sampling trained on the
first half of the log and evaluated on the second; DM and DR use a logistic reward model fitted on a
sample of the first half. Each case runs in its own process (so its peak resident memory is its own)
and prints one JSON line; the parent prints the table and writes the "replay" section of BENCHMARKS.md.

Cases:

- ``numpy_ips``: the floor, a plain numpy one-liner of the same IPS on arrays already in memory
  (``np.mean(pi[a] / propensity * reward)`` over the second half, ``pi`` the trained Thompson's
  distribution), not exact, no interval, no validation, no features;
- ``stream ips,snips``: :func:`simulations.replay_files.replay_files`: reading in chunks, validation,
  training the candidate, its probabilities and the exact sums of IPS and SNIPS with lifts;
- ``stream ips,snips,dm,dr``: the same plus fitting the reward model and predicting every chunk;
- ``sendlab replay``: the command line on the file (``--policy thompson.yaml``, the four estimators),
  its peak RSS measured as a child process: the figure against the 2 GB goal;
- ``dask``: :func:`simulations.dask_estimation.estimate_dask` over ``dask.dataframe.read_parquet`` of the
  second half with the same trained candidate and reward model (a local cluster in threads);
- ``in memory (old path)``: :func:`simulations.logs.read_logs` and
  :func:`simulations.replay.replay_report` holding the whole log in memory, at most 1,000,000 rows.

Run: ``python -m benchmarks.replay [--rows N] [--chunk-rows M]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

K = 10
SEED = 2026
DEVICES = np.array(["ios", "android", "web"])
SEGMENTS = np.array(["new", "loyal", "lapsed", "vip"])
IN_MEMORY_ROWS = 1_000_000
CASES = ("numpy_ips", "stream ips,snips", "stream ips,snips,dm,dr", "sendlab replay", "dask",
         "in memory (old path)")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it starts afresh at exec,
    so a parent's size does not leak into it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _children_peak_rss_mb() -> float:
    """The largest peak resident memory of the waited-for children (an upper bound: a child's count
    starts at this process's resident memory when it was forked)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _chunk_frame(index: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng([SEED, index])
    device = rng.choice(3, rows, p=[0.45, 0.35, 0.2])
    segment = rng.choice(4, rows, p=[0.3, 0.4, 0.2, 0.1])
    recency = np.round(rng.exponential(15.0, rows), 1)
    logging = np.stack([np.linspace(1.0, 3.0, K), np.linspace(3.0, 1.0, K), np.ones(K)])
    logging /= logging.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(logging[device], axis=1)
    actions = np.minimum((rng.random(rows)[:, None] > cumulative).sum(axis=1), K - 1)
    rate = (0.02 + 0.003 * actions + 0.02 * ((device == 0) & (actions % 3 == 0))
            - 0.0004 * recency * (actions >= 5))
    rewards = (rng.random(rows) < np.clip(rate, 0.001, 1)).astype(float)
    return pd.DataFrame({
        "decision_id": np.arange(index * rows, (index + 1) * rows),
        "action": np.array([f"v{a}" for a in range(K)])[actions],
        "propensity": logging[device, actions],
        "reward": rewards,
        "context.device": DEVICES[device],
        "context.segment": SEGMENTS[segment],
        "context.recency_days": recency,
    })


def write_log(path: Path, rows: int) -> None:
    """The benchmark's log in ten row groups (at most 1,000,000 rows each)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    group = min(1_000_000, max(1, rows // 10))
    writer = None
    for index, start in enumerate(range(0, rows, group)):
        table = pa.Table.from_pandas(_chunk_frame(index, min(group, rows - start)), preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=group)
    assert writer is not None
    writer.close()


def _trained_thompson(path: Path, split: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from bandit import make_policy

    table = pq.read_table(path, columns=["action", "propensity", "reward"])
    names = pa.array([f"v{a}" for a in range(K)])
    actions = pc.index_in(table.column("action"), value_set=names).to_numpy()
    propensities = table.column("propensity").to_numpy()
    rewards = table.column("reward").to_numpy()
    policy = make_policy("thompson", K, seed=0)
    policy.update(split, actions[:split], rewards[:split], propensities[:split])
    return policy, actions, propensities, rewards


def run_case(case: str, path: Path, rows: int, chunk_rows: int, folder: Path) -> dict[str, object]:
    from simulations.candidates import CandidateSpec
    from simulations.column_maps import default_column_map
    from simulations.log_files import log_columns

    columns = default_column_map(log_columns(path), actions=tuple(f"v{a}" for a in range(K)))
    candidate = CandidateSpec(policy="thompson")
    split = rows // 2
    baseline = _peak_rss_mb()
    peak: float | None = None
    startup = 0.0
    if case == "numpy_ips":
        policy, actions, propensities, rewards = _trained_thompson(path, split)
        pi = policy.probabilities(1)[0]
        a, p, r = actions[split:], propensities[split:], rewards[split:]
        start = time.perf_counter()
        value = float(np.mean(pi[a] / p * r))
        seconds = time.perf_counter() - start
    elif case.startswith("stream"):
        from simulations.replay_files import replay_files
        from simulations.streaming import ReplayRequest

        estimators = tuple(case.split()[1].split(","))
        start = time.perf_counter()
        request = ReplayRequest(candidate=candidate, estimators=estimators)  # type: ignore[arg-type]
        result = replay_files(path, columns, request, chunk_rows=chunk_rows)
        seconds = time.perf_counter() - start
        value = next(e.value for e in result.replay.candidates[0].estimates if e.estimator == "ips")
    elif case == "sendlab replay":
        (folder / "thompson.yaml").write_text("policy: thompson\ntrain_fraction: 0.5\n")
        binary = Path(sys.executable).parent / "sendlab"
        start = time.perf_counter()
        subprocess.run([str(binary), "replay", "--help"], check=True, capture_output=True)
        startup = time.perf_counter() - start  # starting the command line: the interpreter and its imports
        command = [str(binary), "replay", "--logs", str(path), "--policy", str(folder / "thompson.yaml"),
                   "--estimators", "ips,snips,dm,dr", "--chunk-rows", str(chunk_rows), "--json"]
        start = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        out = json.loads(done.stdout)
        value = next(e["value"] for e in out["candidates"][0]["estimates"] if e["estimator"] == "ips")
        peak = _children_peak_rss_mb()
    elif case == "dask":
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        from simulations.dask_estimation import estimate_dask
        from simulations.load_reports import merge_reports
        from simulations.logs import iter_logs
        from simulations.replay import probabilities_from_policy
        from simulations.reward_model import fit_reward_model

        policy = _trained_thompson(path, split)[0]
        first = iter_logs(path, columns, chunk_rows=chunk_rows, stop_row=min(200_000, split),
                          frame_contexts=True)
        model = fit_reward_model(merge_reports(first).data)  # not timed: fitted on the first 200,000 rows
        cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
        with cluster, Client(cluster):
            frame = dd.read_parquet(path, columns=columns.columns, split_row_groups=True)
            frame = frame.partitions[frame.npartitions // 2:] if frame.npartitions > 1 else frame
            start = time.perf_counter()
            total = estimate_dask(frame, columns, lambda data: probabilities_from_policy(policy, data),
                                  ("ips", "snips", "dm", "dr"), reward_model=model)
            seconds = time.perf_counter() - start
        value = total.states["ips"].value
    elif case == "in memory (old path)":
        from simulations.logs import read_logs
        from simulations.replay import replay_report

        rows = min(rows, IN_MEMORY_ROWS)
        small = folder / "small.parquet"
        write_log(small, rows)
        baseline = _peak_rss_mb()
        start = time.perf_counter()
        logs = read_logs(small, columns, chunk_rows=chunk_rows)
        report = replay_report(logs.data, {"thompson": candidate}, train_fraction=0.5)
        seconds = time.perf_counter() - start
        value = next(e.value for e in report.candidates[0].estimates if e.estimator == "ips")
    else:
        raise SystemExit(f"unknown case {case!r}")
    return {"case": case, "rows": rows, "seconds": seconds,
            "peak_rss_mb": _peak_rss_mb() if peak is None else peak, "baseline_rss_mb": baseline,
            "ips": value, "startup_seconds": startup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--case", choices=CASES, help="run one case in this process and print JSON")
    parser.add_argument("--log", type=Path, help="the generated log (for --case)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--write-log", type=Path, help="only generate the log here")
    parser.add_argument("--measured", type=Path,
                        help="JSON lines of cases already measured in an interrupted run (not run again)")
    args = parser.parse_args()
    if args.write_log:
        write_log(args.write_log, args.rows)
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.log, args.rows, args.chunk_rows, args.log.parent)))
        return
    from benchmarks.report import format_table, write_section

    results = []
    if args.measured:
        results = [json.loads(line) for line in args.measured.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sends.parquet"
        # in a child process, so that this one stays small: a child's ru_maxrss starts at its parent's size
        subprocess.run([sys.executable, "-m", "benchmarks.replay", "--rows", str(args.rows),
                        "--write-log", str(path)], check=True)
        for case in CASES:
            if any(r["case"] == case and r["rows"] == args.rows for r in results):
                continue
            command = [sys.executable, "-m", "benchmarks.replay", "--case", case, "--rows", str(args.rows),
                       "--chunk-rows", str(args.chunk_rows), "--log", str(path)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    results.sort(key=lambda r: CASES.index(r["case"]))
    floor = results[0]["seconds"] / results[0]["rows"]
    rows = [
        [r["case"], f"{r['rows']:,}", r["seconds"], f"{r['rows'] / r['seconds']:,.0f}",
         f"{r['seconds'] / r['rows'] / floor:,.0f}x", f"{r['peak_rss_mb']:,.0f}", f"{r['ips']:.6f}"]
        for r in results
    ]
    headers = ["case", "rows", "seconds", "rows/s", "time per row vs floor", "peak RSS (MB)", "IPS value"]
    table = format_table(headers, rows)
    cli = next(r for r in results if r["case"] == "sendlab replay")
    verdict = "met" if cli["peak_rss_mb"] < 2048 else "NOT met"
    in_memory = next(r for r in results if r["case"].startswith("in memory"))
    startup = cli["startup_seconds"]
    notes = (
        f"Goal: `sendlab replay` on {args.rows:,} logged sends with features in under 2 GB of memory: "
        f"**{verdict}** (peak RSS {cli['peak_rss_mb']:,.0f} MB). {K} variants, three features (two "
        "categorical, one numeric), a Thompson sampling candidate trained on the first half and evaluated "
        "on the second, a logistic reward model fitted on a 200,000-row sample of the first half for DM "
        f"and DR; chunks of {args.chunk_rows:,} rows; each case in its own process (peak RSS is the "
        "process's `VmHWM`, including the interpreter and imported libraries, about "
        f"{min(r['baseline_rss_mb'] for r in results):,.0f} MB; for `sendlab replay` it is the child's "
        "`ru_maxrss`, counted from the benchmark process's own size when it started the command). "
        "`numpy_ips` times only the one-liner over the evaluated half (the floor: no reading, validation, "
        "training, interval or exact sums); the `stream` cases and `sendlab replay` include reading the "
        "file (once), validating every row, training, the candidate's "
        "probabilities, the reward model and the exact mergeable sums with their paired lifts (`sendlab "
        f"replay` also starts the command line: {startup:.1f} s for `sendlab replay --help` in the same "
        "run); `dask` times "
        "the estimation of the second half only (candidate and model given). The old path, the whole log "
        f"in memory, is shown at {in_memory['rows']:,} rows; its memory grows with the log."
    )
    command = f"python -m benchmarks.replay --rows {args.rows} --chunk-rows {args.chunk_rows}"
    if args.no_write:
        print(table)
        print(notes)
        return
    title = f"Off-policy replay: {args.rows:,} logged sends with features"
    write_section("replay", title, command, table, notes)


if __name__ == "__main__":
    main()
