"""``sendlab analyze``: an experiment's results from the database, as a table, JSON or an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.adaptive_output import print_adaptive
from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.drift_output import print_drift
from api.cli.group import CliError
from api.cli.output import check_output, print_json, print_table
from api.convert import signed_percent
from api.report import write_report
from api.results import (
    SegmentResults,
    apprentice_note,
    comparison_rows,
    exclusion_note,
    guardrail_line,
    results_to_dict,
    summary_warnings,
)
from experiments.adaptive_block import adaptive_json
from experiments.drift_block import drift_json


def analyze(
    key: Annotated[str, typer.Argument(help="The experiment's key.")],
    db: DbOption = DEFAULT,
    alpha: Annotated[float, typer.Option(help="Significance level (intervals at 1 - alpha).")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm, bh or none, across a slot's comparisons.")] = "holm",
    seed: Annotated[int, typer.Option(
        help="Recorded in the JSON; the Bayesian summaries are exact now, so it changes no number.")] = 0,
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full results as JSON.")] = False,
    include_machine: Annotated[bool, typer.Option(
        "--include-machine", help="Count machine-made outcomes (Apple Mail Privacy Protection opens, link "
                                  "scanners' clicks); left out by default."
    )] = False,
    segment: Annotated[str | None, typer.Option(
        help="Also break the results down by this context attribute stored with the decisions.")] = None,
    covariate: Annotated[str | None, typer.Option(
        help="CUPED-adjust the reward by this numeric context attribute recorded at send time.")] = None,
) -> None:
    """Significance, lift intervals, Bayesian and sequential results, SRM and guardrails per slot."""
    check_output("--html", html)
    if segment is not None and covariate is not None:
        raise CliError("--covariate: give --segment or --covariate, not both (CUPED within segments is not "
                       "supported)")
    service = open_service(db)
    results = service.results(key, alpha=alpha, correction=correction, seed=seed, blocks=True,
                              include_machine=include_machine, segment=segment, covariate=covariate)
    summary, cov, by_segment = results.summary, results.covariate, results.segments
    adaptive = results.adaptive
    drift = drift_json(results.drift)  # type: ignore[arg-type]  # read with blocks=True
    if html is not None:
        write_report(results, html, title=f"SendLab results: {key}", adaptive=adaptive, segments=by_segment)
    if as_json:
        data = results_to_dict(results)
        data.update(adaptive_json(adaptive, summary, data))
        data["drift"] = drift
        print_json(data)
        return
    data = results_to_dict(results, detail=False)
    print_table(["slot", "variant", "decisions", "reward mean", "events"],
                [[a["slot"], a["variant"], a["decisions"], a["reward_mean"],
                  ", ".join(f"{k} {v}" for k, v in sorted(a["events"].items()))] for a in data["arms"]])
    typer.echo("")
    if adaptive is not None:
        print_adaptive(adaptive, alpha)
    elif results.analyses:
        headers = ["slot", "comparison", "metric", "lift", f"{1 - alpha:.0%} CI", "p (adj.)",
                   "P(beat control)"]
        rows = comparison_rows(results)
        if cov is not None:
            reductions = [c.variance_reduction for a in results.analyses for c in a.comparisons]
            headers.append("variance reduction")
            rows = [row + ["-" if r is None else f"{r:.1%}"] for row, r in zip(rows, reductions, strict=True)]
        print_table(headers, rows)
    if cov is not None:
        typer.echo(f"CUPED: {data['covariate']['note']}")
    for a in [] if adaptive is not None else results.analyses:
        flag = " SAMPLE RATIO MISMATCH" if a.srm.flagged else ""
        typer.echo(f"{a.slot}: {a.decision.verdict} ({a.decision.reason}){flag}")
        for g in a.guardrails:
            typer.echo(f"  {guardrail_line(g)}")
        for warning in a.warnings:
            typer.echo(f"  note: {warning}")
    for slot, why in results.skipped.items():
        typer.echo(f"{slot}: not analysed, {why}")
    typer.echo(exclusion_note(summary))
    for warning in summary_warnings(summary):
        typer.echo(f"warning: {warning}")
    apprentice = apprentice_note(summary)
    if apprentice is not None:
        typer.echo(apprentice)
    for factorial in results.factorials:
        typer.echo("")
        typer.echo(factorial.to_markdown())
    print_drift(drift)
    if by_segment is not None:
        _print_segments(by_segment, alpha)
    if html is not None:
        typer.echo(f"report written to {html}")


def _print_segments(results: SegmentResults, alpha: float) -> None:
    seg = results.segmented
    typer.echo("")
    typer.echo(f"By {seg.attribute}: {len(seg.segments)} segments of {seg.decisions:,} decisions, "
               f"{seg.missing:,} without {seg.attribute!r} (in no segment)")
    for analysis in results.by_slot:
        print_table(
            ["slot", "segment", "comparison", "metric", "lift", f"{1 - alpha:.0%} CI", "p", "p (adj.)",
             "significant"],
            [[analysis.slot, r.segment, f"{r.variant} vs {analysis.segments[r.segment].control}", r.metric,
              signed_percent(r.lift), f"[{signed_percent(r.ci[0])}, {signed_percent(r.ci[1])}]", r.p_value,
              r.p_value_adjusted,
              "yes" if r.significant else "no"] for r in analysis.rows],
        )
        typer.echo(f"warning: {analysis.warning}")
    for where, why in results.skipped.items():
        typer.echo(f"{where}: not analysed, {why}")
