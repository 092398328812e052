"""Posts of one outcome each, as an email platform's webhooks send them: ``record_outcomes`` of a single
click against the floor, a plain one-row insert of the same outcome row in a transaction of its own.

On each database (SQLite, WAL in a temp file; PostgreSQL with ``--pg``, a throwaway database) a
Thompson-sampling experiment logs ``--n`` decisions (untimed), then each gets one click posted alone
through ``ExperimentService.record_outcomes`` (the service: stored once, attributed, counted in the
rollups, with its locks), then the very same rows are inserted one by one into a plain table of the
outcomes' columns (the floor). Alternated in rounds, so that both sides share the machine's moments.
CPU is the process's (the database server's work on PostgreSQL is not in it); wall is per post.

Run: ``python -m benchmarks.outcome_posts [--n 2000] [--rounds 3] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import MetaData, select

from benchmarks.report import format_table, write_section
from benchmarks.store import plain_copy, throwaway_postgres
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine, outcomes_table

SPEC = {
    "key": "posts",
    "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
    "design": {"type": "bandit", "policy": "thompson"},
    "reward": {"events": {"click": 1.0}},
    "consent": {"attribute": None},
}


def _timed(posts: Sequence[Callable[[], None]]) -> tuple[float, float, float]:
    """CPU ms per post, and the median and 99th percentile of the wall ms per post."""
    walls = []
    cpu = time.process_time()
    for post in posts:
        start = time.perf_counter()
        post()
        walls.append(1000 * (time.perf_counter() - start))
    cpu_ms = 1000 * (time.process_time() - cpu) / len(posts)
    walls.sort()
    return cpu_ms, statistics.median(walls), walls[int(0.99 * (len(walls) - 1))]


def measure(url: str, n: int, rounds: int) -> list[list[object]]:
    """Rows of the table for the database at ``url``: per round, the service and the floor."""
    engine = make_engine(url)
    create_tables(engine)
    metadata = MetaData()
    plain = plain_copy(outcomes_table, "plain_outcomes", metadata)
    metadata.create_all(engine)
    service = ExperimentService(engine, seed=1)
    service.create(parse_spec(SPEC))
    decided = service.assign_batch("posts", [(f"r{i}", {}) for i in range(n * rounds + 50)])
    ids = [d.decision_id for d in decided]
    now = datetime.now(UTC)
    for i in range(50):  # warm the pool and the statement caches, untimed
        service.record_outcomes([OutcomeEvent(f"warm{i}", ids[i], "click", None, now)])
    rows: list[list[object]] = []
    for r in range(rounds):
        part = ids[50 + r * n: 50 + (r + 1) * n]
        events = [OutcomeEvent(f"c{d}", d, "click", None, now) for d in part]
        mine = _timed([lambda e=e: service.record_outcomes([e]) for e in events])
        with engine.connect() as conn:
            stored = [dict(row) for row in conn.execute(
                select(outcomes_table).where(outcomes_table.c.event_id.in_([e.event_id for e in events]))
            ).mappings()]

        def insert(row: dict[str, object]) -> None:
            with engine.begin() as conn:
                conn.execute(plain.insert(), [row])

        floor = _timed([lambda row={k: v for k, v in s.items() if k != "id"}: insert(row) for s in stored])
        figures = [round(x, 3) for x in (*mine, *floor)]
        rows.append([engine.dialect.name, r + 1, n, *figures,
                     round(mine[0] / floor[0], 2), round(mine[1] / floor[1], 2)])
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="posts per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default="", help="PostgreSQL server to make a throwaway database on")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += measure(f"sqlite:///{tmp}/posts.db", args.n, args.rounds)
    if args.pg:
        with throwaway_postgres(args.pg) as url:
            rows += measure(url, args.n, args.rounds)
    headers = ["store", "round", "posts", "service CPU ms", "service p50 ms", "service p99 ms",
               "floor CPU ms", "floor p50 ms", "floor p99 ms", "CPU / floor", "p50 / floor"]
    command = "python -m benchmarks.outcome_posts " + " ".join(
        f"--{k} {v}" for k, v in (("n", args.n), ("rounds", args.rounds), ("pg", args.pg)) if v)
    notes = ("The service's post reads the decision it names (locked on PostgreSQL), its attributed outcomes "
             "before the insert, inserts the outcome ignoring a duplicate id and adds its change to the "
             "rollups, in one transaction; the floor inserts the stored row and nothing else.")
    table = format_table(headers, rows)
    write_section("outcome-posts", "Posts of one outcome (webhooks)", command, table, notes)


if __name__ == "__main__":
    main()
