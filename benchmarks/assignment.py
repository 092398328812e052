"""Decisions per second of ``ExperimentService.assign_batch`` for a send of 100,000 recipients.

Designs compared on the same database: a multivariate A/B design (sticky hash per slot), Thompson
sampling over the combinations, and a contextual linear Thompson policy; beside them the floor, a plain
``executemany`` insert of the same number of decision rows. After each send, one click per decision
is recorded (outcome ingestion) and the results are summarised. SQLite (WAL, a temp file) always;
PostgreSQL too when ``--pg URL`` is given.

Run: ``python -m benchmarks.assignment [--n 100000] [--pg postgresql+psycopg://postgres@127.0.0.1/db]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete

from benchmarks.report import format_table, write_section
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, decisions_table, make_engine

SLOTS = {
    "subject": {
        "variants": [
            {"id": v, "content": f"Subject {v}", "features": {"tone": v}}
            for v in ("plain", "urgent", "personal")
        ]
    },
    "cta": {"variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]},
}
DESIGNS: dict[str, dict[str, Any]] = {
    "multivariate (hash)": {"type": "multivariate"},
    "bandit thompson": {"type": "bandit", "policy": "thompson"},
    "contextual linear_ts": {"type": "contextual", "policy": "linear_ts", "context": ["device", "segment"]},
}


def recipients(n: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    device = rng.choice(["mobile", "desktop"], n)
    segment = rng.choice(["new", "loyal", "lapsed"], n)
    return [
        (f"user-{seed}-{i}", {"device": str(device[i]), "segment": str(segment[i]), "consent": True})
        for i in range(n)
    ]


def plain_insert(url: str, n: int) -> float:
    """Seconds to insert ``n`` decision-shaped rows with one executemany (the floor)."""
    engine = make_engine(url)
    create_tables(engine)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "experiment_key": "plain",
            "version": 1,
            "recipient_id": f"u{i}",
            "variants": {"subject": "plain", "cta": "shop"},
            "arm": 0,
            "propensity": 1 / 6,
            "policy_version": None,
            "explored": False,
            "fallback": False,
            "reason": "assigned",
            "context": {"device": "mobile"},
            "created_at": now,
            "day": now.date(),
            "learned_version": None,
        }
        for i in range(n)
    ]
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(decisions_table.insert(), rows)
    seconds = time.perf_counter() - start
    with engine.begin() as conn:
        conn.execute(delete(decisions_table).where(decisions_table.c.experiment_key == "plain"))
    engine.dispose()
    return seconds


def time_design(url: str, name: str, design: dict[str, Any], n: int) -> tuple[float, float, float]:
    """Seconds for one assign_batch of ``n`` recipients, for recording one click per decision, and for
    summarize() after (a small untimed batch warms up the connection and caches first)."""
    engine = make_engine(url)
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    key = "bench-" + name.split()[0] + "-" + uuid.uuid4().hex[:6]
    service.create(
        parse_spec(
            {
                "key": key,
                "slots": SLOTS,
                "design": design,
                "holdout": 0.05,
                "reward": {"events": {"click": 1.0}},
            }
        )
    )
    service.assign_batch(key, recipients(100, seed=99))
    batch = recipients(n, seed=3)
    start = time.perf_counter()
    decisions = service.assign_batch(key, batch)
    seconds = time.perf_counter() - start
    assert len(decisions) == n
    events = [OutcomeEvent(f"click-{d.decision_id}", d.decision_id, "click") for d in decisions]
    start = time.perf_counter()
    counts = service.record_outcomes(events)
    outcome_seconds = time.perf_counter() - start
    assert counts.accepted == n
    start = time.perf_counter()
    service.summarize(key)
    summary_seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, outcome_seconds, summary_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL to measure as well")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        databases = [("SQLite (WAL)", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if args.pg:
            databases.append(("PostgreSQL", args.pg))
        rows = []
        for db_name, url in databases:
            floor = plain_insert(url, args.n)
            rows.append([db_name, "plain executemany (floor)", args.n, floor, args.n / floor, 1.0, "-", "-"])
            for name, design in DESIGNS.items():
                seconds, outcome_seconds, summary_seconds = time_design(url, name, design, args.n)
                rows.append(
                    [
                        db_name,
                        name,
                        args.n,
                        seconds,
                        args.n / seconds,
                        seconds / floor,
                        args.n / outcome_seconds,
                        summary_seconds,
                    ]
                )
    headers = [
        "database",
        "design",
        "recipients",
        "assign s",
        "decisions/s",
        "x floor",
        "outcomes/s",
        "summarize s",
    ]
    table = format_table(headers, rows)
    command = f"python -m benchmarks.assignment --n {args.n}" + (" --pg URL" if args.pg else "")
    notes = (
        "One `assign_batch` call per design: screening (consent, eligibility, holdout 5%), the choice, "
        "content rendering and one bulk insert of every decision in one transaction. `x floor` is the time "
        "over a plain executemany of the same number of decision rows. `outcomes/s`: one `record_outcomes` "
        "call with one click per decision (decision lookup, attribution window, idempotent insert with "
        "RETURNING, one transaction). `summarize s`: the SQL aggregation of the results right after."
    )
    write_section("assignment", "Assignment throughput (assign_batch)", command, table, notes)


if __name__ == "__main__":
    main()
