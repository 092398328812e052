"""``sendlab features compute``: the JSON contract, column maps, SQL tables, and one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy
from typer.testing import CliRunner

from api.cli import app
from experiments.features import FeatureSettings, compute_features
from simulations.history import read_history
from tests.experiments.features.synthetic_history import AS_OF, HORIZON, history_with_signal
from tests.experiments.features.test_hand_history import history

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def hand_csv(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    history().to_csv(path, index=False)
    return path


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["features", "compute", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_json_contract(hand_csv: Path) -> None:
    out = run_json(str(hand_csv), "--as-of", "2024-06-01", "--k", "3")
    assert {"recipients", "segments", "segmentation", "model", "events", "as_of"} <= out.keys()
    first = out["recipients"][0]
    assert {"recipient_id", "recency_days", "frequency", "monetary", "rfm", "segment"} <= first.keys()
    assert set(first["rfm"]) == {"r", "f", "m"}
    assert [s["segment"] for s in out["segments"]] == [0, 1, 2]
    assert {"size", "centre"} <= out["segments"][0].keys()
    assert out["model"] is None and first["p_convert"] is None
    # the command prints what the Python API computes
    python = compute_features(read_history(hand_csv), FeatureSettings(as_of="2024-06-01", k=3)).to_dict()
    assert out == json.loads(json.dumps(python))
    ann = next(r for r in out["recipients"] if r["recipient_id"] == "ann")
    assert (ann["recency_days"], ann["frequency"], ann["monetary"]) == (0.5, 3, 135.49)  # 365 days
    in_90_days = run_json(str(hand_csv), "--as-of", "2024-06-01", "--k", "3", "--window-days", "90")
    ann = next(r for r in in_90_days["recipients"] if r["recipient_id"] == "ann")
    # 7 of the 10 recipients bought less often, and 7 spent less, in the 90 days: 1 + floor(5 * 7 / 10)
    assert (ann["frequency"], ann["monetary"], ann["rfm"]) == (2, 35.5, {"r": 5, "f": 4, "m": 4})


def test_scores_and_the_per_recipient_file(tmp_path: Path) -> None:
    events, _ = history_with_signal(600, seed=2)
    events.to_parquet(tmp_path / "history.parquet")
    out = run_json(str(tmp_path / "history.parquet"), "--as-of", AS_OF.isoformat(), "--k", "2",
                   "--horizon-days", str(HORIZON), "--folds", "3",
                   "--out", str(tmp_path / "features.parquet"))
    model = out["model"]
    assert model["horizon_days"] == HORIZON and model["folds"] == 3 and len(model["auc_by_fold"]) == 3
    assert 0.5 < model["auc"] <= 1 and model["calibration"] and model["importance"]
    assert all(0 < r["p_convert"] < 1 for r in out["recipients"])
    written = pd.read_parquet(tmp_path / "features.parquet")
    assert written["recipient_id"].tolist() == [r["recipient_id"] for r in out["recipients"]]
    assert written["p_convert"].tolist() == [r["p_convert"] for r in out["recipients"]]
    assert written["r"].tolist() == [r["rfm"]["r"] for r in out["recipients"]]


def test_a_mapped_sql_table_gives_the_same_result_as_the_file(tmp_path: Path, hand_csv: Path) -> None:
    foreign = history().rename(columns={"recipient_id": "customer", "amount": "revenue"})
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    foreign.to_sql("events", engine, index=False)
    engine.dispose()
    (tmp_path / "map.yaml").write_text("recipient_id: customer\n")
    from_sql = run_json(f"sqlite:///{tmp_path / 'shop.db'}", "--table", "events",
                        "--map", str(tmp_path / "map.yaml"), "--amount-col", "revenue",
                        "--as-of", "2024-06-01", "--k", "3")
    assert from_sql == run_json(str(hand_csv), "--as-of", "2024-06-01", "--k", "3")


def test_the_plain_summary(hand_csv: Path) -> None:
    result = runner.invoke(app, ["features", "compute", str(hand_csv), "--as-of", "2024-06-01", "--k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("10 recipients as of 2024-06-01T00:00:00+00:00; events: 25 read, 24 used, "
                        "1 after as_of")
    assert lines[1].startswith("segments: k = 2 (given)")
    assert lines[2].split() == ["segment", "size", "recency_days", "frequency", "monetary", "click_90d",
                                "open_90d"]


@pytest.mark.parametrize(("args", "message"), [
    (["{csv}", "--as-of", "tomorrow"],
     "error: --as-of: must be an ISO 8601 date or date-time, got 'tomorrow'"),
    (["{csv}", "--as-of", "2024-06-01", "--k", "0"], "error: --k: must be a whole number from 1 to 50"),
    (["{csv}", "--as-of", "2024-06-01", "--k", "11"],
     "error: --k: 11 segments need at least 11 recipients with distinct features; the history has 10"),
    (["{csv}", "--as-of", "2024-06-01", "--engagement-windows", "7,x"],
     "error: --engagement-windows: give whole numbers of days, comma-separated, got '7,x'"),
    (["{csv}", "--as-of", "2024-06-01", "--horizon-days", "30"],   # ann and hal bought after May 2
     "error: --horizon-days: of the 7 recipients known at 2024-05-02T00:00:00+00:00, 2 bought in the 30 days "
     "after it and 5 did not; 5-fold cross-validation needs at least 5 of each"),
    (["{csv}", "--as-of", "2024-06-01", "--type-col", "kind"], "error: {csv}: column(s) 'kind' not found"),
    (["{csv}", "--as-of", "2024-06-01", "--type-col", "amount"],
     "error: column map: a column is mapped twice"),
    (["{csv}", "--as-of", "2024-06-01", "--table", "events"], "error: --table: give it with a database URL"),
    (["sqlite:///{dir}/none.db", "--as-of", "2024-06-01"], "error: --table: give it with a database URL"),
    (["{dir}/missing.csv", "--as-of", "2024-06-01"], "error: history: file {dir}/missing.csv does not exist"),
    (["{dir}/bad.csv", "--as-of", "2024-06-01"],
     "error: {dir}/bad.csv: row 1: amount a purchase needs an amount"),
    (["{csv}", "--as-of", "2024-06-01", "--out", "{dir}/features.json"],
     "error: --out {dir}/features.json: give a .csv or .parquet file"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path, hand_csv: Path, args, message) -> None:
    (tmp_path / "bad.csv").write_text("recipient_id,timestamp,type,amount\na,2024-05-01,open,\n"
                                      "b,2024-05-01,purchase,\n")
    names = {"csv": str(hand_csv), "dir": str(tmp_path)}
    result = runner.invoke(app, ["features", "compute", *(a.format(**names) for a in args), "--json"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message.format(**names)), result.output


@pytest.mark.parametrize("command", ["compute", "refresh"])
def test_a_recipient_id_that_is_no_unicode_text_is_one_line(tmp_path: Path, command: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # ED A0 80: the surrogate U+D800 encoded alone, which no UTF-8 decoder takes; Arrow writes it unchecked
    ids = pa.array([b"a", b"b", b"\xed\xa0\x80", b"c"], pa.binary()).view(pa.string())
    table = pa.table({"recipient_id": ids, "timestamp": ["2024-05-01"] * 4, "type": ["purchase"] * 4,
                      "amount": [1.0, 2.0, 3.0, 4.0]})
    pq.write_table(table, tmp_path / "history.parquet")
    db = ["--db", f"sqlite:///{tmp_path / 'sendlab.db'}"] if command == "refresh" else []
    result = runner.invoke(app, ["features", command, str(tmp_path / "history.parquet"),
                                 "--as-of", "2024-06-01", "--k", "2", *db])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: {tmp_path / 'history.parquet'}: row 2: recipient_id must be UTF-8 text, "
                     "got b'\\xed\\xa0\\x80'"], result.output


def test_the_command_line_imports_no_scikit_learn_until_the_command_runs() -> None:
    code = ("import sys, api.cli; "
            "print(sorted(m for m in ('sklearn', 'experiments.features') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
