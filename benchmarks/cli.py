"""How fast the command line starts: ``sendlab --help`` and a rate plan, against importing Typer.

Run: ``python -m benchmarks.cli``. Each command runs in a fresh process (the interpreter of this
environment, with the current directory first on the path); the three alternate ``--rounds`` times
and the table shows each one's median wall time and its ratio to ``python -c "import typer"``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import format_table, write_section

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    'python -c "import typer" (floor)': ["-c", "import typer"],
    "sendlab --help": ["-c", "from api.cli import app; app()", "--help"],
    "sendlab power rate --baseline 0.03 --mde 0.1 --relative --json":
        ["-c", "from api.cli import app; app()", "power", "rate", "--baseline", "0.03", "--mde", "0.1",
         "--relative", "--json"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {label: [] for label in CASES}
    for _ in range(args.rounds):
        for label, argv in CASES.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], env=env, check=True, capture_output=True)
            times[label].append(time.perf_counter() - start)
    floor = statistics.median(times['python -c "import typer" (floor)'])
    rows = [[label, f"{statistics.median(t):.3f}", f"{statistics.median(t) / floor:.2f}"]
            for label, t in times.items()]
    notes = (f"Medians of {args.rounds} alternating runs, each a fresh process. Goal of issue 19: both "
             "commands within 3x of importing Typer. Sub-commands are loaded when used; a rate plan "
             "needs the standard library's normal distribution only (Typer itself loads pydantic to "
             "convert the options, and rich to draw the help).")
    write_section("cli", "Command-line start-up", "python -m benchmarks.cli",
                  format_table(["command", "seconds", "x import typer"], rows), notes)


if __name__ == "__main__":
    main()
