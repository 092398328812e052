"""Plotly figures of analysis results. Each takes result objects and returns a figure; none computes
a statistic (curves and intervals arrive computed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from analysis.bayesian import PosteriorCurve
from analysis.palette import in_spec_order
from analysis.results import Comparison
from analysis.timeseries import RatePoint


def plot_rates_over_time(
    points: Sequence[RatePoint], title: str, *, variant_to_colour: Mapping[str, str]
) -> go.Figure:
    """Cumulative rate per variant by day, with its interval as a shaded band; variants in the order and
    colours of ``variant_to_colour`` (:func:`analysis.palette.variant_to_colour`)."""
    fig = go.Figure()
    for variant, colour in in_spec_order(variant_to_colour, (p.variant for p in points)):
        mine = [p for p in points if p.variant == variant]
        days = [p.day for p in mine]
        band = [p.ci[1] for p in mine] + [p.ci[0] for p in mine][::-1]
        fig.add_trace(go.Scatter(x=days + days[::-1], y=band,
                                 fill="toself", fillcolor=colour, opacity=0.15, line={"width": 0},
                                 hoverinfo="skip", showlegend=False, legendgroup=variant))
        fig.add_trace(go.Scatter(x=days, y=[p.rate for p in mine], mode="lines+markers", name=variant,
                                 line={"color": colour}, legendgroup=variant,
                                 customdata=[[p.n, p.successes] for p in mine],
                                 hovertemplate="%{x}: %{y:.4f} (%{customdata[1]} of %{customdata[0]})"))
    fig.update_layout(title=title, xaxis_title="day", yaxis_title="cumulative rate", yaxis_tickformat=".2%",
                      template="plotly_white", height=360)
    return fig


def plot_posteriors(
    curves: Sequence[PosteriorCurve], title: str, *, variant_to_colour: Mapping[str, str]
) -> go.Figure:
    """Posterior densities of each arm's mean, a curve in its variant's colour (curves are labelled with
    the variant)."""
    fig = go.Figure()
    label_to_curve = {c.label: c for c in curves}
    for label, colour in in_spec_order(variant_to_colour, label_to_curve):
        curve = label_to_curve[label]
        fig.add_trace(go.Scatter(x=curve.x, y=curve.density, mode="lines", name=curve.label, fill="tozeroy",
                                 line={"color": colour}, fillcolor=_translucent(colour)))
    fig.update_layout(title=title, xaxis_title="mean", yaxis_title="posterior density",
                      template="plotly_white", height=340)
    return fig


def plot_lift_table(comparisons: Sequence[Comparison], title: str) -> go.Figure:
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
    fig = go.Figure(go.Table(header={"values": header, "fill_color": "#eeeeee", "align": "left"},
                             cells={"values": columns, "align": "left", "fill_color": fill}))
    fig.update_layout(title=title, height=120 + 30 * len(rows), margin={"t": 40, "b": 10})
    return fig


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.2%}"


def _translucent(colour: str) -> str:
    """``#RRGGBB`` as an rgba colour at 30% opacity (a fill that keeps the curves behind it visible)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.3)"
