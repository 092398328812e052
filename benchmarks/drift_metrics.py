"""What the drift gauge of ``/metrics`` costs per scrape, as the decision log grows.

One Thompson-sampling experiment (two variants) is driven through 30 daily sends on a SQLite file
(WAL), clicks at 10% and 20%, a learning run after each send, until the log holds ``n`` decisions; then
the drift alerts of a scrape are timed: read now (``DriftAlertCache(ttl_seconds=0)``: both ``GROUP BY``
queries and the CUSUMs) and from the cache (``ttl_seconds=60``, after one read), beside an empty log
and the rest of ``/metrics`` (``ServiceMetrics.render``). Medians of 5 runs each.

Run: ``python -m benchmarks.drift_metrics [--sizes 10000,100000,1000000]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from api.metrics import ServiceMetrics
from benchmarks.report import format_table, write_section
from experiments.drift_block import DriftAlertCache
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

DAYS = 30
RATES = {"plain": 0.10, "urgent": 0.20}
SPEC = {
    "key": "drift-bench",
    "slots": {"subject": {"variants": [{"id": v, "content": v} for v in RATES]}},
    "design": {"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0}},
    "reward": {"events": {"click": 1.0}, "window_hours": 24},
    "consent": {"missing": "allow"},
}


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def build_log(folder: Path, n: int) -> tuple[ExperimentService, _Clock]:
    """A service whose experiment holds ``n`` decisions over :data:`DAYS` daily sends, judged."""
    engine = make_engine(f"sqlite:///{folder / f'drift-{n}.db'}")
    create_tables(engine)
    clock = _Clock()
    service = ExperimentService(engine, clock=clock, seed=1)
    service.create(parse_spec(SPEC))
    rng = np.random.default_rng(n)
    per_day = max(n // DAYS, 1) if n else 0
    for day in range(DAYS if n else 0):
        decisions = service.assign_batch(SPEC["key"], [(f"{day}-{i}", {}) for i in range(per_day)])
        clicks = rng.random(len(decisions)) < np.array([RATES[d.variants["subject"].id] for d in decisions])
        service.record_outcomes([OutcomeEvent(f"e{d.decision_id}", d.decision_id, "click", None, clock.now)
                                 for d, c in zip(decisions, clicks, strict=True) if c])
        service.learn(SPEC["key"])
        clock.now += timedelta(days=1)
    clock.now += timedelta(days=2)
    return service, clock


def _median_seconds(call: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(n: int, folder: Path) -> tuple[int, float, float]:
    """``(n, seconds to read the alerts now, seconds from the cache)``."""
    service, clock = build_log(folder, n)
    fresh = DriftAlertCache(ttl_seconds=0)
    cached = DriftAlertCache(ttl_seconds=60)
    cached.alerts(service, clock())
    read = _median_seconds(lambda: fresh.alerts(service, clock()))
    held = _median_seconds(lambda: cached.alerts(service, clock()))
    return n, read, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    sizes = [0] + [int(s) for s in args.sizes.split(",")]
    registry = ServiceMetrics(None)
    render = _median_seconds(registry.render, runs=25)
    with tempfile.TemporaryDirectory() as folder:
        timings = [measure(n, Path(folder)) for n in sizes]
    empty = timings[0][1]
    table = format_table(
        ["decisions", "read now ms", "cached ms", "read now / cached", "read now / empty log"],
        [[n, read * 1e3, held * 1e3, read / held, read / empty] for n, read, held in timings])
    write_section(
        "drift-metrics", "The drift gauge of /metrics: cost per scrape as the log grows",
        f"python -m benchmarks.drift_metrics --sizes {args.sizes}", table,
        "One Thompson-sampling experiment, 30 daily sends, SQLite (WAL). `read now`: the drift alerts as "
        "every scrape computed them before (both GROUP BY queries over the whole log, then the CUSUMs); "
        "`cached`: `DriftAlertCache(ttl_seconds=60)`, what `/metrics` does now, within the minute (it "
        "still lists the experiments). The rest of `/metrics` (`ServiceMetrics.render` of a fresh "
        f"registry) took {render * 1e3:.3g} ms. Medians of 5 scrapes; compare ratios.",
    )


if __name__ == "__main__":
    main()
