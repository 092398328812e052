"""Speed of the results analysis: a 20-arm slot, the HTML report, and summarising logged decisions.

Run: ``.venv/bin/python -m benchmarks.analysis`` (``--rows N`` for the SQL part, ``--skip-sql`` to leave
it out, ``--pg-url URL`` for PostgreSQL; without a server answering, PostgreSQL is skipped and said so).

1. ``analyze_slot`` on slots of 2, 5 and 20 arms (500,000 units per arm; three rate metrics, the
   reward and a guardrail), with the Bayesian Monte Carlo at its default 20,000 draws and at 2,000,
   next to the frequentist building blocks alone (tests, lift intervals, Holm) as a baseline.
2. ``render_report`` for the 20-arm slot with 30 days of daily counts.
3. Summary statistics of N logged decisions (``arm, click, reward``) by SQL aggregation
   (``COUNT, SUM(x), SUM(x*x), SUM(x*x*x)`` grouped by arm) in SQLite and PostgreSQL, beside loading
   the rows into pandas and grouping there. Either way the analysis afterwards is the same.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analysis.lift import absolute_lift, relative_lift
from analysis.multiplicity import adjust_p_values
from analysis.report import render_report
from analysis.results import ArmData, analyze_slot
from analysis.significance import compare_rates, welch_test
from analysis.stats import SampleStats
from analysis.timeseries import DailyPoint
from benchmarks.report import format_table, write_section

METRICS = ["open", "click", "conversion"]
RATES = {"open": 0.22, "click": 0.035, "conversion": 0.006, "unsubscribe": 0.002}
UNITS_PER_ARM = 500_000
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def make_arms(k: int, rng: np.random.Generator) -> list[ArmData]:
    """k arms with small true lifts; values are Bernoulli(click) x exponential revenue."""
    arms = []
    for i in range(k):
        lift = 1 + 0.01 * i
        counts = {m: int(rng.binomial(UNITS_PER_ARM, p * (lift if m != "unsubscribe" else 1)))
                  for m, p in RATES.items()}
        buyers = counts["conversion"]
        spend = rng.exponential(40.0, buyers)
        moments = [float((spend**j).sum()) for j in (1, 2, 3)]
        value = SampleStats(UNITS_PER_ARM, *moments)
        arms.append(ArmData(f"v{i:02d}", UNITS_PER_ARM, counts, value, 1 / k))
    return arms


def frequentist_only(arms: list[ArmData]) -> None:
    """The baseline: tests, lift intervals and Holm for every variant and metric, nothing else."""
    ctrl = arms[0]
    p = []
    for arm in arms[1:]:
        for m in METRICS:
            a, b = ctrl.rate(m), arm.rate(m)
            p.append(compare_rates(a, b).p_value)
            absolute_lift(a, b)
            relative_lift(a, b)
        p.append(welch_test(ctrl.value, arm.value).p_value)
    adjust_p_values(p, "holm")


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def analysis_rows(repeats: int) -> tuple[list[list[object]], list[ArmData]]:
    rng = np.random.default_rng(1)
    rows: list[list[object]] = []
    arms20: list[ArmData] = []
    for k in (2, 5, 20):
        arms = make_arms(k, rng)
        arms20 = arms
        kwargs = {"metrics": METRICS, "guardrails": ["unsubscribe"], "seed": 0}
        base = best_of(lambda arms=arms: frequentist_only(arms), repeats)
        full = best_of(lambda arms=arms, kw=kwargs: analyze_slot("subject", arms, "v00", **kw), repeats)
        light = best_of(lambda arms=arms, kw=kwargs: analyze_slot("subject", arms, "v00", draws=2000, **kw),
                        repeats)
        comparisons = (k - 1) * (len(METRICS) + 1)
        rows.append([k, f"{k * UNITS_PER_ARM:,}", comparisons, base * 1e3, full * 1e3, light * 1e3,
                     full / base, light / base])
    return rows, arms20


def report_row(arms: list[ArmData]) -> list[object]:
    analysis = analyze_slot("subject", arms, "v00", metrics=METRICS, guardrails=["unsubscribe"])
    start_day = date(2026, 3, 1)
    daily = [DailyPoint(start_day + timedelta(d), "subject", a.variant, a.n // 30,
                        {m: c // 30 for m, c in a.event_counts.items()}) for d in range(30) for a in arms]
    seconds = best_of(lambda: render_report([analysis], daily), 3)
    size = len(render_report([analysis], daily).encode()) / 1e6
    return [len(arms), 30, seconds, size]


def _write_rows(n: int, rng: np.random.Generator, k: int, chunk: int = 500_000):
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        arm = rng.integers(0, k, m)
        click = (rng.random(m) < 0.035 * (1 + 0.01 * arm)).astype(np.int64)
        reward = np.round(click * (1.0 + rng.exponential(3.0, m) * (rng.random(m) < 0.2)), 2)
        yield arm, click, reward


SUMMARY_SQL = ("SELECT arm, COUNT(*) AS n, SUM(click) AS clicks, SUM(reward) AS s, SUM(reward*reward) AS s2, "
               "SUM(reward*reward*reward) AS s3 FROM decisions GROUP BY arm ORDER BY arm")


def _arms_from(frame: pd.DataFrame) -> list[ArmData]:
    k = len(frame)
    return [ArmData(f"v{int(r.arm):02d}", int(r.n), {"click": int(r.clicks)},
                    SampleStats(int(r.n), float(r.s), float(r.s2), float(r.s3)), 1 / k)
            for r in frame.itertuples()]


def _pandas_summary(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.assign(s2=rows.reward**2, s3=rows.reward**3)
    g = rows.groupby("arm")
    return pd.DataFrame({"n": g.size(), "clicks": g.click.sum(), "s": g.reward.sum(), "s2": g.s2.sum(),
                         "s3": g.s3.sum()}).reset_index()


def sqlite_row(n: int, k: int) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        con = sqlite3.connect(path)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY, arm INTEGER, click INTEGER, "
                    "reward REAL)")
        for arm, click, reward in _write_rows(n, np.random.default_rng(5), k):
            con.executemany("INSERT INTO decisions (arm, click, reward) VALUES (?, ?, ?)",
                            zip(arm.tolist(), click.tolist(), reward.tolist(), strict=True))
        con.commit()
        sql_s, sql_frame = _timed(lambda: pd.read_sql_query(SUMMARY_SQL, con))
        pandas_s, pandas_frame = _timed(
            lambda: _pandas_summary(pd.read_sql_query("SELECT arm, click, reward FROM decisions", con)))
        con.close()
    return _compare_row("SQLite", n, k, sql_s, sql_frame, pandas_s, pandas_frame)


def postgres_row(n: int, k: int, admin_url: str) -> list[object] | str:
    try:
        import psycopg

        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except Exception as exc:  # no server: say so in the notes
        return f"PostgreSQL skipped: no server at {admin_url} ({str(exc).splitlines()[0]})"
    name = f"sendlab_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(admin_url.rsplit("/", 1)[0] + "/" + name) as con:
            con.execute("CREATE TABLE decisions (id BIGSERIAL PRIMARY KEY, arm INTEGER, click INTEGER, "
                        "reward DOUBLE PRECISION)")
            with con.cursor() as cur, cur.copy("COPY decisions (arm, click, reward) FROM STDIN") as copy:
                for arm, click, reward in _write_rows(n, np.random.default_rng(5), k):
                    for row in zip(arm.tolist(), click.tolist(), reward.tolist(), strict=True):
                        copy.write_row(row)
            con.commit()
            con.execute("ANALYZE decisions")

            def query(sql: str) -> pd.DataFrame:
                with con.cursor() as cur:
                    cur.execute(sql)
                    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])

            sql_s, sql_frame = _timed(lambda: query(SUMMARY_SQL))
            pandas_s, pandas_frame = _timed(
                lambda: _pandas_summary(query("SELECT arm, click, reward FROM decisions")))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return _compare_row("PostgreSQL", n, k, sql_s, sql_frame, pandas_s, pandas_frame)


def _timed(fn: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _compare_row(db: str, n: int, k: int, sql_s: float, sql_frame: pd.DataFrame, pandas_s: float,
                 pandas_frame: pd.DataFrame) -> list[object]:
    sql_frame = sql_frame.astype(float)
    pandas_frame = pandas_frame.astype(float)
    same = np.allclose(sql_frame[["n", "clicks", "s", "s2", "s3"]].to_numpy(),
                       pandas_frame[["n", "clicks", "s", "s2", "s3"]].to_numpy(), rtol=1e-9)
    start = time.perf_counter()
    analyze_slot("subject", _arms_from(sql_frame), "v00", metrics=["click"])
    analyse_s = time.perf_counter() - start
    return [db, f"{n:,}", k, sql_s, pandas_s, pandas_s / sql_s, analyse_s, "yes" if same else "NO"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="logged decisions for the SQL part")
    parser.add_argument("--skip-sql", action="store_true")
    parser.add_argument("--pg-url", default=os.environ.get("SENDLAB_BENCH_PG_URL", PG_DEFAULT))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rows, arms20 = analysis_rows(args.repeats)
    table = "### analyze_slot\n\n" + format_table(
        ["arms", "units", "comparisons", "frequentist only ms (baseline)", "analyze_slot ms",
         "analyze_slot ms, 2,000 draws", "full / baseline", "2,000 draws / baseline"], rows)
    table += "\n\n### render_report\n\n" + format_table(
        ["arms", "days", "seconds", "HTML MB (plotly.js inlined)"], [report_row(arms20)])
    notes = [
        f"analyze_slot: median of {args.repeats} runs; metrics open, click, conversion (rates), reward "
        "(value, with sum of cubes for the skewness note) and unsubscribe (guardrail). The extra time over "
        "the baseline is the Bayesian part: probability to be best by quadrature (k integrals over k "
        "posteriors) and Monte Carlo credible intervals / expected loss (k x draws Beta or normal draws).",
    ]
    if not args.skip_sql:
        sql_rows: list[list[object]] = [sqlite_row(args.rows, 20)]
        pg = postgres_row(args.rows, 20, args.pg_url)
        if isinstance(pg, str):
            notes.append(pg)
        else:
            sql_rows.append(pg)
        table += "\n\n### Summarising logged decisions\n\n" + format_table(
            ["database", "decisions", "arms", "SQL aggregate s", "load rows + pandas groupby s",
             "pandas / SQL", "analyze_slot on the summary s", "same sums"], sql_rows)
        notes.append(
            "Summarising: one table `decisions(arm, click, reward)`, rows inserted first (not timed); "
            "`SQL aggregate` is the GROUP BY of count, sums, sums of squares and cubes that analysis/ needs; "
            "the other column reads the three columns into pandas and groups there. The analysis itself "
            "takes the same time either way: it only sees the summary. The store's own queries "
            "(experiments/summaries.py) join outcomes and are measured by its benchmark, not here."
        )
    write_section("analysis", "Analysis: results of a slot, the report, summarising decisions",
                  "python -m benchmarks.analysis", table, "\n\n".join(notes))


if __name__ == "__main__":
    main()
