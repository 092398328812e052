"""Reading recipients and outcome events from files for the bulk commands (CSV, JSON Lines, JSON)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from api.cli.group import CliError


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


def read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.csv``, ``.jsonl`` / ``.ndjson`` (one object per line) or ``.json`` (a list) file."""
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", newline="") as handle:
        if suffix == ".csv":
            return [{k: parse_cell(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except (ValueError, RecursionError) as exc:
                        raise CliError(f"{path}:{number}: not valid JSON: {_reason(exc)}") from exc
        elif suffix == ".json":
            try:
                rows = json.load(handle)
            except (ValueError, RecursionError) as exc:
                raise CliError(f"{path}: not valid JSON: {_reason(exc)}") from exc
            if not isinstance(rows, list):
                raise CliError(f"{path}: expected a JSON list of objects")
        else:
            raise CliError(f"{path}: unknown file type {suffix!r} (use .csv, .jsonl or .json)")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise CliError(f"{path}: row {i + 1} is not an object")
    return rows


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
