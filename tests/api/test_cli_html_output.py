"""``--html FILE`` that cannot be written is found before the work: one error line naming ``--html``, no
progress, nothing stored (a demo used to store its decisions, then fail, and a re-run doubled them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "simulations" / "examples"
runner = CliRunner()

COMMANDS = {
    "demo": ["demo", "--recipients", "10", "--rounds", "1", "--db", "{db}"],
    "analyze": ["analyze", "spring-sale", "--db", "{db}"],
    "replay": ["replay", "--logs", str(EXAMPLES / "foreign_sends.csv"), "--action-col", "subject_variant",
               "--reward-col", "clicked", "--propensity-col", "logged_prob",
               "--probabilities", str(EXAMPLES / "probabilities.csv")],
    "simulate": ["simulate", "--scenario", str(EXAMPLES / "scenario.yaml"), "--policies", "ab",
                 "--seeds", "1"],
    "power rate": ["power", "rate", "--baseline", "0.03", "--mde", "0.1", "--relative"],
    "power mean": ["power", "mean", "--sd", "10", "--mde", "1"],
    "power test-then-send": ["power", "test-then-send", "--list-size", "100000", "--rates", "0.03,0.036"],
    "power bandit": ["power", "bandit", "--rates", "0.03,0.036", "--horizon", "1000", "--replications", "2"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", ["missing/report.html", "."])
def test_an_unwritable_html_path_fails_before_the_work(tmp_path, command, where):
    db_path = tmp_path / "x.db"
    html = tmp_path / where
    args = [f"sqlite:///{db_path}" if a == "{db}" else a for a in COMMANDS[command]] + ["--html", str(html)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    reason = "No such file or directory" if where.startswith("missing") else "Is a directory"
    assert result.output.splitlines() == [f"error: --html {html}: {reason}"]
    if db_path.exists():
        with sqlite3.connect(db_path) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "decisions" in tables:
                assert conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 0


@pytest.mark.parametrize("existing", [False, True])
def test_a_writable_html_path_gets_the_report(tmp_path, existing):
    html = tmp_path / "curve.html"
    if existing:
        html.write_text("an older report")
    result = runner.invoke(app, [*COMMANDS["power rate"], "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert "<html" in html.read_text()[:2000].lower()
