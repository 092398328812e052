"""``sendlab analyze`` of a bandit or contextual design: the adaptive estimates as plain-text tables."""

from __future__ import annotations

import math

import typer

from analysis.adaptive import AS_ALLOCATED_NOTE
from analysis.policy_value import PolicyValue
from api.cli.output import print_table
from experiments.adaptive_block import POLICY_VALUE_NOTE, AdaptiveResults


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:+.1%}"


def _interval(ci: tuple[float, float], percent: bool) -> str:
    if not all(math.isfinite(v) for v in ci):
        return "-"
    return f"[{ci[0]:+.1%}, {ci[1]:+.1%}]" if percent else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _value_row(v: PolicyValue) -> list[object]:
    return [v.policy, f"{v.estimate:.4g}", _interval(v.ci, False), f"{v.effective_n:,.0f}", v.decisions]


def print_adaptive(results: AdaptiveResults, alpha: float) -> None:
    """The comparisons "if every eligible recipient got it", the decisions, the policy value and the
    warnings (the per-arm table printed before them is as allocated)."""
    level = f"{1 - alpha:.0%}"
    typer.echo(f"(the table above is {AS_ALLOCATED_NOTE})")
    typer.echo(f"estimates if every eligible recipient got each variant: {results.method}")
    if results.estimator_note:
        typer.echo(f"  {results.estimator_note}")
    rows = []
    for s in results.slots:
        for metric, analysis in s.metric_to_analysis.items():
            for c in analysis.comparisons:
                always = "-" if c.always_valid is None else _interval(c.always_valid.ci, False)
                rows.append([s.slot, f"{c.variant} vs {c.control}", metric, _pct(c.lift),
                             _interval(c.ci, True), f"{c.absolute_lift:+.4g}", always,
                             s.adjusted[(c.variant, metric)], c.prob_beat_control,
                             f"{c.as_allocated_lift:+.4g}"])
    print_table(["slot", "comparison", "metric", "lift", f"{level} CI", "difference",
                 f"always-valid {level}", "p (adj.)", "P(beat control)", "as allocated"], rows)
    for s in results.slots:
        typer.echo(f"{s.slot}: {s.decision.verdict} ({s.decision.reason})")
    for slot, why in results.skipped.items():
        typer.echo(f"{slot}: not analysed, {why}")
    if results.policy_value is not None:
        typer.echo("")
        typer.echo(f"policy value: {POLICY_VALUE_NOTE}")
        pv = results.policy_value
        values = [pv.as_run, *pv.arms, *([pv.defaults] if pv.defaults else []), pv.uniform]
        print_table(["policy", "value", f"{level} CI", "effective n", "decisions"],
                    [_value_row(v) for v in values])
    for w in [] if results.analysis is None else results.analysis.warnings:
        typer.echo(f"  warning: {w.message}")
