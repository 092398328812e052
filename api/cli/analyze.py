"""``sendlab analyze``: an experiment's results from the database, as a table, JSON or an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.output import print_json, print_table
from api.report import write_report
from api.results import (
    analyze_summary,
    apprentice_note,
    comparison_rows,
    exclusion_note,
    results_to_dict,
)


def analyze(
    key: Annotated[str, typer.Argument(help="The experiment's key.")],
    db: DbOption = DEFAULT,
    alpha: Annotated[float, typer.Option(help="Significance level (intervals at 1 - alpha).")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm, bh or none, across a slot's comparisons.")] = "holm",
    seed: Annotated[int, typer.Option(help="Seed of the Monte Carlo Bayesian summaries.")] = 0,
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full results as JSON.")] = False,
    include_machine: Annotated[bool, typer.Option(
        "--include-machine", help="Count machine-made outcomes (Apple Mail Privacy Protection opens, link "
                                  "scanners' clicks); left out by default."
    )] = False,
) -> None:
    """Significance, lift intervals, Bayesian and sequential results, SRM and guardrails per slot."""
    summary = open_service(db).summarize(key, include_machine=include_machine)
    results = analyze_summary(summary, alpha=alpha, correction=correction, seed=seed)
    if html is not None:
        write_report(results, html, title=f"SendLab results: {key}")
    if as_json:
        print_json(results_to_dict(results))
        return
    data = results_to_dict(results, detail=False)
    print_table(["slot", "variant", "decisions", "reward mean", "events"],
                [[a["slot"], a["variant"], a["decisions"], a["reward_mean"],
                  ", ".join(f"{k} {v}" for k, v in sorted(a["events"].items()))] for a in data["arms"]])
    typer.echo("")
    if results.analyses:
        print_table(["slot", "comparison", "metric", "lift", f"{1 - alpha:.0%} CI", "p (adj.)",
                     "P(beat control)"], comparison_rows(results))
    for a in results.analyses:
        flag = " SAMPLE RATIO MISMATCH" if a.srm.flagged else ""
        typer.echo(f"{a.slot}: {a.decision.verdict} ({a.decision.reason}){flag}")
    for slot, why in results.skipped.items():
        typer.echo(f"{slot}: not analysed, {why}")
    typer.echo(exclusion_note(summary))
    apprentice = apprentice_note(summary)
    if apprentice is not None:
        typer.echo(apprentice)
    for factorial in results.factorials:
        typer.echo("")
        typer.echo(factorial.to_markdown())
    if html is not None:
        typer.echo(f"report written to {html}")
