"""``sendlab analyze`` of a fixed-split experiment as text: a refused alpha."""

from __future__ import annotations

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
