"""``sendlab assign --file`` and ``sendlab outcomes``: a bad row anywhere in the file, or an unwritable
``--out``, is one error line naming the file's row, and nothing is stored or written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import SPEC, make_spec

runner = CliRunner()
ROWS = 10_005  # more than one batch of 10,000: the bad row is in the second batch
BAD = 10_004  # the file's row (1-based, the header not counted)


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'bulk.db'}"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def create(db: str, tmp_path: Path, spec: dict | None = None) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec or SPEC))
    result = invoke("experiments", "create", str(path), "--db", db)
    assert result.exit_code == 0, result.output


def count(db: str, table: str) -> int:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.strip() and line.strip() != "assigning"]
    assert line.startswith("error: "), line
    return line


def send_file(tmp_path: Path, bad_row: int | None, bad_line: str, header: str = "recipient_id,first_name",
              name: str = "big.csv") -> Path:
    lines = [header] + [f"r{i},N{i}" for i in range(1, ROWS + 1)]
    if bad_row is not None:
        lines[bad_row] = bad_line
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_bad_recipient_id_in_a_later_batch_assigns_nothing(db, tmp_path):
    create(db, tmp_path)
    send = send_file(tmp_path, BAD, "x" * 200 + ",Bad")
    out = tmp_path / "out.jsonl"
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--out", str(out), "--db", db))
    assert line.startswith(f"error: {send} row {BAD}: recipient_id: ")
    assert "128" in line
    assert count(db, "decisions") == 0
    assert not out.exists()


def test_a_context_value_decisions_cannot_store_assigns_nothing(db, tmp_path):
    create(db, tmp_path, make_spec(record=["segment"]))
    send = send_file(tmp_path, BAD, f"r{BAD},NaN", header="recipient_id,segment")
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--db", db, "--json"))
    assert line.startswith(f"error: {send} row {BAD}: context.segment: must be a JSON value")
    assert count(db, "decisions") == 0


def test_a_row_without_an_id_names_the_row_and_assigns_nothing(db, tmp_path):
    create(db, tmp_path)
    send = send_file(tmp_path, BAD, ",Nobody")
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--db", db, "--json"))
    assert line == f"error: {send} row {BAD}: no 'recipient_id'"
    assert count(db, "decisions") == 0


@pytest.mark.parametrize("where", ["missing/out.jsonl", "."])
def test_an_unwritable_out_is_found_before_assigning(db, tmp_path, where):
    create(db, tmp_path)
    send = tmp_path / "send.csv"
    send.write_text("recipient_id\nr1\nr2\n")
    out = tmp_path / where
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--out", str(out), "--db", db))
    reason = "No such file or directory" if where.startswith("missing") else "Is a directory"
    assert line == f"error: --out {out}: {reason}"
    assert count(db, "decisions") == 0


def test_out_may_not_overwrite_the_file_being_assigned(db, tmp_path):
    create(db, tmp_path)
    send = tmp_path / "send.jsonl"
    send.write_text('{"recipient_id": "r1"}\n')
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--out", str(send), "--db", db))
    assert line == f"error: --out {send}: is also the --file; write to another file"
    assert send.read_text() == '{"recipient_id": "r1"}\n'
    assert count(db, "decisions") == 0


def test_a_good_big_file_is_assigned_whole_in_file_order(db, tmp_path):
    create(db, tmp_path)
    send = send_file(tmp_path, None, "")
    out = tmp_path / "out.jsonl"
    result = invoke("assign", "hello", "--file", str(send), "--out", str(out), "--db", db)
    assert result.exit_code == 0, result.output
    assert f"{ROWS:,} decisions written to {out}" in result.output
    ids = [json.loads(line)["recipient_id"] for line in out.read_text().splitlines()]
    assert ids == [f"r{i}" for i in range(1, ROWS + 1)]
    assert count(db, "decisions") == ROWS


@pytest.mark.parametrize(("content", "suffix"), [("", ".csv"), ("recipient_id,first_name\n", ".csv"),
                                                 ("\n", ".jsonl"), ("[]", ".json")])
def test_an_empty_send_is_an_error_naming_the_file(db, tmp_path, content, suffix):
    create(db, tmp_path)
    send = tmp_path / f"empty{suffix}"
    send.write_text(content)
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--db", db))
    assert line == f"error: --file: {send} has no rows"


def test_a_csv_row_with_more_cells_than_the_header_names_the_row(db, tmp_path):
    create(db, tmp_path)
    send = tmp_path / "send.csv"
    send.write_text("recipient_id,first_name\nr1,Ana\nr2,Bo,extra\n")
    line = one_error_line(invoke("assign", "hello", "--file", str(send), "--db", db))
    assert line == f"error: {send} row 2: 3 cells, but the header has 2 columns"
    assert count(db, "decisions") == 0


def test_a_short_csv_row_leaves_its_missing_cells_out(db, tmp_path):
    create(db, tmp_path)
    send = tmp_path / "send.csv"
    send.write_text("recipient_id,first_name\nr1\n")
    result = invoke("assign", "hello", "--file", str(send), "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert [d["recipient_id"] for d in json.loads(result.output)] == ["r1"]


def events_file(tmp_path: Path, bad_line: str) -> Path:
    lines = ["event_id,decision_id,type,timestamp"] + [f"e{i},d{i},click," for i in range(1, ROWS + 1)]
    lines[BAD] = bad_line
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_out_of_range_timestamp_in_a_later_batch_records_nothing(db, tmp_path):
    create(db, tmp_path)
    events = events_file(tmp_path, f"e{BAD},d1,click,0001-01-01T00:00:00+01:00")
    line = one_error_line(invoke("outcomes", str(events), "--db", db))
    assert line.startswith(f"error: {events} row {BAD}: timestamp: ")
    assert count(db, "outcomes") + count(db, "orphan_outcomes") == 0


def test_a_field_error_in_a_later_batch_records_nothing(db, tmp_path):
    create(db, tmp_path)
    events = events_file(tmp_path, f"{'e' * 200},d1,click,")
    line = one_error_line(invoke("outcomes", str(events), "--db", db))
    assert line.startswith(f"error: {events} row {BAD}: event_id: String should have at most 128")
    assert count(db, "outcomes") + count(db, "orphan_outcomes") == 0
