"""What recording the learned reward costs the learning transaction.

Each learning batch stores, with its snapshot, the reward learned from in all: the previous snapshot's
plus the learned reward of the decisions the batch touched, after minus before it marked their outcomes
(:mod:`experiments.store.snapshot_summaries`): one read of the learned outcomes of the decisions whose
outcomes it marked, and one before the marks of the revised ones'. A Thompson bandit
gets ``--decisions`` decisions with clicks on a fifth of them, learned in batches of ``--batch``; then
late clicks on a tenth of the learned decisions, learned as revisions. The learning is timed whole and,
inside it, the two reads (the function that makes them, wrapped by a timer), on SQLite and PostgreSQL.

    python -m benchmarks.learning_bookkeeping [--decisions 20000] [--batch 1000] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

import experiments.learning as learning
from benchmarks.analysis import PG_DEFAULT, throwaway_postgres
from benchmarks.report import format_table, write_section
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

SPEC = {"key": "bookkeeping", "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "window_hours": 72}}


class Timed:
    """``fn`` wrapped so that the seconds spent in it add up in ``seconds``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def measure(label: str, url: str, n: int, batch: int) -> list[list[object]]:
    engine = make_engine(url)
    create_tables(engine)
    clock = Clock()
    service = ExperimentService(engine, clock=clock, seed=1)
    service.create(parse_spec(SPEC))
    rng = np.random.default_rng(2)
    decisions = service.assign_batch("bookkeeping", [(f"r{i}", {}) for i in range(n)])
    at = clock.now + timedelta(hours=1)
    service.record_outcomes([OutcomeEvent(f"c{i}", d.decision_id, "click", None, at)
                             for i, d in enumerate(decisions) if rng.random() < 0.2])
    clock.now += timedelta(hours=2)
    rows = []
    timer = Timed(learning.learned_reward_of)
    learning.learned_reward_of = timer
    try:
        for phase in ("decisions with their clicks", "late clicks (revisions)"):
            if phase.startswith("late"):
                late = [d for d in decisions if rng.random() < 0.1]
                service.record_outcomes([OutcomeEvent(f"late{i}", d.decision_id, "click", None, at)
                                         for i, d in enumerate(late)])
            timer.seconds = 0.0
            start = time.perf_counter()
            service.learn("bookkeeping", batch=batch)
            total = time.perf_counter() - start
            rows.append([label, phase, f"{n:,}", batch, total, timer.seconds, timer.seconds / total])
    finally:
        learning.learned_reward_of = timer.fn
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--pg-url", default=os.environ.get("SENDLAB_BENCH_PG_URL", PG_DEFAULT))
    args = parser.parse_args()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{os.path.join(tmp, 'learn.db')}"
        rows += measure("SQLite (WAL)", sqlite_url, args.decisions, args.batch)
    notes = []
    with throwaway_postgres(args.pg_url) as url:
        if url is None:
            notes.append(f"PostgreSQL skipped: no server answers at {args.pg_url}.")
        else:
            rows += measure("PostgreSQL", url, args.decisions, args.batch)
    headers = ["database", "learning", "decisions", "batch", "learning s", "recording the reward s", "share"]
    table = format_table(headers, rows)
    notes.insert(0, __doc__.split("\n\n")[1].replace("\n", " ") + " One run on a shared machine: compare "
                 "the shares.")
    command = "python -m benchmarks.learning_bookkeeping" + (
        f" --decisions {args.decisions}" if args.decisions != 20_000 else "") + (
        f" --batch {args.batch}" if args.batch != 1_000 else "")
    write_section("learning-bookkeeping", "Learning: what recording the learned reward costs", command,
                  table, "\n\n".join(notes))


if __name__ == "__main__":
    main()
