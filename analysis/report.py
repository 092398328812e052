"""A self-contained HTML report (plotly.js inlined, works offline) and its JSON twin."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.io as pio

from analysis.bayesian import posterior_curve
from analysis.errors import AnalysisInputError
from analysis.factorial import FactorialAnalysis
from analysis.palette import variant_to_colour
from analysis.plots import plot_lift_table, plot_posteriors, plot_rates_over_time
from analysis.results import SlotAnalysis
from analysis.timeseries import DailyPoint, cumulative_rates

_VIEWPORT = "<meta name='viewport' content='width=device-width, initial-scale=1'>"
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;color:#222}
.box{padding:.8em 1em;border-radius:6px;margin:.6em 0}
.ok{background:#e8f5e9;border:1px solid #a5d6a7}.bad{background:#ffebee;border:2px solid #e53935}
.decision{background:#e3f2fd;border:1px solid #90caf9}.warn{background:#fff8e1;border:1px solid #ffe082}
.note{background:#f5f5f5;border:1px solid #ccc}
table.t{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%}
@media (max-width:700px){body{margin:.5em}}table.t td,table.t th{border:1px solid #ccc;padding:.3em .6em}
"""


def render_report(
    analyses: Sequence[SlotAnalysis],
    daily: Sequence[DailyPoint] = (),
    title: str = "SendLab experiment report",
    factorials: Sequence[FactorialAnalysis] = (),
    notes: Sequence[str] = (),
    sections: Sequence[str] = (),
    slot_to_variants: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """One HTML page: ``notes`` first (e.g. which outcomes were left out), then ``sections`` (HTML
    fragments, already escaped: the adaptive estimates of a learning policy), then per slot the decision,
    SRM status, warnings, lift table, arm rates over time (from ``daily``) and posterior
    distributions; then any factorial tables.

    ``slot_to_variants`` gives each slot's variants in the spec's order, which gives each variant its colour
    (:mod:`analysis.palette`, the same as on the pages); a slot it leaves out takes the order of its
    analysis (control first).

    plotly.js is inlined once (``include_plotlyjs=True`` on the first figure), so the file opens offline.
    """
    if not analyses:
        raise AnalysisInputError("analyses: the report needs at least one slot analysis")
    parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<div class="box note">{html.escape(note)}</div>' for note in notes]
    parts += list(sections)
    figures: list[dict[str, Any]] = []

    def embed(fig: dict[str, Any]) -> str:
        figures.append(fig)
        return pio.to_html(fig, full_html=False, include_plotlyjs=len(figures) == 1, default_width="100%",
                           validate=False)

    for a in analyses:
        order = (slot_to_variants or {}).get(a.slot) or [r.variant for r in a.arms]
        colours = variant_to_colour(order)
        parts.append(f"<h2>Slot <code>{html.escape(a.slot)}</code> (control: {html.escape(a.control)})</h2>")
        parts.append(f'<div class="box decision"><b>Decision: {html.escape(a.decision.verdict)}</b><br>'
                     f"{html.escape(a.decision.reason)}</div>")
        srm_class = "bad" if a.srm.flagged else "ok"
        counts = (f" (observed {a.srm.observed}, expected {[round(e, 1) for e in a.srm.expected]})"
                  if a.srm.applicable else f" (observed {a.srm.observed})")
        parts.append(f'<div class="box {srm_class}"><b>Sample ratio:</b> {html.escape(a.srm.message)}'
                     f"{counts}</div>")
        for w in a.warnings:
            parts.append(f'<div class="box warn">{html.escape(w)}</div>')
        parts.append(embed(plot_lift_table(a.comparisons, f"{a.slot}: lift against {a.control}")))
        if a.guardrails:
            parts.append(_guardrail_table(a))
        rate_metrics = list(dict.fromkeys(c.metric for c in a.comparisons if c.kind == "rate"))
        slot_daily = [d for d in daily if d.slot == a.slot]
        for metric in rate_metrics if slot_daily else []:
            points = cumulative_rates(slot_daily, metric, a.alpha)
            parts.append(embed(plot_rates_over_time(points, f"{a.slot}: cumulative {metric} rate",
                                                    variant_to_colour=colours)))
        curves = [posterior_curve(r.posterior, r.variant) for r in a.arms if r.metric == a.primary_metric]
        parts.append(embed(plot_posteriors(curves, f"{a.slot}: posterior of {a.primary_metric}",
                                                   variant_to_colour=colours)))
        parts.append(f"<p><b>Stopping rule.</b> {html.escape(a.stopping_rule)}</p>")
    for f in factorials:
        parts.append(_factorial_table(f))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{_VIEWPORT}<title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")


def report_json(analyses: Sequence[SlotAnalysis], factorials: Sequence[FactorialAnalysis] = ()) -> str:
    """The same results as JSON text: ``{"slots": [...], "factorials": [...]}``."""
    body: dict[str, Any] = {"slots": [a.to_dict() for a in analyses],
                            "factorials": [f.to_dict() for f in factorials]}
    return json.dumps(body, indent=2)


def _guardrail_table(a: SlotAnalysis) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(g.variant)}</td><td>{html.escape(g.metric)}</td><td>{g.control_mean:.4%}</td>"
        f"<td>{g.variant_mean:.4%}</td><td>{g.margin:.0%}</td><td>{g.p_value:.3g}</td>"
        f"<td>{'non-inferior' if g.non_inferior else 'NOT shown non-inferior'}</td></tr>"
        for g in a.guardrails
    )
    return ("<h3>Guardrails (non-inferiority)</h3><table class='t'><tr><th>variant</th><th>metric</th>"
            "<th>control</th><th>variant</th><th>margin</th><th>p</th><th>result</th></tr>"
            + rows + "</table>")


def _factorial_table(f: FactorialAnalysis) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r.term)}</td><td>{r.kind}</td><td>{r.odds_ratio:.3f}</td>"
        f"<td>{r.p_value:.3g}</td><td>{'yes' if r.significant else 'no'}</td></tr>"
        for r in f.rows
    )
    return (f"<h2>Factorial effects on {html.escape(f.metric)}</h2><table class='t'><tr><th>term</th>"
            "<th>kind</th><th>odds ratio</th><th>p</th><th>matters</th></tr>" + rows
            + f"</table><p>{html.escape(f.note)}</p>")
