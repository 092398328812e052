"""``sendlab export``: an experiment's decision and outcome log as Parquet partitioned by day."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.db import DEFAULT, DbOption, open_engine
from api.cli.group import CliError
from api.cli.output import print_fields, print_json


def export(
    key: Annotated[str, typer.Argument(help="The experiment's key.", show_default=False)],
    parquet: Annotated[Path, typer.Option(
        "--parquet", help="Write DIR/decisions/day=.../ and DIR/outcomes/day=.../ Parquet files (DIR must "
        "be empty or absent).", show_default=False)],
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows read at a time.")] = 50_000,
    db: DbOption = DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """An experiment's decision and outcome log as Parquet partitioned by day.

    The whole log (every spec version), for a warehouse, DuckDB or Dask."""
    from experiments.parquet_export import export_parquet

    try:
        result = export_parquet(open_engine(db), key, parquet, chunk_rows=chunk_rows)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise CliError(f"--parquet {parquet}: {exc.strerror or exc}") from None
    if as_json:
        print_json(result)
    else:
        print_fields([("decisions", result.decisions), ("outcomes", result.outcomes),
                      ("days", len(result.days)), ("directory", result.directory)])
