"""``sendlab analyze`` of a fixed-split experiment as text: the guardrails and a refused alpha."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import ADMIN, make_spec

runner = CliRunner()


@pytest.fixture
def experiment(client) -> str:
    """An A/B experiment with the guardrail unsubscribe (the text of a multivariate one adds its factorial
    models, not needed here)."""
    response = client.post("/v1/experiments", json=make_spec(design={"type": "ab"}), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["key"]


def test_analyze_prints_each_guardrail(sqlite_url, experiment, sent):
    # The help says "SRM and guardrails per slot"; the text output printed no guardrail. Each variant's
    # unsubscribe check is one line under its slot's decision: verdict, rates, margin and p.
    result = runner.invoke(app, ["analyze", experiment, "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if "guardrail unsubscribe" in line]
    assert len(lines) == 2  # subject: urgent vs plain; cta: see vs shop
    pattern = (r"guardrail unsubscribe: (urgent vs plain|see vs shop) (non-inferior|NOT shown non-inferior) "
               r"\(\d+\.\d{3}% vs \d+\.\d{3}%, margin 10% of (plain|shop)'s rate, p = [\d.e+-]+\)")
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    data = runner.invoke(app, ["analyze", experiment, "--db", sqlite_url, "--json"]).output
    for g in (g for a in json.loads(data)["analyses"] for g in a["guardrails"]):
        assert f"p = {g['p_value']:.3g})" in next(line for line in lines if line.startswith(
            f"guardrail {g['metric']}: {g['variant']} vs {g['control']}"))


def test_analyze_refuses_an_alpha_too_small_to_analyse(sqlite_url, experiment, sent):
    # 1 - 1e-17 rounds to 1: the slots used to be reported "not analysed" with exit code 0.
    result = runner.invoke(app, ["analyze", experiment, "--db", sqlite_url, "--alpha", "1e-17"],
                           prog_name="sendlab")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: alpha: must be at least 1e-12 and below 1, got 1e-17"]
    smallest = runner.invoke(app, ["analyze", experiment, "--db", sqlite_url, "--alpha", "1e-12"])
    assert smallest.exit_code == 0, smallest.output
    assert "not analysed" not in smallest.output
