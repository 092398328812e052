"""``sendlab verify KEY``: recompute an experiment's rollups from its log and compare.

Results read the rollups the writes keep (:mod:`experiments.store.rollups`); this command recomputes
each spec version's cells, outcome counts and breakdowns (by segment, by covariate, the adaptive
inverse-propensity sums) from the decision and outcome log in full and compares them: counts must be
equal, reward sums equal to a relative 1e-9 (sums kept by deltas round differently from one summed in
one pass). It reads the whole log of the experiment, so it takes as
long as a results page did before rollups.
"""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.db import DEFAULT, DbOption, open_engine
from api.cli.output import print_json

Key = Annotated[str, typer.Argument(help="The experiment's key.")]


def verify(
    key: Key,
    db: DbOption = DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute an experiment's rollups (the sums results read) from its log and compare.

    Exits 0 with one line when they are equal, 1 with one line per difference otherwise.
    """
    from experiments.store.rollup_checks import verify_experiment

    checks = verify_experiment(open_engine(db), key)
    equal = all(not c.differences for c in checks)
    if as_json:
        print_json({"key": key, "equal": equal, "versions": [
            {"version": c.version, "cells": c.cells, "decisions": c.decisions, "differences": c.differences}
            for c in checks]})
    elif equal:
        decisions = sum(c.decisions for c in checks)
        typer.echo(f"OK {key}: rollups equal the log ({len(checks)} spec version"
                   f"{'s' if len(checks) != 1 else ''}, {decisions:,} decisions)")
    else:
        for c in checks:
            for line in c.differences:
                typer.echo(f"version {c.version}: {line}")
        n = sum(len(c.differences) for c in checks)
        typer.echo(f"DIFFERENT {key}: {n} difference{'s' if n != 1 else ''} between the rollups and the log")
    if not equal:
        raise typer.Exit(1)
