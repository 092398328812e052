"""Plotly figures of analysis results, as plain figure dictionaries (``{"data": [...], "layout": {...}}``,
what plotly.js reads as is). Each takes result objects and returns a figure; none computes a statistic
(curves and intervals arrive computed).

Plain dictionaries, not ``plotly.graph_objects``: building a ``go.Figure`` validates every property and
copies its template, tens of milliseconds per chart on a page; ``plotly.io.to_html(figure,
validate=False)`` and ``json.dumps`` take the dictionaries as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.bayesian import PosteriorCurve
from analysis.palette import in_spec_order
from analysis.results import Comparison
from analysis.timeseries import RatePoint

_GRID = "#EBF0F8"
_AXIS = {"gridcolor": _GRID, "linecolor": _GRID, "zerolinecolor": _GRID, "zerolinewidth": 2,
         "automargin": True, "ticks": ""}
#: The look of every chart: plotly's "plotly_white" essentials (white plot, light grid), without a
#: template object to validate and copy.
WHITE_LAYOUT: dict[str, Any] = {
    "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#2a3f5f"},
    "hoverlabel": {"align": "left"}, "title": {"x": 0.05},
}


def white_layout(title: str, x_title: str, y_title: str, **layout: Any) -> dict[str, Any]:
    """:data:`WHITE_LAYOUT` with a title, both axes' titles and grid, and any further ``layout`` keys
    (an ``xaxis`` or ``yaxis`` given there adds to the axis)."""
    xaxis = {**_AXIS, "title": {"text": x_title}, **layout.pop("xaxis", {})}
    yaxis = {**_AXIS, "title": {"text": y_title}, **layout.pop("yaxis", {})}
    return {**WHITE_LAYOUT, "title": {**WHITE_LAYOUT["title"], "text": title}, "xaxis": xaxis, "yaxis": yaxis,
            **layout}


def plot_rates_over_time(
    points: Sequence[RatePoint], title: str, *, variant_to_colour: Mapping[str, str]
) -> dict[str, Any]:
    """Cumulative rate per variant by day, with its interval as a shaded band; variants in the order and
    colours of ``variant_to_colour`` (:func:`analysis.palette.variant_to_colour`)."""
    traces: list[dict[str, Any]] = []
    for variant, colour in in_spec_order(variant_to_colour, (p.variant for p in points)):
        mine = [p for p in points if p.variant == variant]
        days = [str(p.day) for p in mine]
        band = [p.ci[1] for p in mine] + [p.ci[0] for p in mine][::-1]
        traces.append({"type": "scatter", "x": days + days[::-1], "y": band, "fill": "toself",
                       "fillcolor": colour, "opacity": 0.15, "line": {"width": 0}, "hoverinfo": "skip",
                       "showlegend": False, "legendgroup": variant})
        traces.append({"type": "scatter", "x": days, "y": [p.rate for p in mine], "mode": "lines+markers",
                       "name": variant, "line": {"color": colour}, "legendgroup": variant,
                       "customdata": [[p.n, p.successes] for p in mine],
                       "hovertemplate": "%{x}: %{y:.4f} (%{customdata[1]} of %{customdata[0]})"})
    layout = white_layout(title, "day", "cumulative rate", yaxis={"tickformat": ".2%"}, height=360)
    return {"data": traces, "layout": layout}


def plot_posteriors(
    curves: Sequence[PosteriorCurve], title: str, *, variant_to_colour: Mapping[str, str]
) -> dict[str, Any]:
    """Posterior densities of each arm's mean, a curve in its variant's colour (curves are labelled with
    the variant)."""
    label_to_curve = {c.label: c for c in curves}
    traces = []
    for label, colour in in_spec_order(variant_to_colour, label_to_curve):
        curve = label_to_curve[label]
        traces.append({"type": "scatter", "x": _floats(curve.x), "y": _floats(curve.density), "mode": "lines",
                       "name": label, "fill": "tozeroy", "line": {"color": colour},
                       "fillcolor": _translucent(colour)})
    return {"data": traces, "layout": white_layout(title, "mean", "posterior density", height=340)}


def plot_lift_table(comparisons: Sequence[Comparison], title: str) -> dict[str, Any]:
    """The lift table: one row per variant and metric."""
    header = ["variant", "metric", "control", "variant mean", "lift", "interval", "p", "p adjusted",
              "P(beat control)", "always-valid p", "significant"]
    rows = [
        [c.variant, c.metric, _num(c.control_mean), _num(c.variant_mean), _pct(c.lift),
         f"{_pct(c.ci[0])} to {_pct(c.ci[1])}", _num(c.p_value), _num(c.p_value_adjusted),
         _num(c.prob_beat_control), _num(c.sequential.p_value), "yes" if c.significant else "no"]
        for c in comparisons
    ]
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in header]
    fill = [["#e8f5e9" if c.significant else "white" for c in comparisons]]
    table = {"type": "table", "header": {"values": header, "fill": {"color": "#eeeeee"}, "align": "left"},
             "cells": {"values": columns, "align": "left", "fill": {"color": fill}}}
    layout = {**WHITE_LAYOUT, "title": {**WHITE_LAYOUT["title"], "text": title},
              "height": 120 + 30 * len(rows), "margin": {"t": 40, "b": 10}}
    return {"data": [table], "layout": layout}


def _floats(values: Any) -> list[float]:
    """An array or sequence of numbers as a list of floats (what ``json.dumps`` writes)."""
    return np.asarray(values, dtype=np.float64).tolist()


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.2%}"


def _translucent(colour: str) -> str:
    """``#RRGGBB`` as an rgba colour at 30% opacity (a fill that keeps the curves behind it visible)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.3)"
