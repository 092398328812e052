"""The ``sendlab`` command line through Typer's CliRunner, and once as the real installed binary."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize
from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import SPEC

EXAMPLE = Path(__file__).resolve().parents[2] / "api" / "examples" / "spring-sale.yaml"
runner = CliRunner()


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def spec_file(tmp_path) -> Path:
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(SPEC))
    return path


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_power_rate_prints_per_arm_total_and_days():
    # Reference: statsmodels NormalIndPower on Cohen's h, 0.033 vs 0.03, alpha 0.05, power 0.8.
    n = math.ceil(NormalIndPower().solve_power(proportion_effectsize(0.033, 0.03), alpha=0.05, power=0.8))
    result = invoke("power", "rate", "--baseline", "0.03", "--mde", "0.10", "--relative", "--daily", "200000")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(None, 1) if not line.startswith("per arm") else ("per arm", line[8:].strip())
                 for line in result.output.splitlines() if line.strip())
    assert lines["per arm"] == f"{n:,}"
    assert lines["total"] == f"{2 * n:,}"
    assert lines["days"] == str(math.ceil(2 * n / 200_000))


def test_power_json_and_mean():
    rate = json.loads(invoke("power", "rate", "--baseline", "0.03", "--mde", "0.003", "--json").output)
    assert rate["days"] is None and rate["total"] == 2 * rate["per_arm"]
    mean = json.loads(invoke("power", "mean", "--sd", "10", "--mde", "1", "--arms", "3", "--json").output)
    assert mean["per_arm_sizes"] == [mean["per_arm"]] * 3
    assert mean["details"]["alpha_per_comparison"] == pytest.approx(0.025)  # Bonferroni over 2 comparisons


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["power", "rate", "--baseline", "3", "--mde", "0.1"], "baseline must be strictly between 0 and 1"),
        (["power", "rate", "--mde", "0.1"], "Missing option '--baseline'"),
        (["power", "rate", "--baseline", "0.03", "--mde", "x"], "--mde"),
        (["power", "mean", "--sd", "0", "--mde", "1"], "sd must be greater than 0"),
        (["experiments", "show", "nope"], "experiment 'nope' not found"),
        (["experiments", "create", "/no/such/spec.yaml"], "/no/such/spec.yaml: No such file or directory"),
        (["assign", "nope", "--recipient", "r", "--context", "novalue"], "--context: expected name=value"),
        # one recipient: its fields are recipient_id and context, not recipients.0.<field>
        (["assign", "nope", "--recipient", ""], "error: recipient_id: must be a non-empty string"),
        (["assign", "nope", "--recipient", "r", "--context-json", "[" * 100_000 + "]" * 100_000],
         "--context-json: not valid JSON: nested too deeply"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(db, args, needle):
    extra = ["--db", db] if args[0] in ("experiments", "assign") else []
    result = runner.invoke(app, args + extra, prog_name="sendlab", standalone_mode=True)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and needle in lines[0]


def test_bad_spec_lists_every_problem_on_one_line(db, tmp_path):
    bad = dict(SPEC, default={"subject": "missing"}, holdout=2)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = invoke("experiments", "create", str(path), "--db", db)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "default.subject: unknown variant 'missing'" in line
    assert "holdout" in line


def test_experiment_lifecycle(db, spec_file):
    created = json.loads(invoke("experiments", "create", str(spec_file), "--db", db, "--json").output)
    assert (created["key"], created["version"], created["status"]) == ("hello", 1, "running")
    listed = json.loads(invoke("experiments", "list", "--db", db, "--json").output)
    assert [e["key"] for e in listed] == ["hello"]
    shown = invoke("experiments", "show", "hello", "--db", db)
    assert "slot subject: plain, urgent" in shown.output
    for command, status in [("pause", "paused"), ("resume", "running"), ("archive", "archived")]:
        out = json.loads(invoke("experiments", command, "hello", "--db", db, "--json").output)
        assert out["status"] == status


def test_assign_with_context(db, spec_file):
    invoke("experiments", "create", str(spec_file), "--db", db)
    result = invoke("assign", "hello", "-r", "ana", "-c", "first_name=Ana", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["recipient_id"] == "ana"
    assert decision["propensity"] == pytest.approx(0.25)
    again = json.loads(invoke("assign", "hello", "-r", "ana", "--db", db, "--json").output)
    assert again["variants"]["subject"]["id"] == decision["variants"]["subject"]["id"]  # sticky


def test_a_bad_context_value_of_one_recipient_is_named_by_its_own_path(db, spec_file):
    invoke("experiments", "create", str(spec_file), "--db", db)
    for args, message in [
        (["-c", "consent=NaN"], "error: context.consent: must be a JSON value (finite numbers), got nan"),
        (["--context-json", '{"first_name": "A\\u0000na"}'],
         "error: context.first_name: must not contain a NUL character (\\u0000)"),
    ]:
        result = runner.invoke(app, ["assign", "hello", "-r", "ana", *args, "--db", db], prog_name="sendlab")
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [message]


def test_demo_runs_end_to_end_and_writes_the_report(db, tmp_path):
    html = tmp_path / "demo.html"
    result = invoke("demo", "--db", db, "--html", str(html), "--recipients", "300", "--rounds", "2", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [r["recipients"] for r in out["rounds"]] == [300, 300]
    assert out["results"]["key"] == "spring-sale"
    decided = sum(a["decisions"] for a in out["results"]["arms"] if a["slot"] == "subject")
    assert decided + sum(out["results"]["fallbacks"].values()) == 600  # fallbacks include the holdout
    assert html.read_text().lstrip().lower().startswith("<!doctype html") or "<html" in html.read_text()[:500]
    analysed = json.loads(invoke("analyze", "spring-sale", "--db", db, "--json").output)
    assert analysed["arms"] == out["results"]["arms"]


def test_the_real_binary_exits_non_zero_with_one_line():
    binary = Path(sys.executable).parent / "sendlab"
    done = subprocess.run([str(binary), "power", "rate", "--baseline", "1.2", "--mde", "0.1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["error: baseline must be strictly between 0 and 1; got 1.2."]


EXAMPLES = Path(__file__).resolve().parents[2] / "simulations" / "examples"


def test_replay_with_a_probabilities_file_matches_the_ips_formula():
    import pandas as pd  # reference computed here from the raw files

    result = invoke("replay", "--logs", str(EXAMPLES / "foreign_sends.csv"),
                    "--action-col", "subject_variant", "--reward-col", "clicked",
                    "--propensity-col", "logged_prob",
                    "--probabilities", str(EXAMPLES / "probabilities.csv"), "--estimators", "ips", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    (candidate,) = out["candidates"]
    (ips,) = candidate["estimates"]
    logs = pd.read_csv(EXAMPLES / "foreign_sends.csv")
    target = pd.read_csv(EXAMPLES / "probabilities.csv")
    # IPS: mean over rows of pi(a_i | x_i) / p_i * r_i (Horvitz-Thompson)
    pi = target.to_numpy()[range(len(logs)), [list(target.columns).index(a) for a in logs.subject_variant]]
    assert ips["value"] == pytest.approx((pi / logs.logged_prob * logs.clicked).mean(), rel=1e-9)


def test_simulate_prints_json_and_writes_html(tmp_path):
    html = tmp_path / "sim.html"
    result = invoke("simulate", "--scenario", str(EXAMPLES / "scenario.yaml"), "--policies", "ab,thompson",
                    "--seeds", "1", "--json", "--html", str(html))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [p["policy"] for p in out["policies"]] == ["ab", "thompson"]
    assert "<html" in html.read_text()[:2000].lower()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--estimators", "ips,magic", "--probabilities", "x.csv"], "--estimators: unknown ['magic']"),
        (["--probabilities", "x.csv", "--policy", "y.yaml"], "--policy / --probabilities: give exactly one"),
        (["--reward-col", "", "--probabilities", "x.csv"], "--reward-col: needed"),
    ],
)
def test_replay_bad_options_give_one_line(args, needle):
    base = ["replay", "--logs", str(EXAMPLES / "foreign_sends.csv"), "--action-col", "subject_variant",
            "--reward-col", "clicked", "--propensity-col", "logged_prob"]
    result = invoke(*base, *args)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and needle in line


def test_assign_a_file_then_post_its_outcomes_twice(db, spec_file, tmp_path):
    invoke("experiments", "create", str(spec_file), "--db", db)
    send = tmp_path / "send.csv"
    send.write_text("recipient_id,first_name,recency_days\n" + "".join(f"r{i},N{i},{i}\n" for i in range(25)))
    out = tmp_path / "decisions.jsonl"
    result = invoke("assign", "hello", "--file", str(send), "--out", str(out), "--db", db)
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["recipient_id"] for d in decisions] == [f"r{i}" for i in range(25)]
    events = tmp_path / "events.jsonl"
    rows = [{"event_id": f"e{i}", "decision_id": d["decision_id"], "type": "click", "value": 1.5}
            for i, d in enumerate(decisions[:10])]
    events.write_text("".join(json.dumps(row) + "\n" for row in rows))
    first = json.loads(invoke("outcomes", str(events), "--db", db, "--json").output)
    again = json.loads(invoke("outcomes", str(events), "--db", db, "--json").output)
    assert first == {"accepted": 10, "duplicates": 0, "orphans": 0, "erased": 0}
    assert again == {"accepted": 0, "duplicates": 10, "orphans": 0, "erased": 0}


@pytest.mark.parametrize(
    ("content", "suffix", "needle"),
    [
        ('{"event_id": "e"}\n', ".jsonl", "row 1: decision_id: Field required"),
        ("{not json\n", ".jsonl", ":1: not valid JSON"),
        ("event_id\n", ".txt", "unknown file type '.txt'"),
        ("event_id,decision_id,type,timestamp\ne1,d1,click,2026-01-01T00:00:00Z\n"
         "e2,d1,click,0001-01-01T00:00:00+01:00\n", ".csv",
         "events.csv row 2: timestamp: out of range: 0001-01-01T00:00:00+01:00 is not between years 1 and "
         "9999 in UTC"),
        ('{"event_id": "e\\u0000", "decision_id": "d", "type": "click"}\n', ".jsonl",
         "row 1: event_id: must not contain a NUL character"),
    ],
)
def test_bad_outcome_files_give_one_line(db, tmp_path, content, suffix, needle):
    path = tmp_path / f"events{suffix}"
    path.write_text(content)
    result = invoke("outcomes", str(path), "--db", db)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert needle in line


def test_files_nested_deeper_than_the_json_parser_recurses_give_one_line(db, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    for suffix, content, needle in [
        (".jsonl", '{"event_id": ' + deep + "}\n", "events.jsonl:1: not valid JSON: nested too deeply"),
        (".json", deep, "events.json: not valid JSON: nested too deeply"),
    ]:
        path = tmp_path / f"events{suffix}"
        path.write_text(content)
        result = invoke("outcomes", str(path), "--db", db)
        assert result.exit_code == 1
        (line,) = result.output.strip().splitlines()
        assert needle in line


def test_serve_reports_an_unusable_config_file_on_one_line(tmp_path, monkeypatch):
    for name in ("SENDLAB_DB", "SENDLAB_CREATE_TABLES"):  # serve sets them for its workers: restore after
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}"],
                           env={"SENDLAB_CONFIG": str(tmp_path / "missing.yaml")})
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: SENDLAB_CONFIG: cannot read") and "missing.yaml" in line


def test_serve_on_a_port_in_use_is_one_line_before_anything_starts(tmp_path, monkeypatch):
    import socket

    for name in ("SENDLAB_DB", "SENDLAB_CREATE_TABLES", "SENDLAB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [f"error: --port {port}: address already in use"]
    assert not (tmp_path / "s.db").exists()  # checked before the store is opened


def test_a_bad_database_url_is_reported_against_db():
    result = invoke("experiments", "list", "--db", "mysql://somewhere/x")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: --db: url: unsupported database 'mysql' (use sqlite or postgresql+psycopg)")
