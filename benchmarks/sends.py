"""What a ``send_id`` costs a whole-send batch: the same batch assigned without one, with a new one
(every recipient written with ``ON CONFLICT DO NOTHING`` and read back), and posted again (every
recipient a repeat: nothing written, the stored decisions answered).

Each case is the median of ``--repeats`` batches of ``--n`` recipients on a fresh experiment, in one
process. SQLite (WAL, a temp file) always; PostgreSQL too with ``--pg URL`` (a throwaway database is
created on that server and dropped after).

Run: ``python -m benchmarks.sends [--n 20000] [--repeats 3] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.store import throwaway_postgres
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

SPEC = {
    "key": "bench",
    "slots": {"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}},
    "design": {"type": "bandit", "policy": "thompson"},
    "reward": {"events": {"click": 1.0}},
}


def measure(url: str, n: int, repeats: int) -> dict[str, float]:
    engine = make_engine(url)
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    service.create(parse_spec(SPEC))
    times: dict[str, list[float]] = {"no send_id": [], "new send_id": [], "repeat": []}
    for r in range(repeats):
        recipients = [(f"r{r}-{i}", {}) for i in range(n)]
        for case, send_id in (("no send_id", None), ("new send_id", f"s{r}"), ("repeat", f"s{r}")):
            start = time.perf_counter()
            service.assign_batch("bench", recipients, send_id=send_id)
            times[case].append(time.perf_counter() - start)
    engine.dispose()
    return {case: statistics.median(t) for case, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(("sqlite", measure(f"sqlite:///{Path(folder) / 'bench.db'}", args.n, args.repeats)))
    if args.pg:
        with throwaway_postgres(args.pg) as url:
            rows.append(("postgresql", measure(url, args.n, args.repeats)))
    print("| database | n | no send_id (ms) | new send_id (ms) | repeat (ms) | new / none | repeat / none |")
    print("|---|---|---|---|---|---|---|")
    for db, t in rows:
        base = t["no send_id"]
        new, repeat = t["new send_id"], t["repeat"]
        print(f"| {db} | {args.n:,} | {base * 1e3:.0f} | {new * 1e3:.0f} | {repeat * 1e3:.0f} "
              f"| {new / base:.2f} | {repeat / base:.2f} |")


if __name__ == "__main__":
    main()
