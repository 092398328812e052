"""Plotly charts of power curves: they draw a :class:`~analysis.power_curves.PowerCurve`, compute nothing."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis.power_curves import PowerCurve


def plot_power_curve(curve: PowerCurve, title: str | None = None) -> go.Figure:
    """A line chart of power against the control-arm size or the effect, with the target marked.

    Parameters
    ----------
    curve : PowerCurve
        The points to draw.
    title : str, optional
        Chart title; by default it states what is held fixed.

    Returns
    -------
    plotly.graph_objects.Figure
        The points as a line (trace 0), a dashed horizontal line at the target power and a dotted
        vertical segment where the curve reaches it (trace 1). The method sentence is the x-axis caption.
    """
    if curve.over == "n":
        x_title = "recipients in the control arm"
        fixed = f"effect {curve.fixed_effect:.4g}"
        hover = "n per arm %{x:,.0f}<br>power %{y:.3f}<extra></extra>"
    else:
        x_title = "absolute effect"
        fixed = f"{curve.fixed_n_per_arm:,} recipients per arm"
        hover = "effect %{x:.4g}<br>power %{y:.3f}<extra></extra>"
    figure = go.Figure(
        go.Scatter(x=list(curve.x), y=list(curve.power), mode="lines+markers", name="power",
                   hovertemplate=hover)
    )
    figure.add_hline(y=curve.target_power, line_dash="dash", line_color="grey")
    # a trace rather than add_vline: annotations on log axes want log10 coordinates
    figure.add_trace(go.Scatter(
        x=[curve.x_at_target, curve.x_at_target], y=[0.0, curve.target_power], mode="lines+text",
        line={"dash": "dot", "color": "grey"}, text=["", f"{curve.x_at_target:,.4g}"],
        textposition="top left", name=f"reaches {curve.target_power:.0%}", hoverinfo="skip",
    ))
    figure.update_layout(
        title=title or f"Power of a {curve.metric} test at alpha {curve.alpha:g}, {fixed}",
        xaxis_title=f"{x_title}<br><sup>{curve.method}</sup>",
        yaxis_title="power",
        yaxis_range=[0, 1.02],
        template="plotly_white",
    )
    if curve.over == "n":
        figure.update_xaxes(type="log")
    return figure


def power_curve_html(curve: PowerCurve, title: str | None = None) -> str:
    """A self-contained HTML page of :func:`plot_power_curve` (plotly.js inlined, works offline)."""
    return plot_power_curve(curve, title).to_html(include_plotlyjs=True, full_html=True)
