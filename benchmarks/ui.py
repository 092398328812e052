"""How fast the /ui pages answer, cold and warm, with experiments of 1,000,000 (``--decisions N``)
decisions each.

Three experiments of the subject line, an A/B/C test, a Thompson-sampling bandit and a contextual
bandit (linear Thompson sampling on two recipient attributes), are created through the service and
their logs written by ``INSERT ... SELECT`` (:mod:`benchmarks.ui_log`, not timed), fast enough for
10,000,000 decisions each; then :func:`benchmarks.bulk_load.prepare_store` brings the store to what its
writers keep up to date and gathers the planner's statistics. Then, in process through FastAPI's
TestClient, with the garbage collector tuned as ``sendlab serve`` tunes each worker
(:func:`api.app.tune_garbage_collector`), each page is timed:

- cold, first view: a new service and app (nothing cached in the process, no refresher; its routes
  built, as ``sendlab serve`` builds a worker's as it starts), one request;
- cold, cache expired: the same, in a process that already served the page (its compiled specs
  kept) after the page cache was emptied;
- warm: the app running with its background refresher (``ui_refresh_seconds`` = 10): requests spread
  over a few seconds while the refresher keeps recomputing in the same process;

and, for an experiment page, each read of its numbers from the store alone (:data:`PARTS`).

    python -m benchmarks.ui [--decisions 1000000] [--pg URL] [--repeats 5] [--keep DIR [--rebuild]]

With ``--keep DIR`` the built stores are kept for the next run of the same size: the SQLite file in
``DIR`` and a PostgreSQL database named after the size beside ``--pg``; a later run reuses them (no
build, no ``prepare_store``) unless ``--rebuild`` is given or the build did not finish (``DIR`` holds a
marker per store written once it is prepared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from analysis.drift import calibrate_cusum_threshold
from api.app import create_app, tune_garbage_collector
from api.settings import Settings
from api.ui.numbers import HISTORY_POINTS, gather_numbers
from api.warm_up import build_routes
from benchmarks.bulk_load import prepare_store
from benchmarks.report import format_table, write_section
from benchmarks.ui_log import DESIGNS, build_logs
from experiments.assignment import compile_experiment
from experiments.drift_block import monitor_log
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec
from experiments.store import create_tables, make_engine
from experiments.store.repository import Repository
from experiments.store.snapshot_summaries import recorded_learned_reward
from experiments.store.summaries import learned_reward

REFRESH_SECONDS = 10.0
TARGET_MS = 300.0


def timed_ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


def fetch(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text[:300]


def fresh_app(engine: Any, url: str, refresh_seconds: float = 0.0) -> FastAPI:
    """A new service and app on ``engine``: nothing cached in the process; its routes built, as a served
    worker's are as it starts (:func:`api.warm_up.build_routes`)."""
    service = ExperimentService(engine, seed=1)
    app = create_app(Settings(db=url, ui_refresh_seconds=refresh_seconds), service=service)
    build_routes(app)
    return app


def empty_caches(app: FastAPI) -> None:
    for name in ("ui_cache", "ui_pages"):
        if hasattr(app.state, name):
            delattr(app.state, name)


#: The reads of an experiment page's numbers (:func:`api.ui.numbers.gather_numbers`), timed one by one.
PARTS = ("summary + learning", "policy history", "adaptive read", "drift read",
         "learned reward, as recorded", "learned reward, full scan", "drift threshold, once per process")


def learned_reward_reads(engine: Any, key: str) -> tuple[float, float]:
    """Milliseconds of the learned reward as the latest snapshot records it and by the full scan of the
    log (:func:`experiments.store.summaries.learned_reward`), each on a new connection; they must agree."""
    with engine.connect() as conn:
        record = Repository.experiment(conn, key)
        compiled = compile_experiment(ExperimentSpec.model_validate_json(record.spec), record.version)
    with engine.connect() as conn:
        start = time.perf_counter()
        recorded = recorded_learned_reward(conn, key, compiled.version)
        recorded_ms = 1000 * (time.perf_counter() - start)
    with engine.connect() as conn:
        start = time.perf_counter()
        scanned = learned_reward(conn, compiled)
        scanned_ms = 1000 * (time.perf_counter() - start)
    assert recorded == scanned, (key, recorded, scanned)
    return recorded_ms, scanned_ms


def threshold_ms(service: ExperimentService, key: str) -> float:
    """Milliseconds of the drift detector's threshold for ``key``'s horizon computed anew: what the
    first page of a process (or the first after the horizon grew) adds, as the process keeps each
    horizon's threshold (``calibrate_cusum_threshold`` is cached)."""
    horizon = monitor_log(service.read_drift(key)).total.horizon
    return timed_ms(lambda: calibrate_cusum_threshold.__wrapped__(horizon))


def store_parts(engine: Any, url: str, key: str, threshold: bool = True) -> list[float]:
    """Milliseconds of each of :data:`PARTS` for ``key``, in a new service (nothing cached); the drift
    threshold only when ``threshold`` (else 0)."""
    service = fresh_app(engine, url).state.service
    adaptive = key != "ab"
    return [
        timed_ms(lambda: service.summarize_with_learning(key)),
        timed_ms(lambda: service.policy_history(key, limit=HISTORY_POINTS)) if adaptive else 0.0,
        timed_ms(lambda: service.read_adaptive(key)) if adaptive else 0.0,
        timed_ms(lambda: service.read_drift(key)),
        *(learned_reward_reads(engine, key) if adaptive else (0.0, 0.0)),
        threshold_ms(service, key) if threshold else 0.0,
    ]


def build_store(db_name: str, url: str, n: int) -> None:
    """Write the three logs of ``n`` decisions into the empty store at ``url`` and prepare it."""
    engine = make_engine(url)
    create_tables(engine)
    built = build_logs(engine, ExperimentService(engine, seed=1), n)
    started = time.perf_counter()
    prepare_store(engine)
    print(f"{db_name}: {len(DESIGNS)} x {n:,} decisions built in {built:.0f} s, store prepared in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()


def measure(db_name: str, url: str, n: int, repeats: int, *, build: bool = True
            ) -> tuple[list[list[object]], list[list[object]]]:
    """The pages' table rows and the experiment pages' store parts (rows of :data:`PARTS`); the store
    is built first unless ``build`` is false (a kept store of the same size)."""
    if build:
        build_store(db_name, url, n)
    engine = make_engine(url)
    create_tables(engine)

    pages = [("list page", "/ui", None), *[(f"{key} page", f"/ui/experiments/{key}", key) for key in DESIGNS]]
    rows: list[list[object]] = []
    part_rows: list[list[object]] = []
    for label, path, key in pages:
        store, first, expired = [], [], []
        parts: list[list[float]] = []
        for repeat in range(repeats):
            if key is not None:
                parts.append(store_parts(engine, url, key, threshold=repeat == 0))
            app = fresh_app(engine, url)
            service = app.state.service
            if key is None:
                store.append(timed_ms(service.traffic))
            else:
                info = service.get(key)
                store.append(timed_ms(lambda s=service, i=info: gather_numbers(s, i)))
            app = fresh_app(engine, url)  # again nothing cached: the first view after a start
            client = TestClient(app)
            first.append(timed_ms(lambda c=client, p=path: fetch(c, p)))
            empty_caches(app)  # the page cache expired; the process keeps its compiled specs
            expired.append(timed_ms(lambda c=client, p=path: fetch(c, p)))
        rows.append([db_name, label, f"{n:,}" if key else f"{len(DESIGNS)} x {n:,}",
                     statistics.median(store), statistics.median(first), statistics.median(expired)])
        if key is not None:
            medians = [statistics.median(p) for p in zip(*parts, strict=True)]
            medians[-1] = parts[0][-1]  # the drift threshold: timed once
            part_rows.append([db_name, label, *medians])

    app = fresh_app(engine, url, REFRESH_SECONDS)
    with TestClient(app) as client:
        refresher = app.state.ui_refresher
        deadline = time.monotonic() + 600
        while refresher.refreshes < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refresher.refreshes >= 1, "the first refresh did not finish"
        for row, (_, path, _) in zip(rows, pages, strict=True):
            warm = []
            for _ in range(repeats):
                time.sleep(0.5)  # spread over the refresher's cycle
                warm.append(timed_ms(lambda p=path: fetch(client, p)))
            cold = min(row[4], row[5])  # type: ignore[type-var]
            row += ["yes" if cold < TARGET_MS else "no", statistics.median(warm), max(warm),
                    "yes" if max(warm) < TARGET_MS else "no"]
        cycle = refresher.last_duration_seconds
    for row in rows:
        row.append(cycle)
    engine.dispose()
    return rows, part_rows


def measure_postgres(admin_url: str, n: int, repeats: int, keep: Path | None = None, rebuild: bool = False
                     ) -> tuple[list[list[object]], list[list[object]]]:
    """``measure`` in a throwaway database created next to ``admin_url`` (dropped after); with ``keep``
    in the database ``sendlab_bench_ui_<n>``, kept and reused (see the module docstring)."""
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"sendlab_bench_ui_{n}" if keep else f"sendlab_bench_ui_{uuid.uuid4().hex[:10]}"
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as admin:
        if keep is None:
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                return measure("PostgreSQL", url, n, repeats)
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        marker = keep / f"{name}.ready"
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if rebuild or not exists or not marker.exists():
            marker.unlink(missing_ok=True)
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
            build_store("PostgreSQL", url, n)
            marker.write_text(f"{n}\n")
        else:
            print(f"PostgreSQL: reusing the kept database {name}", flush=True)
    if repeats == 0:  # --build-only
        return [], []
    return measure("PostgreSQL", url, n, repeats, build=False)


def measure_sqlite_kept(keep: Path, n: int, repeats: int, rebuild: bool
                        ) -> tuple[list[list[object]], list[list[object]]]:
    """``measure`` on the SQLite file ``ui_<n>.db`` in ``keep``, built when absent or unfinished."""
    path, marker = keep / f"ui_{n}.db", keep / f"ui_{n}.db.ready"
    url = f"sqlite:///{path}"
    if rebuild or not marker.exists():
        marker.unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        build_store("SQLite (WAL)", url, n)
        marker.write_text(f"{n}\n")
    else:
        print(f"SQLite (WAL): reusing the kept store {path.name}", flush=True)
    if repeats == 0:  # --build-only
        return [], []
    return measure("SQLite (WAL)", url, n, repeats, build=False)


def conclusion(rows: list[list[object]], part_rows: list[list[object]]) -> str:
    """Which pages meet the target, cold and warm, and what is left of each cold page's time, in words."""
    def pages(column: int) -> str:
        met = [f"{row[1]} on {row[0]} ({row[2]})" for row in rows if row[column] == "yes"]
        return ", ".join(met) if met else "none"

    page_to_parts = {(row[0], row[1], row[2]): row[3:] for row in part_rows}
    lines = []
    for row in rows:
        cold, store = min(row[4], row[5]), row[3]  # type: ignore[type-var]
        line = (f"{row[1]} on {row[0]} ({row[2]}): {cold:,.0f} ms cold; reading its numbers from the "
                f"store alone, in another new service, {store:,.0f} ms")
        parts = page_to_parts.get((row[0], row[1], row[2]))
        if parts:
            reads = sum(parts[:4])  # what gather_numbers reads; the learned reward is in the first
            largest = max(range(4), key=lambda j: parts[j])
            line += (f", of which its four reads {reads:,.0f} ms (the largest: {PARTS[largest]}, "
                     f"{parts[largest]:,.0f} ms) and the computing on them (the drift monitor; the adaptive "
                     f"estimate) the rest, about {max(store - reads, 0.0):,.0f} ms")  # type: ignore[operator]
        lines.append(line)
    return (
        f"**Which path meets {TARGET_MS:.0f} ms.** Warm (the refresher running): {pages(9)}. "
        f"Cold: {pages(6)}.\n\n"
        "What remains of each cold page's time (the better of first view and cache expired; medians):\n\n"
        + "\n".join(f"- {line}." for line in lines) + "\n\n"
        "Every read of a page's numbers comes from sums kept as the log is written: `summary + "
        "learning` reads the rollups' cells summed by the database over policy versions (the summary: "
        "rows per arm and day) and over days (the learning summary: rows per policy version and arm), "
        "the snapshots' times from an index, and the reward learned from as the latest snapshot records "
        "it; `adaptive read` the adaptive inverse-propensity sums per policy version and arm, as arrays "
        "(one query; a contextual design of at most 50,000 decisions also reads its decisions as rows); "
        "`drift read` the drift sums per day, policy version, learned version and arm; `policy history` "
        "the snapshot versions (an index), then the rows of the 100 drawn. None grows with the decisions; "
        "the learning summary's, the adaptive and the drift sums grow with the policy versions (one per "
        "5,000 decisions here). Reading a page's numbers (`store ms`) also computes the adaptive "
        "estimate and the drift monitor, as arrays over the policy versions. `drift threshold, once per "
        "process`: the drift detector's threshold for the page's horizon (the days judged, here a day "
        "per policy version) computed anew, timed once and not in the other columns: a process keeps "
        "each horizon's threshold, so the first page of a process, or the first after the horizon grew, "
        "adds it. The rest of a cold page is the analysis of the sums (the adaptive analysis over the "
        "policy versions), the charts (plotly figures) and the template."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000, help="decisions per experiment")
    parser.add_argument("--pg", default=None,
                        help="an admin PostgreSQL URL: a throwaway database is made beside it and dropped")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-sqlite", action="store_true", help="measure PostgreSQL only (with --pg)")
    parser.add_argument("--save", default=None, help="also write the rows measured to this JSON file")
    parser.add_argument("--combine", nargs="+", default=None, metavar="FILE",
                        help="measure nothing: write the section from the rows of runs saved with --save "
                             "(one database each, run side by side)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="keep the built stores (the SQLite file in DIR, a PostgreSQL database named "
                             "after the size) and reuse them in later runs of the same size")
    parser.add_argument("--rebuild", action="store_true", help="with --keep: build the kept stores anew")
    parser.add_argument("--build-only", action="store_true",
                        help="with --keep: build (or find) the stores, measure nothing")
    args = parser.parse_args()
    tune_garbage_collector()  # as `sendlab serve` does in each worker: the pages are timed as served
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    elif args.rebuild or args.build_only:
        parser.error("--rebuild and --build-only need --keep")
    rows: list[list[object]] = []
    part_rows: list[list[object]] = []
    if args.combine:
        pieces, sizes = [], []
        for name in args.combine:
            run = json.loads(Path(name).read_text())
            databases = {row[0] for row in run["rows"]}
            sizes.append(run["decisions"])
            rows += run["rows"]
            part_rows += [[*row[:2], f"{run['decisions']:,}", *row[2:]] for row in run["part_rows"]]
            pieces.append(f"python -m benchmarks.ui{_size_option(run['decisions'])}"
                          + ("" if "SQLite (WAL)" in databases else " --skip-sqlite")
                          + (" --pg URL" if "PostgreSQL" in databases else "")
                          + (f" --repeats {run['repeats']}" if run.get("repeats", 5) != 5 else "")
                          + (" --keep DIR" if run.get("keep") else "")
                          + f" --save {Path(name).name}"
                          + (f" (code: commit {run['code']})" if run.get("code") else ""))
        command = ("; ".join(pieces) + " (side by side); then python -m benchmarks.ui --combine "
                   + " ".join(Path(name).name for name in args.combine))
        write_ui_section(sorted(set(sizes), reverse=True), command, rows, part_rows)
        return
    measured = []
    repeats = 0 if args.build_only else args.repeats
    if not args.skip_sqlite:
        if keep is not None:
            measured.append(measure_sqlite_kept(keep, args.decisions, repeats, args.rebuild))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                measured.append(measure("SQLite (WAL)", f"sqlite:///{Path(tmp) / 'ui.db'}", args.decisions,
                                        repeats))
    if args.pg:
        measured.append(measure_postgres(args.pg, args.decisions, repeats, keep, args.rebuild))
    if args.build_only:
        return
    for page_rows, parts in measured:
        rows += page_rows
        part_rows += parts
    if args.save:
        Path(args.save).write_text(json.dumps({"decisions": args.decisions, "rows": rows,
                                               "part_rows": part_rows, "code": code_version(),
                                               "repeats": args.repeats, "keep": keep is not None}))
    command = (f"python -m benchmarks.ui{_size_option(args.decisions)}"
               + (" --skip-sqlite" if args.skip_sqlite else "") + (" --pg URL" if args.pg else "")
               + (f" --repeats {args.repeats}" if args.repeats != 5 else "") + (" --keep DIR" if keep else "")
               + f" (code: commit {code_version()})")
    part_rows = [[*row[:2], f"{args.decisions:,}", *row[2:]] for row in part_rows]
    write_ui_section([args.decisions], command, rows, part_rows)


def code_version() -> str:
    """The commit the benchmark runs (with ``+changes`` when the worktree differs from it)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def _size_option(decisions: int) -> str:
    return f" --decisions {decisions}" if decisions != 1_000_000 else ""


def write_ui_section(sizes: list[int], command: str, rows: list[list[object]],
                     part_rows: list[list[object]]) -> None:
    """The pages' table, the store parts' table (rows: database, page, decisions, :data:`PARTS`) and
    the notes, into the ``ui`` section; ``sizes``: the decisions per experiment of the runs, largest
    first."""
    decisions = " or ".join(f"{n:,}" for n in sizes)
    headers = ["database", "page", "decisions", "store ms (cold)", "cold ms, first view",
               "cold ms, cache expired", "cold < 300 ms", "warm ms (median)", "warm ms (max)",
               "warm < 300 ms", "refresh cycle s"]
    notes = (
        "The logs are written by `INSERT ... SELECT` (`benchmarks/ui_log.py`): per experiment "
        f"{decisions} decisions over 20 days with their clicks (about 3%) and unsubscribes (0.2%); "
        "an adaptive one's spread over a policy version per 5,000 decisions (the learner's batch), "
        "learned by the next version but for the last 5%, with a real policy state per version; then "
        "`prepare_store` (the rollups of every experiment version and the snapshots' learned rewards "
        "computed from the log, as the writers would have kept them; `ANALYZE`, on PostgreSQL `VACUUM "
        "ANALYZE`, as autovacuum would after a bulk load). "
        "Median of the repeats, in process (TestClient, no network; the garbage collector tuned as "
        "`sendlab serve` tunes each worker), on a machine shared with other work "
        "(absolute times are noisy; compare within a row). `store ms`: reading the page's numbers from "
        "the store in a new service (`api.ui.numbers.gather_numbers`): for an experiment page its "
        "summary, what its policy learned, its policy history and the adaptive and drift blocks' inputs; "
        "for the list every experiment's traffic; the second table times those reads one by one, each in "
        "a new service, and for an adaptive design the reward its policy learned from beside the full "
        "scan of the log it replaced (the benchmark checks they are equal). `cold ms, first view`: a new "
        "service and app, nothing of theirs cached (the store's numbers, the analysis, the charts, the "
        "template; the app's routes are built first, as `sendlab serve` builds a worker's before it "
        "accepts connections, `api.warm_up.build_routes`; the process keeps its imported modules, its "
        "compiled templates and the drift threshold of each horizon, which the second table times "
        "apart). `cold ms, cache "
        "expired`: the next request of that app after its page caches were emptied (compiled specs "
        "kept). `cold < 300 ms` takes the better of the two. `warm`: the "
        "app serving with its background refresher (a pass over every experiment, in the same process, "
        "every 10 s or twice as long as the pass took), requests half a second apart; `max` includes "
        "requests that met a refresh. `refresh cycle s`: how long the refresher's last pass over the "
        "three experiments took (the numbers a page shows are at most about three times that, or that "
        "plus 10 s, old). The list page covers all three experiments.\n\n" + conclusion(rows, part_rows)
    )
    parts_table = format_table(["database", "page", "decisions", *[f"{part} ms" for part in PARTS]],
                               part_rows)
    table = format_table(headers, rows) + "\n\nWhere an experiment page's `store ms` goes:\n\n" + parts_table
    write_section("ui", f"Web pages (/ui) with experiments of {decisions} decisions: cold and warm",
                  command, table, notes)


if __name__ == "__main__":
    main()
