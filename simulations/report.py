"""Offline HTML reports (plotly, JavaScript embedded) for simulations and replays.

Figure functions take result objects and return a figure; they compute no statistics beyond the
mean and range over seeds of curves already in the result. The ``*_html`` functions return a whole
HTML page (no network needed to open it); writing it to a file is the caller's business.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulations.estimators import PolicyEstimate
from simulations.load_reports import LoadReport, LoadSummary
from simulations.replay import ReplayReport
from simulations.simulation_results import SimulationResult

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _band_colour(hex_colour: str, alpha: float = 0.2) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def simulation_figure(result: SimulationResult) -> go.Figure:
    """Cumulative regret and reward against sends: the mean over seeds, with the seeds' range as a band."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Cumulative regret", "Cumulative reward"))
    sends = np.cumsum(result.wave_sizes)
    for i, run in enumerate(result.runs):
        colour = _COLOURS[i % len(_COLOURS)]
        for col, curves in ((1, run.cumulative_regret), (2, run.cumulative_reward)):
            low, high = curves.min(axis=0), curves.max(axis=0)
            figure.add_trace(
                go.Scatter(x=np.concatenate([sends, sends[::-1]]), y=np.concatenate([high, low[::-1]]),
                           fill="toself", fillcolor=_band_colour(colour), line={"width": 0},
                           hoverinfo="skip", showlegend=False, legendgroup=run.policy),
                row=1, col=col,
            )
            figure.add_trace(
                go.Scatter(x=sends, y=curves.mean(axis=0), mode="lines", name=run.policy,
                           line={"color": colour}, legendgroup=run.policy, showlegend=col == 1),
                row=1, col=col,
            )
    figure.update_xaxes(title_text="sends")
    figure.update_layout(
        title=f"{result.scenario}: {len(result.seeds)} seed(s), band = range over seeds",
        template="plotly_white", height=480,
    )
    return figure


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _page(title: str, figure: go.Figure, sections: str) -> str:
    plot = figure.to_html(full_html=False, include_plotlyjs=True)
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{plot}{sections}</body></html>")


def simulation_html(result: SimulationResult) -> str:
    """A self-contained HTML page: the curves, a table per policy and the A/B test's conclusions."""
    rows = [
        [run.policy, _number(float(run.cumulative_reward[:, -1].mean())),
         _number(float(run.cumulative_regret[:, -1].mean())), f"{run.loser_share.mean():.1%}",
         f"{run.mismatch_share.mean():.1%}"]
        for run in result.runs
    ]
    policies = _table(["policy", "reward (mean)", "regret (mean)", "traffic to losers",
                       "not their best variant"], rows)
    ab = _table(
        ["seed", "best variant", "A/B winner", "runner-up", "p-value", "declared", "correct"],
        [
            [c.seed, best, c.winner, c.runner_up, _number(c.p_value, 3), "yes" if c.significant else "no",
             "yes" if c.correct else "no"]
            for c, best in zip(result.ab_conclusions, result.best_variant, strict=True)
        ],
    )
    sections = f"<h2>Policies</h2>{policies}<h2>What a fixed A/B test would have concluded</h2>{ab}"
    if result.factorial_conclusions:
        rows = [
            [c.seed, c.winner, "yes" if c.correct else "no",
             "; ".join(f"{t}: OR {_number(o, 3)}, p {_number(p, 3)}{' *' if s else ''}"
                       for t, o, p, s in c.effects) or c.note,
             _number(c.interaction_p_value, 3) if c.interaction_p_value is not None else "-"]
            for c in result.factorial_conclusions
        ]
        sections += ("<h2>What the multivariate test's factorial analysis concluded</h2>"
                     + _table(["seed", "best combination observed", "correct",
                               "effects (odds ratio, p-value, * significant)", "interactions p-value"], rows))
    return _page(f"Simulation: {result.scenario}", simulation_figure(result), sections)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def replay_figure(report: ReplayReport) -> go.Figure:
    """Each candidate's estimates with their intervals, beside the logging policy's observed value."""
    figure = go.Figure()
    logged = report.logged
    figure.add_hrect(y0=logged.ci[0], y1=logged.ci[1], fillcolor="grey", opacity=0.15, line_width=0)
    figure.add_hline(y=logged.value, line_dash="dash", line_color="grey",
                     annotation_text=f"logging policy {logged.value:.4g}")
    estimators = sorted({e.estimator for c in report.candidates for e in c.estimates})
    for i, name in enumerate(estimators):
        points = [(c.name, e) for c in report.candidates for e in c.estimates if e.estimator == name]
        figure.add_trace(go.Scatter(
            x=[p[0] for p in points], y=[p[1].value for p in points], mode="markers", name=name,
            marker={"color": _COLOURS[i % len(_COLOURS)], "size": 9},
            error_y={"type": "data", "symmetric": False,  # None: no bar for an estimate without interval
                     "array": [_finite(p[1].ci[1] - p[1].value) for p in points],
                     "arrayminus": [_finite(p[1].value - p[1].ci[0]) for p in points]},
        ))
    figure.update_layout(
        title=f"Estimated value per send on {report.test_rows} held-out sends "
              f"(candidates trained on {report.train_rows})",
        scattermode="group", template="plotly_white", yaxis_title="expected reward per send", height=480,
    )
    return figure


def _interval(e: PolicyEstimate) -> str:
    """``[low, high]``, or ``n/a`` without an interval (the warnings say why)."""
    low, high = e.ci
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{_number(low)}, {_number(high)}]"


def _estimate_row(candidate: str, e: PolicyEstimate) -> list[object]:
    return [candidate, e.estimator, _number(e.value), _interval(e),
            _number(e.effective_sample_size, 5), _number(e.max_weight, 3), "; ".join(e.warnings)]


def replay_html(report: ReplayReport, load: LoadReport | LoadSummary | None = None) -> str:
    """A self-contained HTML page: the estimates, their intervals and warnings, and the logged value.

    With ``load``, a table of the rows read, used and set aside by reason comes first.
    """
    sections = ""
    if load is not None:
        rejected = [[reason, rows.count, ", ".join(f"row {i}: {v}" for i, v in rows.examples)]
                    for reason, rows in load.rejected.items()]
        sections += (f"<h2>Logs / set aside</h2><p>{load.rows_read:,} rows read, {load.rows_used:,} used, "
                     f"{load.rows_rejected:,} set aside.</p>")
        if rejected:
            sections += _table(["reason", "rows", "examples"], rejected)
    rows = [_estimate_row("logging policy", report.logged)]
    rows += [_estimate_row(c.name, e) for c in report.candidates for e in c.estimates]
    table = _table(["policy", "estimator", "value", "interval", "ESS", "max weight", "warnings"], rows)
    lifts = [_estimate_row(c.name, e) for c in report.candidates for e in c.lifts]
    if lifts:
        table += "<h2>Lift over the logging policy (same rows, paired interval)</h2>" + _table(
            ["policy", "estimator", "lift", "interval", "ESS", "max weight", "warnings"], lifts
        )
    notes = "".join(
        f"<p>{html.escape(c.name)}: {html.escape(n)}</p>" for c in report.candidates for n in c.notes
    )
    sections += f"<h2>Estimates</h2>{table}{notes}"
    return _page("Replay of logged sends", replay_figure(report), sections)
