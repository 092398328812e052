"""``sendlab replay`` on logs with extreme values, odd headers and mixed partitions: rows set aside or
one error line, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()
HEADER = "decision_id,action,propensity,reward,context.device,context.recency_days"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def write_log(folder: Path, last_row: str, name: str = "sends.csv") -> Path:
    """20 ordinary rows (plain and urgent alternating), then ``last_row``."""
    rows = [f"a{i},plain,0.3,1,ios,1\nb{i},urgent,0.5,0,ios,2" for i in range(1, 11)]
    path = folder / name
    path.write_text("\n".join([HEADER, *rows, last_row]) + "\n")
    return path


def always_plain(folder: Path) -> Path:
    path = folder / "always_plain.yaml"
    path.write_text("name: always_plain\nvariant: plain\n")
    return path


def error_line(result) -> str:
    """The only line a failed command printed (``--json`` shows no progress)."""
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: "), line
    return line


def set_aside_table(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    assert re.split(r"\s{2,}", lines[1]) == ["set aside", "rows", "example"]
    end = next(i for i, line in enumerate(lines) if line.startswith("policy "))
    return [re.split(r"\s{2,}", line) for line in lines[3:end]]


@pytest.mark.parametrize("reward", ["1", "0"])
def test_a_propensity_below_the_floor_is_set_aside_with_the_others(tmp_path, reward):
    logs = write_log(tmp_path, f"i,plain,1e-200,{reward},ios,1")
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "rows: 21 read, 20 used, 1 set aside; 10 to train, 10 evaluated"
    assert set_aside_table(result.stdout) == [["propensity below floor", "1", "row 20: 1e-200"]]


def test_a_propensity_below_the_floor_is_set_aside_beside_a_probability_file(tmp_path):
    logs = write_log(tmp_path, "i,plain,1e-200,1,ios,1")
    probabilities = tmp_path / "probabilities.csv"
    probabilities.write_text("plain,urgent\n" + "0.5,0.5\n" * 21)
    result = invoke("replay", "--logs", str(logs), "--probabilities", str(probabilities), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["logs"]["rejected"] == {
        "propensity_below_floor": {"count": 1, "examples": [{"row": 20, "value": "1e-200"}]}}
    assert out["candidates"][0]["estimates"][0]["n"] == 20


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "error: rewards: too large for the logging policy's value: a sum overflows a float "
             "(largest |reward| 1e+200); rescale the rewards"),
        (["--chunk-rows", "1"], "error: rewards: too large for the logging policy's value"),
    ],
)
def test_a_reward_whose_square_overflows_is_one_error_line(tmp_path, args, needle):
    logs = write_log(tmp_path, "i,plain,0.5,1e200,ios,1")
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json", *args)
    assert error_line(result).startswith(needle)


def test_rewards_whose_merged_sums_overflow_are_one_error_line(tmp_path):
    # each row's squared IPS value (weight 2 x 5e153)^2 = 1e308 is finite, the sum of two is not
    logs = write_log(tmp_path, "i,plain,0.5,5e153,ios,1\nj,plain,0.5,5e153,ios,1")
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json",
                    "--estimators", "ips", "--chunk-rows", "1")
    assert error_line(result) == ("error: rewards: too large for the ips estimate: a sum overflows a float "
                                  "(over 11 rows); rescale the rewards")


def write_partitions(folder: Path, text_column: str | None) -> Path:
    """Three day partitions of 20 rows; day 2 stores the reward as integers (merged with day 1's
    floats), day 3 stores ``text_column`` (if any) as text."""
    import pandas as pd

    frame = pd.read_csv(write_log(folder, "b11,urgent,0.5,0,ios,2", "all.csv")).iloc[:20]
    frame["reward"] = frame["reward"].astype(float)
    for day in (1, 2, 3):
        part = frame.copy()
        if day == 2:
            part["reward"] = part["reward"].astype("int64")
        if day == 3 and text_column is not None:
            part[text_column] = part[text_column].astype(str)
        (folder / "logs" / f"day={day}").mkdir(parents=True)
        part.to_parquet(folder / "logs" / f"day={day}" / "p.parquet")
    return folder / "logs"


@pytest.mark.parametrize(("column", "kind"), [("propensity", "double"), ("context.recency_days", "int64")])
def test_parquet_partitions_whose_column_types_differ_are_one_error_line_naming_file_and_column(
        tmp_path, column, kind):
    logs = write_partitions(tmp_path, column)
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json")
    assert error_line(result) == (
        f"error: {logs / 'day=3' / 'p.parquet'}: column {column!r} holds large_string, but the files from "
        f"{logs / 'day=1' / 'p.parquet'} on hold {kind}: every file needs the same column types")


def test_parquet_partitions_with_integer_and_float_rewards_replay_as_one_log(tmp_path):
    logs = write_partitions(tmp_path, None)
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["logs"]["rows_used"] == 60


@pytest.mark.parametrize(("header", "name"), [
    ("decision_id,action,propensity,reward,reward,context.x", "reward"),
    ("decision_id,action,propensity,reward,context.x,context.x", "context.x"),
])
def test_a_csv_header_that_repeats_a_column_it_reads_is_one_error_line_naming_it(tmp_path, header, name):
    logs = tmp_path / "sends.csv"
    logs.write_text(header + "\n" + "a1,plain,0.3,1,0,1\nb1,urgent,0.5,0,1,2\n" * 10)
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json")
    assert error_line(result) == (
        f"error: {logs}: the header repeats the column name {name!r}: each column needs its own name")


def test_a_parquet_file_or_partition_that_repeats_a_column_name_is_one_error_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array(["plain", "urgent"] * 10), pa.array([0.5] * 20), pa.array([1.0] * 20),
                      pa.array([0.0] * 20)], names=["action", "propensity", "reward", "reward"])
    (tmp_path / "day=1").mkdir()
    pq.write_table(table, tmp_path / "day=1" / "p.parquet")
    for logs in (tmp_path / "day=1" / "p.parquet", tmp_path):
        result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json")
        assert error_line(result) == (f"error: {tmp_path / 'day=1' / 'p.parquet'}: the header repeats the "
                                      "column name 'reward': each column needs its own name")


def test_a_repeated_column_that_is_not_read_is_no_problem(tmp_path):
    logs = tmp_path / "sends.csv"
    logs.write_text("action,propensity,reward,junk,junk\n" + "plain,0.3,1,2,3\nurgent,0.5,0,2,3\n" * 10)
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["logs"]["rows_used"] == 20


@pytest.mark.parametrize("seed", ["0", "4", "16"])
def test_a_reward_model_sample_of_one_row_is_never_empty(tmp_path, seed):
    # 2,000 training rows at a rate of 1 / 2,000: the seeded draw keeps none about a third of the time
    # (seeds 4 and 16, not 0); the sample then holds the first usable row
    rows = [f"d{i},{('plain', 'urgent')[i % 2]},0.5,{i % 3 == 0:d},ios,{i % 7}" for i in range(4000)]
    logs = tmp_path / "sends.csv"
    logs.write_text("\n".join([HEADER, *rows]) + "\n")
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)), "--json",
                    "--model-rows", "1", "--estimators", "dm", "--seed", seed)
    assert result.exit_code == 0, result.output
    estimates = {e["estimator"]: e for e in json.loads(result.stdout)["candidates"][0]["estimates"]}
    assert estimates["dm"]["n"] == 2000


def test_a_propensity_that_is_not_a_number_is_set_aside_as_invalid_not_missing(tmp_path):
    logs = write_log(tmp_path, "\n".join(["e,plain,,1,ios,1", "f,plain,abc,1,ios,1", "g,plain,nan,1,ios,1",
                                          "h,plain,1.5,1,ios,1"]))
    result = invoke("replay", "--logs", str(logs), "--policy", str(always_plain(tmp_path)))
    assert result.exit_code == 0, result.output
    assert set_aside_table(result.stdout) == [["missing propensity", "2", "row 20: nan"],
                                              ["invalid propensity", "2", "row 21: abc"]]
