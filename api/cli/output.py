"""Printing results: JSON with ``--json``, aligned plain-text tables otherwise."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from api.cli.group import CliError
from api.convert import to_jsonable


def print_json(data: Any) -> None:
    """The result as indented JSON on stdout."""
    typer.echo(json.dumps(to_jsonable(data), indent=2, sort_keys=False, allow_nan=False, default=str))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table with aligned columns."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``name: value`` lines, names aligned."""
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        typer.echo(f"{key.ljust(width)}  {_cell(value)}")


def check_output(option: str, path: Path | None, *, input_file: tuple[str, Path] | None = None) -> None:
    """Fail now if ``path`` cannot be written, before the work whose result would then be lost (nothing
    to check when the option is not given: ``path`` None).

    The :class:`CliError` names ``option`` and the reason (``--html /no/dir/r.html: No such file or
    directory``). An existing file is opened for appending and left as it is; a new one is created and
    removed again. ``input_file`` is ``(option, path)`` of a file the command reads while it writes
    ``path``: the output may not replace it.
    """
    if path is None:
        return
    if input_file is not None:
        name, source = input_file
        if path.exists() and source.exists() and os.path.samefile(path, source):
            raise CliError(f"{option} {path}: is also the {name}; write to another file")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as exc:
        raise CliError(f"{option} {path}: {exc.strerror}") from exc
    if not existed:
        path.unlink(missing_ok=True)
