"""The HTML report (offline, plotly.js inlined once), its JSON twin, and the plot functions."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import plotly.graph_objects as go
import pytest

from analysis.bayesian import posterior_curve
from analysis.errors import AnalysisInputError
from analysis.factorial import FactorialCell, analyze_factorial
from analysis.palette import OKABE_ITO, UNKNOWN_COLOUR, in_spec_order, variant_to_colour
from analysis.plots import plot_lift_table, plot_posteriors, plot_rates_over_time
from analysis.report import render_report, report_json
from analysis.results import ArmData, analyze_slot
from analysis.stats import SampleStats
from analysis.timeseries import DailyPoint, cumulative_rates


def _analysis(sizes=(5000, 5000)):
    arms = [ArmData(v, n, {"click": x, "unsubscribe": 5}, SampleStats(n, float(x), float(x)), 0.5)
            for v, n, x in (("plain", sizes[0], 400), ("urgent <b>", sizes[1], 450))]
    return analyze_slot("subject", arms, "plain", metrics=["click"], guardrails=["unsubscribe"], draws=500)


DAILY = [DailyPoint(date(2026, 3, 1) + timedelta(d), "subject", v, 700, {"click": 55 + d})
         for d in range(5) for v in ("plain", "urgent <b>")]


def test_report_is_self_contained_html() -> None:
    cells = [FactorialCell({"s": s, "c": c}, 1000, 100 + 10 * i)
             for i, (s, c) in enumerate([("a", "x"), ("b", "x"), ("a", "y"), ("b", "y")])]
    page = render_report([_analysis()], DAILY, title="Spring sale", factorials=[analyze_factorial(cells)])
    assert page.startswith("<!DOCTYPE html>") and "Spring sale" in page
    assert page.count("plotly.js v") == 1  # the library's banner: inlined exactly once
    assert 'src="https://cdn.plot.ly' not in page
    assert "urgent &lt;b&gt;" in page  # names are escaped
    assert "Decision:" in page and "Stopping rule" in page and "Factorial effects" in page
    assert "cumulative click rate" in page and "posterior of reward" in page


def test_srm_is_flagged_loudly() -> None:
    page = render_report([_analysis(sizes=(50_000, 47_000))])
    assert 'class="box bad"' in page and "SAMPLE RATIO MISMATCH" in page


def test_report_json_round_trips() -> None:
    body = json.loads(report_json([_analysis()]))
    assert body["slots"][0]["slot"] == "subject" and body["factorials"] == []


def test_plot_functions_return_figures_of_results() -> None:
    a = _analysis()
    table = plot_lift_table(a.comparisons, "t")
    assert table["data"][0]["cells"]["values"][1] == [c.metric for c in a.comparisons]  # a row per comparison
    points = cumulative_rates(DAILY, "click")
    colours = variant_to_colour(["plain", "urgent <b>"])
    rates = plot_rates_over_time(points, "t", variant_to_colour=colours)
    assert len(rates["data"]) == 4  # a band, a line each
    curves = [posterior_curve(r.posterior, r.variant) for r in a.arms if r.metric == "click"]
    assert len(plot_posteriors(curves, "t", variant_to_colour=colours)["data"]) == 2
    for figure in (table, plot_rates_over_time(points, "t", variant_to_colour=colours),
                   plot_posteriors(curves, "t", variant_to_colour=colours)):
        go.Figure(figure)  # every property is one plotly knows: validation raises on any other


def test_a_variant_keeps_its_spec_colour_on_every_report_chart() -> None:
    # the spec lists urgent first: it takes the first colour although the analysis puts control first
    a = _analysis()
    spec_order = ["urgent <b>", "plain"]
    expected = {"urgent <b>": OKABE_ITO[0], "plain": OKABE_ITO[1]}
    rates = plot_rates_over_time(cumulative_rates(DAILY, "click"), "t",
                                 variant_to_colour=variant_to_colour(spec_order))
    lines = {t["name"]: t["line"]["color"] for t in rates["data"] if t.get("showlegend") is not False}
    bands = {t["legendgroup"]: t["fillcolor"] for t in rates["data"] if t.get("showlegend") is False}
    assert lines == bands == expected
    curves = [posterior_curve(r.posterior, r.variant) for r in a.arms if r.metric == "click"]
    posteriors = plot_posteriors(curves, "t", variant_to_colour=variant_to_colour(spec_order))
    assert {t["name"]: t["line"]["color"] for t in posteriors["data"]} == expected
    assert [t["name"] for t in posteriors["data"]] == spec_order  # the legend in the spec's order
    page = render_report([a], DAILY, slot_to_variants={"subject": spec_order})
    figures = [json.loads(m) for m in re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', page)]
    named = [(t["name"], t["line"]["color"]) for f in figures for t in f
             if t.get("name") in expected and "line" in t and "color" in t["line"]]
    assert len(named) == 4 and all(expected[name] == colour for name, colour in named)


def test_palette_is_colour_blind_safe_and_follows_the_spec() -> None:
    assert len(set(OKABE_ITO)) == len(OKABE_ITO) == 7  # Okabe-Ito without black
    assert variant_to_colour(["a", "b", "a"]) == {"a": OKABE_ITO[0], "b": OKABE_ITO[1]}
    many = variant_to_colour([f"v{k}" for k in range(9)])
    assert many["v7"] == OKABE_ITO[0] and many["v8"] == OKABE_ITO[1]  # cycles after seven
    assert in_spec_order({"a": "#1", "b": "#2"}, ["new", "b"]) == [("b", "#2"), ("new", UNKNOWN_COLOUR)]


def test_empty_report() -> None:
    with pytest.raises(AnalysisInputError, match="analyses"):
        render_report([])
