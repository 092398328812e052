"""Print a benchmark's table and write it into its own section of BENCHMARKS.md.

Each benchmark owns the block between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; running it
again replaces that block and leaves the others alone.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats are shown with three significant digits."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, command: str, table: str, notes: str = "") -> None:
    """Print ``table`` and store it, with the command that produced it, in BENCHMARKS.md."""
    print(table)
    body = (
        f"<!-- {name}:start -->\n## {title}\n\n"
        f"Command: `{command}` ({date.today().isoformat()}, Python {platform.python_version()}, "
        f"{platform.machine()})\n\n{table}\n"
        + (f"\n{notes.strip()}\n" if notes.strip() else "")
        + f"<!-- {name}:end -->"
    )
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else (
        "# Benchmarks\n\nFigures written by the scripts in `benchmarks/`; compare the ratios within one "
        "table (absolute times on shared 2-core machines are noise).\n"
    )
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    BENCHMARKS_MD.write_text(text)
