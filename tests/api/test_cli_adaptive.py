"""``sendlab analyze`` of bandit and contextual designs: the adaptive sections in the table, the JSON
and the HTML report, and the report route."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from analysis.adaptive import AS_ALLOCATED_NOTE
from api.cli import app
from tests.api.adaptive_flow import TRUE_CONTEXTUAL_LIFT, run_bandit, run_contextual
from tests.api.conftest import ADMIN

runner = CliRunner()
RATES = {"plain": 0.05, "urgent": 0.30, "third": 0.06}


def test_analyze_prints_the_adaptive_sections_of_a_bandit(make_client, tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    client = make_client(db)
    run_bandit(client, "tb", RATES)
    report = tmp_path / "report.html"
    table = runner.invoke(app, ["analyze", "tb", "--db", db, "--html", str(report)])
    assert table.exit_code == 0, table.output
    assert f"(the table above is {AS_ALLOCATED_NOTE})" in table.output
    assert "estimates if every eligible recipient got each variant: adaptively weighted IPW" in table.output
    assert "subject: a winner: urgent" in table.output
    for policy in ("as run", "uniform split", "defaults"):
        assert f"\n{policy}" in table.output
    assert "warning: plain was sent at the propensity floor" in table.output
    page = report.read_text(encoding="utf-8")
    assert "Estimates if every eligible recipient got each variant" in page and "Policy value" in page
    assert "as allocated: not comparable under a learning policy" in page

    data = json.loads(runner.invoke(app, ["analyze", "tb", "--db", db, "--json"]).output)
    assert data["policy_value"]["as_run"]["decisions"] == sum(a["decisions"] for a in data["arms"])
    assert all("Hadad" in c["method"] for c in data["comparisons"])
    assert all(c["note"] == AS_ALLOCATED_NOTE for c in data["as_allocated_comparisons"])
    assert data["decisions"]["subject"]["winner"] == "urgent"
    assert {w["kind"] for w in data["adaptive"]["warnings"]} >= {"propensity_floor"}

    served = client.get("/v1/experiments/tb/report", headers=ADMIN)
    assert served.status_code == 200 and "Policy value" in served.text


def test_analyze_json_of_a_contextual_design_has_the_true_sign(make_client, tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    run_contextual(make_client(db), "tc")
    data = json.loads(runner.invoke(app, ["analyze", "tc", "--db", db, "--json"]).output)
    c = next(c for c in data["comparisons"] if c["metric"] == "reward")
    assert c["as_allocated_lift"] < 0 < c["absolute_lift"]
    half = (c["absolute_ci"][1] - c["absolute_ci"][0]) / 2
    assert abs(c["absolute_lift"] - TRUE_CONTEXTUAL_LIFT) < 1.5 * half
    table = runner.invoke(app, ["analyze", "tc", "--db", db])
    assert table.exit_code == 0 and "AIPW" in table.output


def test_demo_of_the_contextual_example_shows_the_adaptive_results(tmp_path):
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    out = runner.invoke(app, ["demo", "--db", db, "--rounds", "2", "--recipients", "300", "--json"])
    assert out.exit_code == 0, out.output
    results = json.loads(out.output)["results"]
    assert results["design"] == "contextual" and results["arms_note"] == AS_ALLOCATED_NOTE
    assert results["policy_value"]["as_run"]["decisions"] == results["adaptive"]["decisions"] > 0
    assert all(c["method"] for c in results["comparisons"])
