"""Plotly figures of the pages, handed to the browser as JSON. They draw numbers computed elsewhere."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from analysis.bayesian import posterior_curve
from analysis.drift import DriftReport
from analysis.palette import EXPLORED_COLOUR, OKABE_ITO, in_spec_order, variant_to_colour
from analysis.plots import plot_posteriors, plot_rates_over_time
from analysis.results import SlotAnalysis
from analysis.timeseries import DailyPoint, cumulative_rates
from api.ui.views import PolicyPoint, VersionShares
from experiments.models import DailyArmSummary

ALARM_COLOUR = "#D55E00"  # Okabe-Ito vermillion: a day the drift detector alarmed
_LAYOUT: dict[str, Any] = {"height": 320, "margin": {"t": 50, "b": 40}, "plot_bgcolor": "white",
                           "hovermode": "x unified"}


def figure_json(figure: Mapping[str, Any]) -> str:
    """A plain figure dictionary as JSON text that is safe inside a ``<script>`` element.

    Every ``<``, ``>`` and ``&`` is written as its ``\\u`` escape (they occur only inside JSON strings,
    which read the same): no text of the data (a variant id ``<!--<script>``) can end the element or
    switch the HTML parser into a script state that swallows the rest of the page.
    """
    text = json.dumps(figure)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def allocation_figure(daily: Sequence[DailyArmSummary], slot: str, variants: Sequence[str]) -> dict[str, Any]:
    """Each variant's share of the slot's decisions on each day with decisions (stacked bars to 100%), the
    counts on hover; ``variants`` in the spec's order (which gives their colours).

    A plain figure dictionary, like every chart of the pages (see :mod:`analysis.plots`).
    """
    day_to_total: dict[date, int] = {}
    for d in daily:
        if d.slot == slot:
            day_to_total[d.day] = day_to_total.get(d.day, 0) + d.decisions
    days = sorted(day_to_total)
    traces = []
    for variant, colour in variant_to_colour(variants).items():
        day_to_n = {d.day: d.decisions for d in daily if d.slot == slot and d.variant == variant}
        counts = [day_to_n.get(day, 0) for day in days]
        shares = [n / day_to_total[day] if day_to_total[day] else 0.0
                  for n, day in zip(counts, days, strict=True)]
        traces.append({
            "type": "bar", "x": [day.isoformat() for day in days], "y": shares, "name": variant,
            "customdata": counts, "marker": {"color": colour},
            "hovertemplate": f"{variant}: %{{y:.1%}} (%{{customdata:,}} decisions)<extra></extra>",
        })
    layout = {**_LAYOUT, "title": {"text": f"{slot}: allocation by day"}, "barmode": "stack",
              "xaxis": {"title": {"text": "day (UTC)"}, "type": "date"},
              "yaxis": {"title": {"text": "share of decisions"}, "tickformat": ".0%", "range": [0, 1]}}
    return {"data": traces, "layout": layout}


def rates_figure(
    daily: Sequence[DailyArmSummary], slot: str, metric: str, alpha: float, variants: Sequence[str]
) -> dict[str, Any]:
    """Cumulative rate of ``metric`` per variant with its interval (``analysis.plots``), ``variants`` in
    the spec's order."""
    points = [DailyPoint(d.day, d.slot, d.variant, d.decisions, dict(d.event_counts)) for d in daily
              if d.slot == slot]
    return plot_rates_over_time(cumulative_rates(points, metric, alpha), f"{slot}: cumulative {metric} rate",
                                variant_to_colour=variant_to_colour(variants))


def posterior_figure(analysis: SlotAnalysis, variants: Sequence[str]) -> dict[str, Any]:
    """Posterior of each variant's primary metric (``analysis.plots``), ``variants`` in the spec's order."""
    curves = [posterior_curve(r.posterior, r.variant) for r in analysis.arms
              if r.metric == analysis.primary_metric]
    return plot_posteriors(curves, f"{analysis.slot}: posterior of {analysis.primary_metric}",
                           variant_to_colour=variant_to_colour(variants))


def policy_figure(points: Sequence[PolicyPoint], slot: str, variants: Sequence[str]) -> dict[str, Any]:
    """A slot's variant probabilities under each policy version, over the time each version was stored
    (one line per variant, the version and decisions learned from on hover), as a plain figure dictionary;
    ``variants`` in the spec's order."""
    present = (v for p in points for v in p.slot_to_marginals.get(slot, {}))
    x = [p.created_at.isoformat() for p in points]
    custom = [[p.version, p.learned_decisions] for p in points]
    traces = [
        {"type": "scatter", "x": x, "name": variant, "customdata": custom,
         "y": [p.slot_to_marginals.get(slot, {}).get(variant, 0.0) for p in points],
         "mode": "lines+markers", "marker": {"size": 8}, "line": {"color": colour},
         "hovertemplate": f"{variant}: %{{y:.1%}} (policy v%{{customdata[0]}}, "
                          "%{customdata[1]:,} decisions learned)<extra></extra>"}
        for variant, colour in in_spec_order(variant_to_colour(variants), present)
    ]
    layout = {**_LAYOUT, "title": {"text": f"{slot}: policy probabilities by version"},
              "xaxis": {"title": {"text": "stored at (UTC)"}, "type": "date"},
              "yaxis": {"title": {"text": "probability"}, "tickformat": ".0%", "range": [0, 1]}}
    return {"data": traces, "layout": layout}


def version_figure(points: Sequence[VersionShares], slot: str, variants: Sequence[str]) -> dict[str, Any]:
    """Per policy version (or run of consecutive versions: :func:`api.ui.views.version_shares`), over the
    time each was stored: the share of the slot's decisions made under it that went to each variant
    (one line per variant, ``variants`` in the spec's order) and the share of
    them that explored (dashed), the version and its decision count on hover; a plain figure dictionary."""
    present = (v for p in points for v in p.variant_to_share)
    x = [p.created_at.isoformat() for p in points]
    custom = [[p.version if p.first == p.version else f"{p.first} to v{p.version}", p.decisions]
              for p in points]
    hover = "(decisions under policy v%{customdata[0]}: %{customdata[1]:,})<extra></extra>"
    traces = [
        {"type": "scatter", "x": x, "name": variant, "customdata": custom,
         "y": [p.variant_to_share.get(variant, 0.0) for p in points],
         "mode": "lines+markers", "marker": {"size": 7}, "line": {"color": colour},
         "hovertemplate": f"{variant}: %{{y:.1%}} " + hover}
        for variant, colour in in_spec_order(variant_to_colour(variants), present)
    ]
    traces.append({
        "type": "scatter", "x": x, "name": "explored", "customdata": custom,
        "y": [p.explored_share for p in points], "mode": "lines+markers", "marker": {"size": 7},
        "line": {"color": EXPLORED_COLOUR, "dash": "dash"}, "hovertemplate": "explored: %{y:.1%} " + hover,
    })
    layout = {**_LAYOUT, "title": {"text": f"{slot}: decisions by policy version"},
              "xaxis": {"title": {"text": "version stored at (UTC)"}, "type": "date"},
              "yaxis": {"title": {"text": "share of the version's decisions"}, "tickformat": ".0%",
                        "range": [0, 1]}}
    return {"data": traces, "layout": layout}


def drift_figure(report: DriftReport) -> dict[str, Any]:
    """Per judged day and policy version: the reward per decision the policy predicted (line) and the one
    its decisions earned (markers, red on a day the detector alarmed), the residual and the CUSUM
    statistics on hover; a plain figure dictionary."""
    x = [p.day for p in report.points]
    custom = [[p.policy_version, p.decisions, p.residual, p.upper, p.lower] for p in report.points]
    hover = ("day %{x}, policy v%{customdata[0]} (%{customdata[1]:,} decisions)<br>residual "
             "%{customdata[2]:.2f}, CUSUM up %{customdata[3]:.2f} down %{customdata[4]:.2f}<extra></extra>")
    per = [(p.predicted / p.decisions, p.observed / p.decisions) if p.decisions else (0.0, 0.0)
           for p in report.points]
    traces = [
        {"type": "scatter", "mode": "lines+markers", "name": "predicted", "x": x, "y": [a for a, _ in per],
         "customdata": custom, "line": {"color": EXPLORED_COLOUR, "dash": "dash"},
         "hovertemplate": "predicted %{y:.4g}; " + hover},
        {"type": "scatter", "mode": "markers", "name": "earned", "x": x, "y": [b for _, b in per],
         "customdata": custom, "hovertemplate": "earned %{y:.4g}; " + hover,
         "marker": {"size": 10, "symbol": "diamond",
                    "color": [ALARM_COLOUR if p.alarm else OKABE_ITO[0] for p in report.points]}},
    ]
    layout = {**_LAYOUT, "title": {"text": "drift: reward per decision"}, "margin": {"t": 50, "b": 40},
              "legend": {"orientation": "h", "x": 0, "y": 1.12},
              "xaxis": {"title": {"text": "days since the first decision"}, "dtick": 1},
              "yaxis": {"title": {"text": "reward per decision"}, "rangemode": "tozero"}}
    return {"data": traces, "layout": layout}
