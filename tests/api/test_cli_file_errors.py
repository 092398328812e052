"""Files that are not what their names say (not UTF-8, empty, not Parquet), unknown policies and
unusable databases: one ``error:`` line naming the file or option, exit 1, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.cli.group import explain
from api.settings import SettingsError, read_config_file
from bandit import PolicyError
from tests.api.conftest import SPEC

EXAMPLES = Path(__file__).resolve().parents[2] / "simulations" / "examples"
LOG = ["--action-col", "subject_variant", "--reward-col", "clicked", "--propensity-col", "logged_prob"]
LATIN_1 = "caf\xe9".encode("latin-1")  # a byte that is not UTF-8
runner = CliRunner()


def one_error_line(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Bad files: ``latin.yaml``, ``latin.csv`` (recipients), ``latin_log.csv`` (a log whose 3rd row is
    not UTF-8), ``empty.csv``, ``text.parquet``, ``latin_events.jsonl``; and a good ``spec.json``."""
    made = {
        "latin.yaml": b"name: " + LATIN_1 + b"\n",
        "latin.csv": b"recipient_id,first_name\nr1,Ana\nr2," + LATIN_1 + b"\n",
        "latin_log.csv": (EXAMPLES / "foreign_sends.csv").read_bytes().replace(b"emoji", LATIN_1, 1),
        "empty.csv": b"",
        "text.parquet": b"plain,urgent,emoji\n0.1,0.2,0.7\n",
        "latin_events.jsonl": b'{"event_id": "' + LATIN_1 + b'", "decision_id": "d", "type": "click"}\n',
        "spec.json": json.dumps(SPEC).encode(),
    }
    for name, content in made.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in made}


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (["experiments", "create", "{latin.yaml}", "--db", "{db}"], "latin.yaml"),
        (["preview", "{latin.yaml}", "--recipients", "{latin.csv}"], "latin.yaml"),
        (["preview", "{spec.json}", "--recipients", "{latin.csv}"], "latin.csv"),
        (["demo", "--spec", "{latin.yaml}", "--db", "{db}"], "latin.yaml"),
        (["assign", "hello", "--file", "{latin.csv}", "--db", "{db}"], "latin.csv"),
        (["outcomes", "{latin_events.jsonl}", "--db", "{db}"], "latin_events.jsonl"),
        (["power", "mean", "--values", "{latin.csv}", "--column", "first_name", "--mde", "1"],
         "latin.csv"),
        (["power", "mean", "--values", "{latin.yaml}", "--mde", "1"], "latin.yaml"),
        (["replay", "--logs", "{latin_log.csv}", *LOG, "--probabilities",
          str(EXAMPLES / "probabilities.csv")], "latin_log.csv"),
        (["replay", "--logs", str(EXAMPLES / "foreign_sends.csv"), *LOG, "--policy", "{latin.yaml}"],
         "latin.yaml"),
        (["replay", "--logs", str(EXAMPLES / "foreign_sends.csv"), "--map", "{latin.yaml}",
          "--probabilities", str(EXAMPLES / "probabilities.csv")], "latin.yaml"),
        (["simulate", "--scenario", "{latin.yaml}"], "latin.yaml"),
    ],
)
def test_a_file_that_is_not_utf8_is_named(files, tmp_path, args, bad):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    if args[0] == "assign":
        runner.invoke(app, ["experiments", "create", str(files["spec.json"]), "--db", db])
    filled = [db if a == "{db}" else str(files[a[1:-1]]) if a.startswith("{") else a for a in args]
    line = one_error_line(filled)
    assert f"{files[bad]}: not UTF-8 text" in line


@pytest.mark.parametrize(
    ("option", "bad", "reason"),
    [
        ("--logs", "empty.csv", "empty"),
        ("--probabilities", "empty.csv", "empty"),
        ("--logs", "text.parquet", "not a Parquet file"),
        ("--probabilities", "text.parquet", "not a Parquet file"),
    ],
)
def test_an_empty_or_false_parquet_replay_file_is_named(files, option, bad, reason):
    given = {"--logs": str(EXAMPLES / "foreign_sends.csv"),
             "--probabilities": str(EXAMPLES / "probabilities.csv")}
    given[option] = str(files[bad])
    line = one_error_line(["replay", "--logs", given["--logs"], *LOG,
                           "--probabilities", given["--probabilities"]])
    assert line == f"error: {files[bad]}: {reason}"


def test_values_that_do_not_parse_as_csv_are_named(tmp_path):
    values = tmp_path / "values.csv"
    values.write_text("revenue,orders\n1,2\n3,4,5\n")
    line = one_error_line(["power", "mean", "--values", str(values), "--column", "revenue", "--mde", "1"])
    assert line == f"error: --values: {values}: not a valid CSV file: Expected 2 fields in line 3, saw 3"


def test_an_unknown_policy_to_simulate_is_one_line():
    line = one_error_line(["simulate", "--scenario", str(EXAMPLES / "scenario.yaml"),
                           "--policies", "ab,foo"])
    assert line.startswith("error: --policies: ") and "unknown policy 'foo'" in line


@pytest.mark.parametrize(
    ("candidate", "needle"),
    [
        ("name: x\npolicy: foo\n", "unknown policy 'foo'"),
        ("name: x\npolicy: thompson\noptions: {prior_alpha: -1}\n",
         "options.prior_alpha: must be finite and > 0"),
    ],
)
def test_a_replay_candidate_the_policies_reject_is_one_line_naming_its_file(tmp_path, candidate, needle):
    path = tmp_path / "candidate.yaml"
    path.write_text(candidate)
    line = one_error_line(["replay", "--logs", str(EXAMPLES / "foreign_sends.csv"), *LOG,
                           "--policy", str(path)])
    assert line.startswith(f"error: {path}: ") and needle in line


def test_a_database_url_on_a_file_that_is_no_database_is_one_line(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes\n")
    line = one_error_line(["experiments", "list", "--db", f"sqlite:///{path}"])
    assert line == "error: --db: cannot use the database: file is not a database"
    assert path.read_text() == "these are my notes\n"


def test_a_config_file_that_is_not_utf8_is_a_settings_error(tmp_path):
    path = tmp_path / "sendlab.yaml"
    path.write_bytes(b"db: " + LATIN_1 + b"\n")
    with pytest.raises(SettingsError, match=f"SENDLAB_CONFIG: {path}: not UTF-8 text"):
        read_config_file(path)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"), "input is not UTF-8 text"),
        (pd.errors.EmptyDataError("No columns to parse from file"), "an input file is empty"),
        (pa.ArrowInvalid("Parquet magic bytes not found in footer."),
         "not a Parquet file: Parquet magic bytes not found in footer."),
        (pd.errors.ParserError("Error tokenizing data."), "not a valid CSV file: Error tokenizing data."),
        (PolicyError("name: unknown policy 'foo'"), "name: unknown policy 'foo'"),
        (MemoryError(), "out of memory: ask for a smaller computation"),
    ],
)
def test_explain_has_one_line_for_errors_no_reader_named(error, line):
    assert explain(error) == line


def test_explain_leaves_other_database_errors_to_their_traceback():
    import sqlalchemy.exc

    integrity = sqlalchemy.exc.IntegrityError("INSERT ...", {},
                                              sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert explain(integrity) is None  # a bug, not bad input


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--logs", "sends.csv", "--dask", "local[2]"],
         "error: --dask: needs Parquet logs (a .parquet file, a directory or a glob of them), got sends.csv"),
        (["--logs", "sends.parquet", "--dask", "local[0]"],
         "error: --dask: 'local[0]': write local[N] with N from 1 to 64"),
        (["--logs", "sends.parquet", "--dask", "local[two]"],
         "error: --dask: 'local[two]': write local[N] with N from 1 to 64"),
        (["--logs", "sends.parquet", "--dask", "scheduler:8786"],
         "error: --dask: 'scheduler:8786': give a scheduler address (tcp://host:8786) or local[N]"),
        (["--logs", "sends.parquet", "--dask", "local[2]", "--bootstrap", "100"],
         "error: --dask: evaluates a --policy with normal intervals (no --probabilities, no --bootstrap, "
         "no --refit-bootstrap)"),
        (["--logs", "sends.parquet", "--dask", "local[2]", "--refit-bootstrap", "50"],
         "error: --dask: evaluates a --policy with normal intervals (no --probabilities, no --bootstrap, "
         "no --refit-bootstrap)"),
        (["--experiment", "spring-sale", "--dask", "local[2]"],
         "error: --dask: needs --logs (Parquet files the workers can read), not --experiment"),
        (["--logs", "no-such-dir/*.parquet", "--dask", "local[2]"],
         "error: logs: no Parquet file found at no-such-dir/*.parquet"),
    ],
)
def test_a_replay_on_dask_that_cannot_run_is_one_line(monkeypatch, args, line):
    monkeypatch.chdir(EXAMPLES)
    assert one_error_line(["replay", *args, "--policy", "candidate.yaml"]) == line


def test_an_unreachable_scheduler_is_one_line(monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.setattr("simulations.dask_replay.CONNECT_SECONDS", 1)
    line = one_error_line(["replay", "--logs", "sends.parquet", "--policy", "candidate.yaml",
                           "--dask", "tcp://127.0.0.1:9"])
    assert line.startswith("error: --dask: cannot reach the scheduler at tcp://127.0.0.1:9: "), line
