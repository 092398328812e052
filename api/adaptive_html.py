"""The adaptive estimates of a bandit or contextual design as one HTML fragment, for the report and the
experiment page (every value escaped here)."""

from __future__ import annotations

import html
import math

from analysis.adaptive import AS_ALLOCATED_NOTE
from analysis.policy_value import PolicyValue
from experiments.adaptive_block import POLICY_VALUE_NOTE, AdaptiveResults

#: The note shown above the as-allocated sections of a learning policy's results.
AS_ALLOCATED_SECTIONS = (
    "The per-slot sections after the adaptive estimates are the rates as allocated (" + AS_ALLOCATED_NOTE
    + "): read the decisions and comparisons of the adaptive estimates instead."
)


def _num(x: float, fmt: str) -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, fmt)


def _ci(ci: tuple[float, float], fmt: str) -> str:
    return f"[{_num(ci[0], fmt)}, {_num(ci[1], fmt)}]"


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _value_row(v: PolicyValue) -> str:
    return _row([html.escape(v.policy), _num(v.estimate, ".4g"), _ci(v.ci, ".4g"),
                 _num(v.effective_n, ",.0f"), f"{v.decisions:,}"])


def adaptive_html(results: AdaptiveResults) -> str:
    """The section: method, per slot the decision and the comparisons "if every eligible recipient got
    it" (with the always-valid interval and the as-allocated difference beside), the policy value table
    and the warnings."""
    e = html.escape
    parts = ["<section class='adaptive'><h2>Estimates if every eligible recipient got each variant</h2>",
             f"<p>{e(results.method)}. {e(results.estimator_note)}</p>"]
    for s in results.slots:
        parts.append(f"<h3>Slot <code>{e(s.slot)}</code> (control: {e(s.control)})</h3>")
        parts.append(f'<div class="box decision"><b>Decision: {e(s.decision.verdict)}</b><br>'
                     f"{e(s.decision.reason)}</div>")
        rows = [_row(["variant", "metric", "value", "control", "lift", "CI", "difference",
                      "always-valid CI", "p (adj.)", "P(beat control)", "effective n", "as allocated"], "th")]
        for metric, analysis in s.metric_to_analysis.items():
            for c in analysis.comparisons:
                always = "-" if c.always_valid is None else _ci(c.always_valid.ci, "+.4g")
                rows.append(_row([
                    e(c.variant), e(metric), _num(c.variant_value, ".4g"), _num(c.control_value, ".4g"),
                    _num(c.lift, "+.1%"), _ci(c.ci, "+.1%"), _num(c.absolute_lift, "+.4g"), always,
                    _num(s.adjusted[(c.variant, metric)], ".3g"), _num(c.prob_beat_control, ".3f"),
                    _num(c.effective_n, ",.0f"), _num(c.as_allocated_lift, "+.4g"),
                ]))
        parts.append("<table class='t'>" + "".join(rows) + "</table>")
    for slot, why in results.skipped.items():
        parts.append(f'<div class="box warn">{e(slot)}: not analysed, {e(why)}</div>')
    pv = results.policy_value
    if pv is not None:
        values = [pv.as_run, *pv.arms, *([pv.defaults] if pv.defaults else []), pv.uniform]
        parts.append("<h3>Policy value</h3>"
                     f"<p>{e(POLICY_VALUE_NOTE)}</p><table class='t'>"
                     + _row(["policy", "value", "CI", "effective n", "decisions"], "th")
                     + "".join(_value_row(v) for v in values) + "</table>")
    for w in [] if results.analysis is None else results.analysis.warnings:
        parts.append(f'<div class="box warn">{e(w.message)}</div>')
    parts.append(f"<p><i>{e(AS_ALLOCATED_SECTIONS)}</i></p></section>")
    return "".join(parts)
