"""The command line starts without loading what its commands need: sub-commands load when used."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from api.cli import NAME_TO_COMMAND, app

HEAVY = ("pandas", "scipy", "statsmodels", "sqlalchemy", "sqlmodel", "numpy", "pyarrow", "plotly",
         "vowpalwabbit", "fastapi")


def _modules_after(code: str) -> set[str]:
    listing = "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code + listing], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    assert _heavy(_modules_after("import api.cli")) == []


def test_the_root_help_loads_no_command() -> None:
    code = ("from typer.testing import CliRunner\nfrom api.cli import app\n"
            "result = CliRunner().invoke(app, ['--help'])\nassert result.exit_code == 0, result.output")
    modules = _modules_after(code)
    assert _heavy(modules) == []
    assert not {f"api.cli.{name}" for name in ("serve", "demo", "analyze", "offline", "power")} & modules


def test_a_rate_plan_needs_neither_scipy_nor_statsmodels() -> None:
    code = ("from typer.testing import CliRunner\nfrom api.cli import app\n"
            "result = CliRunner().invoke(app, ['power', 'rate', '--baseline', '0.03', '--mde', '0.1', "
            "'--relative', '--json'])\nassert result.exit_code == 0, result.output\n"
            "assert '53182' in result.output")
    assert _heavy(_modules_after(code)) == []


@pytest.mark.parametrize("name", list(NAME_TO_COMMAND))
def test_each_listed_help_line_is_the_commands_own(name: str) -> None:
    command = NAME_TO_COMMAND[name].load(name)
    own = inspect.cleandoc(command.help or "").split("\n\n")[0]
    assert NAME_TO_COMMAND[name].help == own


def test_every_command_is_reachable_and_shows_its_help() -> None:
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    for name in NAME_TO_COMMAND:
        assert name in listing.output
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_an_unknown_command_is_one_line_and_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-c", "from api.cli import app; app()", "nosuch"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
