"""Reading a file of past values per recipient (revenue, order value) for ``sendlab power mean --values``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from api.cli.group import CliError
from simulations.file_errors import file_problem

_SEPARATORS = (",", ";", "\t")


def read_past_values(path: Path, column: str | None = None) -> list[float]:
    """The numbers in ``path``: one per line (an optional header line first), or a CSV column.

    Parameters
    ----------
    path : Path
        A text file with one number per line, or a CSV file (``,``, ``;`` or tab separated) with a
        header row.
    column : str, optional
        The CSV column to read; needed when the file has more than one.

    Returns
    -------
    list of float
        Every value, in file order. Empty cells, blank lines between values and text are reported with
        their line, never skipped: a recipient who spent nothing is a 0, not a blank.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise CliError(f"--values: {path}: not UTF-8 text") from exc
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if not filled:
        raise CliError(f"--values: {path} is empty")
    blank = next((i for i in range(filled[0], filled[-1]) if not lines[i].strip()), None)
    if blank is not None:  # between two lines with text: a recipient without a value
        raise _empty(path, blank + 1, None)
    first = lines[filled[0]]  # the header, or the first value (blank lines before it hold nobody)
    separator = next((s for s in _SEPARATORS if s in first), None)
    if column is None and separator is None:
        return _one_per_line(path, lines)
    try:
        table = pd.read_csv(path, sep=separator or ",", dtype=str, keep_default_na=False,
                            skip_blank_lines=True)
    except pd.errors.ParserError as exc:
        raise CliError(f"--values: {file_problem(path, exc)}") from exc
    names = [str(c) for c in table.columns]
    if column is None:
        if len(names) > 1:
            raise CliError(f"--values: {path} has columns {', '.join(names)}; choose one with --column")
        column = names[0]
    if column not in names:
        raise CliError(f"--column: {path} has no column {column!r}; it has {', '.join(names)}")
    return [_number(path, cell, filled[0] + 2 + row, column) for row, cell in enumerate(table[column])]


def _one_per_line(path: Path, lines: list[str]) -> list[float]:
    numbered = [(i + 1, line.strip()) for i, line in enumerate(lines) if line.strip()]
    if numbered and not _is_number(numbered[0][1]):
        numbered = numbered[1:]  # a header such as "revenue"
    return [_number(path, text, line, None) for line, text in numbered]


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _where(path: Path, line: int, column: str | None) -> str:
    return f"{path}: line {line}" + (f", column {column!r}" if column else "")


def _empty(path: Path, line: int, column: str | None) -> CliError:
    return CliError(f"--values: {_where(path, line, column)} is empty; a recipient without a value is a 0")


def _number(path: Path, text: str, line: int, column: str | None) -> float:
    if not text.strip():
        raise _empty(path, line, column)
    if not _is_number(text):
        raise CliError(f"--values: {_where(path, line, column)}: {text.strip()!r} is not a finite number")
    return float(text)
