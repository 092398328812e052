"""``analyze_slot`` side by side with GrowthBook's gbstats on the same summary statistics.

Run: ``python -m benchmarks.analysis_peer --peer-python PATH`` where PATH is the Python of a separate
environment holding gbstats 0.8.0 (a benchmark-only peer; it needs numpy < 2, so it cannot share
SendLab's environment): ``python -m venv gb && gb/bin/pip install "numpy<2" gbstats==0.8.0``.

One slot of 2 arms, 500,000 units each: three rate metrics (open, click, conversion), one value metric
(revenue per recipient, from its sum, sum of squares and count) and one guardrail (unsubscribe).
SendLab's ``analyze_slot`` gives, per metric: the test, absolute and relative lift intervals, the
Bayesian posterior with P(best), credible intervals of the lift and expected loss, the mSPRT, and the
SRM and guardrail checks. The gbstats equivalent computes, per metric, its frequentist two-sided
t-test and its Bayesian effect test (relative lift, credible interval, P(beat control), risk), the
guardrail's one-sided test and its SRM check. Each side is timed in its own process as the median of
``--calls`` calls; the sides alternate ``--rounds`` times and the table shows the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

import numpy as np

from analysis.results import analyze_slot
from benchmarks.analysis import METRICS, make_arms
from benchmarks.report import format_table, write_section

PEER_SCRIPT = r"""
import json, statistics, sys, time
from gbstats.bayesian.tests import EffectBayesianABTest
from gbstats.frequentist.tests import OneSidedTreatmentLesserTTest, TwoSidedTTest
from gbstats.gbstats import check_srm
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

arms, calls = json.loads(sys.stdin.read()), int(sys.argv[1])

def analyse():
    a, b = arms
    for metric in a["rates"]:
        sa = ProportionStatistic(n=a["n"], sum=a["rates"][metric])
        sb = ProportionStatistic(n=b["n"], sum=b["rates"][metric])
        TwoSidedTTest(sa, sb).compute_result()
        EffectBayesianABTest(sa, sb).compute_result()
    va = SampleMeanStatistic(n=a["n"], sum=a["value"][0], sum_squares=a["value"][1])
    vb = SampleMeanStatistic(n=b["n"], sum=b["value"][0], sum_squares=b["value"][1])
    TwoSidedTTest(va, vb).compute_result()
    EffectBayesianABTest(va, vb).compute_result()
    ga = ProportionStatistic(n=a["n"], sum=a["guardrail"])
    gb = ProportionStatistic(n=b["n"], sum=b["guardrail"])
    OneSidedTreatmentLesserTTest(ga, gb).compute_result()
    check_srm([a["n"], b["n"]], [0.5, 0.5])

analyse()
times = []
for _ in range(calls):
    start = time.perf_counter()
    analyse()
    times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", required=True, help="Python of the environment with gbstats 0.8.0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    arms = make_arms(2, np.random.default_rng(1))
    rates = [m for m in METRICS if m != "unsubscribe"]
    payload = json.dumps([
        {"n": a.n, "rates": {m: a.event_counts[m] for m in rates}, "guardrail": a.event_counts["unsubscribe"],
         "value": [a.value.sum, a.value.sum_squares]}
        for a in arms
    ])

    def ours() -> float:
        analyze_slot("subject", arms, "v00", metrics=rates, guardrails=["unsubscribe"])
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            analyze_slot("subject", arms, "v00", metrics=rates, guardrails=["unsubscribe"])
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def peer() -> float:
        done = subprocess.run([args.peer_python, "-c", PEER_SCRIPT, str(args.calls)], input=payload,
                              capture_output=True, text=True, check=True)
        return float(done.stdout.strip().splitlines()[-1])

    mine, theirs = [], []
    for _ in range(args.rounds):
        mine.append(ours())
        theirs.append(peer())
    ours_ms, peer_ms = statistics.median(mine) * 1e3, statistics.median(theirs) * 1e3
    rows = [["2 arms, 3 rates + value + guardrail", "1,000,000", f"{peer_ms:.3g}", f"{ours_ms:.3g}",
             f"{ours_ms / peer_ms:.2f}"]]
    headers = ["slot", "units", "gbstats 0.8.0 ms", "analyze_slot ms", "analyze_slot / gbstats"]
    notes = (
        f"Medians over {args.rounds} alternating rounds of the median of {args.calls} calls, each side in "
        "its own process (gbstats in a separate environment with numpy < 2). Goal of issue 19: "
        "analyze_slot at most 0.8x gbstats' time. analyze_slot does more per metric than the gbstats "
        "calls (the mSPRT, both lift intervals, expected loss against the best)."
    )
    write_section("analysis_peer", "analyze_slot against gbstats", "python -m benchmarks.analysis_peer "
                  "--peer-python GBSTATS_VENV/bin/python", format_table(headers, rows), notes)


if __name__ == "__main__":
    main()
