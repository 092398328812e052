"""Audience features of 1,000,000 recipients from 10,000,000 events: seconds and peak memory.

One history is generated first (not timed) as a Parquet file in SendLab's columns, ten row groups:
recipients draw events in proportion to a Gamma-distributed activity; 15% of events are purchases
(Gamma amounts), the rest opens, clicks and bounces, over two years before ``as_of`` and a few days
after it. Each case runs in its own process (so its peak resident memory is its own) and prints one
JSON line; the parent prints the table and writes the "features" section of BENCHMARKS.md.

Cases:

- ``pandas groupby (RFM)``: the floor, plain pandas on the whole history in memory: read the file,
  keep the events up to ``as_of``, group by recipient for the last purchase, the purchases and their
  sum in the window, and the quintile scores by ``rank(method="min")``; no checks, no engagement counts;
- ``sendlab RFM (chunks)``: :func:`simulations.history.read_history` in chunks of 1,000,000 events,
  checked, :func:`experiments.features.totals.aggregate_history` (recency, frequency, monetary and the
  engagement counts per type and window), the feature table and the RFM scores;
- ``sendlab features compute --k 5``: the command line on the file writing one row per recipient to a
  Parquet file, with K-means (k = 5, fitted on 100,000 recipients, then every recipient assigned);
- ``sendlab features refresh --k 5 (SQLite)``: the same computation stored as a version of the feature
  table in a new SQLite store (one transaction, chunks of 10,000 rows); then, not timed with it, the rows
  of 10,000 random recipients are read by id as a send's batch reads them (``read_ms``, cold);
- ``... --horizon-days 30``: ``compute`` plus the conversion model (features as of 30 days earlier, 5-fold
  cross-validation on 200,000 sampled recipients, permutation importance) scoring every recipient.

Both RFM cases' recency, frequency, monetary and scores are compared recipient by recipient (``equal``).

Run: ``python -m benchmarks.features [--recipients N] [--events M]``.
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

SEED = 2026
AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
WINDOW_DAYS = 365
CHUNK_ROWS = 1_000_000
TYPES = np.array(["purchase", "open", "click", "bounce"])
CASES = ("pandas groupby (RFM)", "sendlab RFM (chunks)", "sendlab features compute --k 5",
         "sendlab features refresh --k 5 (SQLite)", "... --horizon-days 30")
#: Recipients whose stored rows are read by id after the refresh, as one batch of a send reads them.
READ_BATCH = 10_000


def _peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, which starts afresh at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def write_history(path: Path, recipients: int, events: int) -> None:
    """The benchmark's history, in row groups of at most 1,000,000 events."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    activity = rng.gamma(0.7, 1.0, recipients)
    cumulative = np.cumsum(activity / activity.sum())
    writer = None
    for start in range(0, events, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, events - start)
        who = np.minimum(np.searchsorted(cumulative, rng.random(rows)), recipients - 1)
        kinds = rng.choice(4, rows, p=[0.15, 0.55, 0.25, 0.05])
        seconds = rng.integers(-730 * 86_400, 5 * 86_400, rows)
        times = AS_OF.value + seconds * 10**9
        amounts = np.where(kinds == 0, np.round(rng.gamma(2.0, 30.0, rows), 2), np.nan)
        table = pa.table({
            "recipient_id": pa.array(pd.Series(who).map("r{:07d}".format).to_numpy(), pa.string()),
            "timestamp": pa.array(times, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "type": pa.array(TYPES[kinds], pa.string()),
            "amount": pa.array(amounts, pa.float64(), from_pandas=True),
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=CHUNK_ROWS)
    assert writer is not None
    writer.close()


def _pandas_rfm(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    frame = frame[frame["timestamp"] <= AS_OF]
    purchase = frame["type"] == "purchase"
    in_window = purchase & (frame["timestamp"] > AS_OF - pd.Timedelta(days=WINDOW_DAYS))
    frame = frame.assign(bought=in_window, spent=frame["amount"].where(in_window, 0.0),
                         purchased_at=frame["timestamp"].where(purchase))
    per = frame.groupby("recipient_id").agg(last=("purchased_at", "max"), frequency=("bought", "sum"),
                                            monetary=("spent", "sum"))
    per["recency_days"] = (AS_OF - per["last"]).dt.total_seconds() / 86_400
    n = len(per)
    goodness = {"r": -per["recency_days"].fillna(np.inf), "f": per["frequency"], "m": per["monetary"]}
    for name, values in goodness.items():
        per[name] = 1 + (5 * (values.rank(method="min") - 1) // n).astype(int)
    return per[["recency_days", "frequency", "monetary", "r", "f", "m"]]


def _sendlab_rfm(path: Path) -> pd.DataFrame:
    from experiments.features.rfm import rfm_scores
    from experiments.features.table import feature_table
    from experiments.features.totals import Cutoff, aggregate_history
    from simulations.history import read_history

    cutoff = Cutoff(AS_OF.value, WINDOW_DAYS, (30, 90), "purchase")
    (totals,) = aggregate_history(read_history(path, chunk_rows=CHUNK_ROWS), [cutoff])
    table = feature_table(totals, AS_OF, WINDOW_DAYS, (30, 90))
    scores = rfm_scores(table.recency_days, table.frequency, table.monetary)
    return pd.DataFrame({"recency_days": table.recency_days, "frequency": table.frequency,
                         "monetary": table.monetary, "r": scores.r, "f": scores.f, "m": scores.m},
                        index=pd.Index(table.recipient_ids, name="recipient_id"))


def run_case(case: str, path: Path, folder: Path) -> dict[str, object]:
    peak, extra = None, {}
    if case in CASES[:2]:
        start, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF)
        result = _pandas_rfm(path) if case == CASES[0] else _sendlab_rfm(path)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
        result.to_parquet(folder / f"rfm{CASES.index(case)}.parquet")
        recipients = len(result)
    else:
        binary = Path(sys.executable).parent / "sendlab"
        out = folder / "features.parquet"
        refresh = case == CASES[3]
        command = [str(binary), "features", "refresh" if refresh else "compute", str(path), "--as-of",
                   AS_OF.isoformat(), "--k", "5"]
        command += ["--db", f"sqlite:///{folder / 'store.db'}", "--json"] if refresh else ["--out", str(out)]
        if case == CASES[4]:
            command += ["--horizon-days", "30"]
        start = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
        peak = _children_peak_rss_mb()
        if refresh:
            stored = json.loads(done.stdout)
            recipients = stored["recipients"]
            extra["read_rows"], extra["read_ms"] = _read_stored(folder / "store.db", stored["version"])
        else:
            recipients = len(pd.read_parquet(out, columns=["recipient_id"]))
            print(done.stdout, file=sys.stderr)
    return {"case": case, "seconds": seconds, "cpu_seconds": cpu,
            "peak_rss_mb": _peak_rss_mb() if peak is None else peak, "recipients": recipients, **extra}


def _read_stored(store: Path, version: int) -> tuple[int, float]:
    """Milliseconds to read :data:`READ_BATCH` random stored recipients' rows by id (and how many)."""
    from sqlalchemy import text

    from experiments.store import make_engine
    from experiments.store.features import feature_attributes

    engine = make_engine(f"sqlite:///{store}")
    with engine.connect() as conn:
        sample = text(f"SELECT recipient_id FROM features ORDER BY random() LIMIT {READ_BATCH}")
        ids = list(conn.execute(sample).scalars())
    with engine.connect() as conn:
        start = time.perf_counter()
        found = feature_attributes(conn, version, ids)
        elapsed = (time.perf_counter() - start) * 1000
    assert len(found) == len(ids)
    return len(ids), elapsed


def _rfm_agreement(folder: Path) -> str:
    """How the two RFM cases agree: recency, frequency, r and f exactly; monetary to 1e-9; m exactly
    except where pandas' float sums split a tie that SendLab's exact sums keep."""
    pandas_rfm = pd.read_parquet(folder / "rfm0.parquet").sort_index()
    sendlab_rfm = pd.read_parquet(folder / "rfm1.parquet").sort_index()
    exact = pandas_rfm.index.equals(sendlab_rfm.index) and all(
        np.array_equal(pandas_rfm[c], sendlab_rfm[c], equal_nan=c == "recency_days")
        for c in ("recency_days", "frequency", "r", "f"))
    close = np.allclose(pandas_rfm["monetary"], sendlab_rfm["monetary"], rtol=1e-9, atol=0)
    differ = pandas_rfm["m"].to_numpy() != sendlab_rfm["m"].to_numpy()
    tied = sendlab_rfm["monetary"].duplicated(keep=False).to_numpy()
    if not (exact and close and (tied | ~differ).all()):
        return "NO"
    return (f"recency, frequency, r and f identical, monetary within 1e-9, m identical but for "
            f"{int(differ.sum())} recipient(s) whose exactly tied sums pandas' float addition splits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--case", choices=CASES, help="run one case in this process and print JSON")
    parser.add_argument("--history", type=Path, help="the generated history (for --case)")
    parser.add_argument("--write-history", type=Path, help="only generate the history here")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--skip-model", action="store_true", help="leave out the conversion-model case")
    args = parser.parse_args()
    if args.write_history:
        write_history(args.write_history, args.recipients, args.events)
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.history, args.history.parent)))
        return
    from benchmarks.report import format_table, write_section

    results = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.parquet"
        subprocess.run([sys.executable, "-m", "benchmarks.features", "--recipients", str(args.recipients),
                        "--events", str(args.events), "--write-history", str(path)], check=True)
        for case in CASES[:4] if args.skip_model else CASES:
            command = [sys.executable, "-m", "benchmarks.features", "--case", case, "--history", str(path)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(results[-1], flush=True)
        agreement = _rfm_agreement(Path(folder))
    floor = results[0]["seconds"]
    cpu_floor = results[0]["cpu_seconds"]
    rows = [[r["case"], f"{r['recipients']:,}", r["seconds"], f"{r['seconds'] / floor:.2f}x",
             r["cpu_seconds"], f"{r['cpu_seconds'] / cpu_floor:.2f}x", f"{r['peak_rss_mb']:,.0f}"]
            for r in results]
    headers = ["case", "recipients", "seconds", "vs pandas", "CPU seconds", "CPU vs pandas", "peak RSS (MB)"]
    table = format_table(headers, rows)
    notes = (f"{args.events:,} events of {args.recipients:,} recipients ({results[0]['recipients']:,} drew "
             "at least one; Parquet, ten row groups), read in "
             f"chunks of {CHUNK_ROWS:,}. The two RFM cases, recipient by recipient: {agreement}. "
             "CPU seconds are the case's own (user + system), which other work on the machine does not "
             "inflate as it does the wall-clock seconds. The pandas floor holds every event in memory; "
             "SendLab's memory grows with recipients (the running totals and a chunk), not events.")
    stored = next((r for r in results if "read_ms" in r), None)
    if stored is not None:
        compute = next(r for r in results if r["case"] == CASES[2])
        cpu, wall = stored["cpu_seconds"] - compute["cpu_seconds"], stored["seconds"] - compute["seconds"]
        notes += (f" `refresh` stores the {stored['recipients']:,} rows as one version in a new SQLite store "
                  f"where `compute` writes a Parquet file: {cpu:+,.1f} CPU seconds ({wall:+,.0f} s "
                  f"wall-clock); reading the stored rows of {stored['read_rows']:,} random recipients by id "
                  f"(as one batch of a send does, on a "
                  f"fresh connection) took {stored['read_ms']:,.0f} ms.")
    command = "python -m benchmarks.features"
    if (args.recipients, args.events) != (1_000_000, 10_000_000):
        command += f" --recipients {args.recipients} --events {args.events}"
    if args.skip_model:
        command += " --skip-model"
    if args.no_write:
        print(table)
        print(notes)
    else:
        title = f"Audience features: {args.recipients:,} recipients, {args.events:,} events"
        write_section("features", title, command, table, notes)


if __name__ == "__main__":
    main()
