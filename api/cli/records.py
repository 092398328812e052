"""Reading recipients and outcome events from files for the bulk commands (CSV, JSON Lines, JSON).

:func:`iter_records` reads a file row by row (a ``.json`` list is loaded whole), so that a bulk command
can check every row of a large file in one pass and store it in a second, in bounded memory.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from api.cli.group import CliError
from experiments.errors import InvalidInput

SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")


def parse_cell(text: str) -> Any:
    """A CSV cell as JSON when it parses (``3`` -> 3, ``true`` -> True), else the text itself (also when
    it nests too deeply for the parser or has an integer of over 4,300 digits)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return text


def _reason(exc: BaseException) -> str:
    """Why JSON text could not be read: the decoder's message, or what a parser's limit stopped."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number has too many digits" if "integer string conversion" in str(exc) else str(exc)


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` for each row of a ``.csv``, ``.jsonl`` / ``.ndjson`` (one object per line) or
    ``.json`` (a list) file; rows are numbered from 1, a CSV header and blank JSON lines not counted.

    Empty CSV cells, and the cells missing at the end of a short row, are left out of the row. Problems
    (text that is not UTF-8, invalid JSON, a row that is not an object, a CSV row with more cells than
    the header) are a :class:`CliError` naming the file and the row or line.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CliError(f"{path}: unknown file type {suffix!r} (use .csv, .jsonl or .json)")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        try:
            yield from _rows(path, suffix, handle)
        except UnicodeDecodeError as exc:
            raise CliError(f"{path}: not UTF-8 text") from exc


def _rows(path: Path, suffix: str, handle: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if suffix == ".csv":
        reader = csv.DictReader(handle)
        for number, row in enumerate(reader, start=1):
            extra = row.pop(None, None)  # type: ignore[call-overload]
            if extra is not None:
                columns = len(reader.fieldnames or ())
                raise CliError(f"{path} row {number}: {columns + len(extra)} cells, but the header has "
                               f"{columns} columns")
            yield number, {k: parse_cell(v) for k, v in row.items() if v is not None and v != ""}
        return
    if suffix == ".json":
        try:
            rows = json.load(handle)
        except UnicodeDecodeError:
            raise  # "not UTF-8 text" (iter_records)
        except (ValueError, RecursionError) as exc:
            raise CliError(f"{path}: not valid JSON: {_reason(exc)}") from exc
        if not isinstance(rows, list):
            raise CliError(f"{path}: expected a JSON list of objects")
        for number, row in enumerate(rows, start=1):
            yield number, _object(path, number, row)
        return
    number = 0
    for line_number, line in enumerate(handle, start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise CliError(f"{path}:{line_number}: not valid JSON: {_reason(exc)}") from exc
            number += 1
            yield number, _object(path, number, row)


def _object(path: Path, number: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise CliError(f"{path}: row {number} is not an object")
    return row


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every row of the file (see :func:`iter_records`), in memory."""
    return [row for _, row in iter_records(path)]


def row_error(path: Path, first: int, exc: InvalidInput, items: str) -> Exception:
    """The error to raise for a service's problem with item ``i`` of a batch whose first item is the
    file's row ``first``: ``items[i].field: reason`` becomes ``path row N: field: reason``. A problem
    that names no item (``exc.field`` not ``items[i]...``) is returned unchanged."""
    where = re.fullmatch(rf"{re.escape(items)}\[(\d+)\]\.?(.*)", str(exc.field or ""))
    if where is None:
        return exc
    return CliError(f"{path} row {first + int(where.group(1))}: {where.group(2) or 'row'}: {exc.reason}")
