"""Plotly charts of planning results (power curves, test-then-send, bandit plans); they compute nothing."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from analysis.power.bandit import BanditPlan
from analysis.power.curves import PowerCurve
from analysis.power.test_then_send import TestThenSendPlan


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
        line={"dash": "dot", "color": "grey"}, text=["", _reached_label(curve)],
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


def _reached_label(curve: PowerCurve) -> str:
    """Where the curve reaches the target, as people write it: a size rounded up to whole recipients with
    thousands separators (``53,182``), an effect to four significant digits without an exponent."""
    x = curve.x_at_target
    if curve.over == "n":
        return f"{math.ceil(x):,}"
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, 3 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def power_curve_html(curve: PowerCurve, title: str | None = None) -> str:
    """A self-contained HTML page of :func:`plot_power_curve` (plotly.js inlined, works offline)."""
    return figure_html(plot_power_curve(curve, title))


def plot_test_then_send(plan: TestThenSendPlan, title: str | None = None) -> go.Figure:
    """Expected total conversions against the share of the list tested, with the optimum marked.

    Parameters
    ----------
    plan : TestThenSendPlan

    Returns
    -------
    plotly.graph_objects.Figure
        The curve (trace 0), the optimum (trace 1) and the no-test level as a dashed line.
    """
    figure = go.Figure(go.Scatter(
        x=list(plan.shares), y=list(plan.expected_by_share), mode="lines", name="expected conversions",
        hovertemplate="test share %{x:.1%}<br>expected conversions %{y:,.0f}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=[plan.test_share], y=[plan.expected_conversions], mode="markers+text", name="best share",
        text=[f"{plan.test_share:.1%}: {plan.per_arm:,} per arm"], textposition="top right",
        marker={"size": 10},
    ))
    figure.add_hline(y=plan.expected_conversions_without_test, line_dash="dash", line_color="grey")
    figure.update_layout(
        title=title or f"Test then send on a list of {plan.list_size:,} ({plan.model})",
        xaxis_title=f"share of the list in the test<br><sup>{plan.method}</sup>",
        yaxis_title="expected total conversions", xaxis_tickformat=".0%", template="plotly_white",
    )
    return figure


def plot_bandit_plan(plan: BanditPlan, title: str | None = None) -> go.Figure:
    """Share of each batch sent to losing variants: the bandit's learning curve against the fixed test.

    Parameters
    ----------
    plan : BanditPlan

    Returns
    -------
    plotly.graph_objects.Figure
        The bandit's share per batch (trace 0) and the fixed test's constant share (trace 1).
    """
    batches = list(range(1, plan.batches + 1))
    figure = go.Figure(go.Scatter(
        x=batches, y=list(plan.losing_share_by_batch), mode="lines+markers", name="Thompson sampling",
        hovertemplate="batch %{x}<br>to losing variants %{y:.1%}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=batches, y=[plan.losing_share_fixed] * plan.batches, mode="lines", name="fixed A/B test",
        line={"dash": "dash"},
    ))
    figure.update_layout(
        title=title or (f"Traffic to losing variants: {plan.losing_share_bandit:.1%} (bandit) vs "
                        f"{plan.losing_share_fixed:.1%} (fixed) over {plan.horizon:,} sends"),
        xaxis_title=f"batch of {plan.batch_size:,} sends<br><sup>{plan.method}</sup>",
        yaxis_title="share sent to losing variants", yaxis_tickformat=".0%", yaxis_range=[0, 1],
        template="plotly_white",
    )
    return figure


def figure_html(figure: go.Figure) -> str:
    """A self-contained HTML page of any planning chart (plotly.js inlined, works offline)."""
    return figure.to_html(include_plotlyjs=True, full_html=True)
