"""``sendlab preview SPEC --recipients FILE``: what each sample recipient would get and why, before a send.

Without ``--db`` the spec is loaded into a throwaway in-memory SQLite store (adaptive policies are then
untrained: every allowed combination is still possible); with ``--db`` the stored experiment with the
spec's key is previewed, with its live policy. Nothing is logged either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.db import open_service
from api.cli.experiments import read_spec
from api.cli.group import CliError
from api.cli.output import print_json
from api.cli.records import read_records
from api.previews import report_to_dict
from experiments.limits import MAX_PREVIEW_RECIPIENTS

IN_MEMORY = "sqlite://"


def _recipients(path: Path, id_column: str) -> list[tuple[str, dict[str, Any]]]:
    rows = read_records(path)
    if not rows:
        raise CliError(f"--recipients: {path} has no rows")
    if len(rows) > MAX_PREVIEW_RECIPIENTS:
        raise CliError(f"--recipients: at most {MAX_PREVIEW_RECIPIENTS} sample recipients, got {len(rows)}")
    out = []
    for i, row in enumerate(rows):
        rid = row.get(id_column)
        if rid is None or rid == "":
            raise CliError(f"--recipients: row {i + 1} has no {id_column!r}")
        context = row.get("context") if isinstance(row.get("context"), dict) else {
            k: v for k, v in row.items() if k != id_column
        }
        out.append((str(rid), context))
    return out


def _print_text(data: dict[str, Any], source: str) -> None:
    typer.echo(source)
    for p in data["previews"]:
        d = p["decision"]
        rules = "rules fired: " + (", ".join(p["rules_fired"]) or "none")
        if p["rules_not_evaluated"]:
            rules = f"rules {p['rules_not_evaluated']}"
        typer.echo(f"\n{d['recipient_id']}: {p['screening']}; {rules}")
        for slot, offers in p["slots"].items():
            typer.echo(f"  {slot}:")
            for o in offers["offered"]:
                typer.echo(f"    {o['probability']:6.1%}  {o['id']}: {o['content']!r}")
            for vid, why in offers["not_offered"].items():
                typer.echo(f"       -    {vid}: not offered ({why})")
        drawn = ", ".join(f"{s}={v['id']}" for s, v in d["variants"].items())
        typer.echo(f"  a draw now: {drawn} (propensity {d['propensity']:.3g})")
        for slot, note in p["content_notes"].items():
            typer.echo(f"  content {slot}: {note}")
    cov = data["coverage"]
    typer.echo(f"\ncoverage of {cov['sample_size']} sample recipients")
    unreached = cov["unreached_rule_combinations"]
    scope = "" if cov["checked_all_combinations"] else " (single rules and pairs only)"
    typer.echo(f"  rule combinations no sample recipient reached{scope}: {len(unreached) or 'none'}")
    for u in unreached:
        names = " + ".join(u["rules"]) or "no rule fires"
        typer.echo(f"    {names}, e.g. {u['example']}")
    typer.echo(f"  recipients who only ever get the fallback: {len(cov['fallback_only']) or 'none'}")
    for f in cov["fallback_only"]:
        typer.echo(f"    {f['recipient_id']}: {f['why']}")


def preview(
    spec_file: Annotated[Path, typer.Argument(help="The spec, a YAML or JSON file.")],
    recipients: Annotated[Path, typer.Option(
        "--recipients", help="Sample recipients: .csv (a recipient_id column and one per attribute), "
        ".jsonl or .json rows.")],
    db: Annotated[str | None, typer.Option(
        "--db", help="Preview the stored experiment with the spec's key (its live policy) in this store; "
        "default: the spec alone, in memory.")] = None,
    id_column: Annotated[str, typer.Option(help="The column of the recipient's id.")] = "recipient_id",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """What each sample recipient would get and why: rules fired, variants offered, probabilities,
    rendered content; then the rule combinations and fallbacks the sample leaves uncovered."""
    spec = read_spec(spec_file)
    sample = _recipients(recipients, id_column)
    if db is None:
        service = open_service(IN_MEMORY, seed=0)
        info = service.create(spec)
        source = f"{spec.key}: the spec in memory ({spec.design.type} design"
        source += "; its policy is untrained)" if info.spec.design.type in ("bandit", "contextual") else ")"
        warnings = info.warnings
    else:
        service = open_service(db, seed=0)
        info = service.get(spec.key)
        source = f"{spec.key}: stored version {info.version} ({info.status})"
        warnings = []
    data = report_to_dict(service.preview_report(spec.key, sample))
    if as_json:
        print_json({"source": source, "warnings": warnings, **data})
        return
    for warning in warnings:
        typer.echo(f"warning: {warning}")
    _print_text(data, source)
