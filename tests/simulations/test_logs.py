"""Loading logs: column mappings, bad rows reported by reason, chunking, database records."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from simulations.column_maps import column_map, load_column_fields, load_column_map
from simulations.data import SimulationInputError
from simulations.log_files import read_log_table
from simulations.log_records import logs_from_records
from simulations.logs import iter_logs, load_logs, read_logs


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "variant": ["plain", "urgent", "emoji", "plain", None, "plain", "urgent", "plain", "urgent"],
            "p": [0.5, 0.25, 0.25, 0.0, 0.5, np.nan, 1.5, 0.5, 0.25],
            "clicked": [1, 0, 0, 1, 1, 0, 1, 7, np.nan],
            "device": ["ios", "web", "ios", "ios", "web", "ios", "web", "ios", "web"],
            "recency": [1.0, 3.0, 2.0, np.nan, 1.0, 1.0, 1.0, 2.0, 5.0],
        }
    )


EXPECTED_REJECTIONS = {
    "missing_action": (1, [(4, "None")]),
    "unknown_action": (1, [(2, "emoji")]),
    "missing_propensity": (1, [(5, "nan")]),
    "zero_propensity": (1, [(3, "0.0")]),
    "invalid_propensity": (1, [(6, "1.5")]),
    "missing_reward": (1, [(8, "nan")]),
    "reward_out_of_range": (1, [(7, "7.0")]),
}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_rows_are_reported_by_reason_and_set_aside(tmp_path, suffix):
    path = tmp_path / f"sends{suffix}"
    frame = _frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    report = load_logs(
        path,
        action_col="variant",
        reward_col="clicked",
        propensity_col="p",
        context_cols=["device", "recency"],
        actions=["plain", "urgent"],
        reward_range=(0, 1),
        chunk_rows=4,
    )
    got = {reason: (rows.count, [(i, v.replace("<NA>", "None")) for i, v in rows.examples])
           for reason, rows in report.rejected.items()}
    if suffix == ".csv":  # CSV has no None: a missing cell reads back as <NA>
        assert got.pop("missing_action")[0] == 1
        expected = {k: v for k, v in EXPECTED_REJECTIONS.items() if k != "missing_action"}
    else:
        got["missing_action"] = (got["missing_action"][0], [(4, "None")])
        expected = EXPECTED_REJECTIONS
    assert got == expected
    assert report.rows_read == 9 and report.data.n == 2 and report.rows_rejected == 7
    assert report.data.action_names == ("plain", "urgent")
    np.testing.assert_array_equal(report.data.actions, [0, 1])
    np.testing.assert_array_equal(report.kept_rows, [0, 1])
    np.testing.assert_array_equal(report.data.propensities, [0.5, 0.25])
    assert report.data.contexts == [{"device": "ios", "recency": 1.0}, {"device": "web", "recency": 3.0}]


def test_missing_feature_is_its_own_reason(tmp_path):
    path = tmp_path / "sends.csv"
    pd.DataFrame({"a": ["x", "y"], "p": [0.5, 0.5], "r": [0, 1], "f": [1.0, None]}).to_csv(path, index=False)
    report = load_logs(path, action_col="a", reward_col="r", propensity_col="p", context_cols=["f"])
    assert {k: v.count for k, v in report.rejected.items()} == {"missing_context": 1}
    assert report.data.action_names == ("x", "y")  # inferred, sorted


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_propensity_below_the_floor_is_set_aside_and_the_floor_itself_is_kept(tmp_path, suffix):
    path = tmp_path / f"sends{suffix}"
    frame = pd.DataFrame({"a": ["x", "y", "x", "y"], "p": [0.5, 1e-200, 1e-100, 5e-324], "r": [1, 0, 1, 0]})
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    report = load_logs(path, action_col="a", reward_col="r", propensity_col="p")
    assert {k: v.count for k, v in report.rejected.items()} == {"propensity_below_floor": 2}
    assert report.rejected["propensity_below_floor"].examples == ((1, "1e-200"), (3, "5e-324"))
    np.testing.assert_array_equal(report.data.propensities, [0.5, 1e-100])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_propensity_that_is_not_a_number_is_invalid_and_an_empty_one_missing(tmp_path, suffix):
    path = tmp_path / f"sends{suffix}"
    frame = pd.DataFrame({"a": ["x", "y", "x", "y", "x"], "p": ["0.5", None, "abc", "nan", "0.25"],
                          "r": [1, 0, 1, 0, 1]})
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    report = load_logs(path, action_col="a", reward_col="r", propensity_col="p")
    got = {k: (v.count, [i for i, _ in v.examples]) for k, v in report.rejected.items()}
    assert got == {"missing_propensity": (2, [1, 3]), "invalid_propensity": (1, [2])}
    assert report.rejected["invalid_propensity"].examples == ((2, "abc"),)
    np.testing.assert_array_equal(report.data.propensities, [0.5, 0.25])


def test_chunked_reading_equals_reading_at_once(tmp_path):
    rng = np.random.default_rng(0)
    n = 1003
    frame = pd.DataFrame(
        {
            "arm": rng.choice(["b", "a", "c"], n),
            "prob": rng.choice([0.2, 0.3, 0.5, 0.0], n),
            "reward": rng.integers(0, 2, n),
            "x": rng.standard_normal(n),
            "slot": rng.integers(1, 3, n),
        }
    )
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    columns = column_map(action="arm", reward="reward", propensity="prob", context=["x"], position="slot")
    whole = read_logs(path, columns, chunk_rows=5000)
    parts = list(iter_logs(path, columns, chunk_rows=100))
    assert len(parts) == 11
    assert sum(p.rows_read for p in parts) == n
    assert sum(p.data.n for p in parts) == whole.data.n == int((frame.prob > 0).sum())
    chunked = read_logs(path, columns, chunk_rows=100)
    np.testing.assert_array_equal(chunked.data.actions, whole.data.actions)
    np.testing.assert_array_equal(chunked.data.positions, frame.slot[frame.prob > 0])
    np.testing.assert_array_equal(chunked.kept_rows, np.flatnonzero(frame.prob > 0))
    assert chunked.rejected["zero_propensity"].count == whole.rejected["zero_propensity"].count


def test_column_map_from_yaml(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(
        "action: variant\nreward: clicked\npropensity: p\ncontext: [device]\n"
        "actions: [plain, urgent]\nreward_range: [0, 1]\n"
    )
    columns = load_column_map(path)
    assert columns.actions == ("plain", "urgent") and columns.context == ("device",)
    frame_path = tmp_path / "sends.csv"
    _frame().to_csv(frame_path, index=False)
    assert read_logs(frame_path, columns).data.n == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("action: v\nreward: r\n", "propensity: Field required"),
        ("action: v\nreward: r\npropensity: p\nweight: w\n", "weight: Extra inputs are not permitted"),
        ("action: v\nreward: r\npropensity: v\n", "a column is mapped twice"),
        ("action: v\nreward: r\npropensity: p\nreward_range: [1, 0]\n", "reward_range low must not exceed"),
        ("- a\n- b\n", "expected a mapping of column roles"),
    ],
)
def test_bad_column_maps_name_the_problem(tmp_path, text, message):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(SimulationInputError, match=message):
        load_column_map(path)


def test_a_column_map_of_plain_values_and_one_to_convert_are_the_same(tmp_path):
    """Plain values are taken as they are; others (numbers as text) are converted by pydantic."""
    plain = column_map(action="v", reward="r", propensity="p", context=["d"], actions=["a", 2],
                       reward_range=[0, 1])
    converted = column_map(action="v", reward="r", propensity="p", context=("d",), actions=("a", "2"),
                           reward_range=("0", "1.0"))
    assert plain == converted
    assert (plain.context, plain.actions, plain.reward_range) == (("d",), ("a", "2"), (0.0, 1.0))
    path = tmp_path / "map.yaml"
    path.write_text("action: v\nreward: r\npropensity: p\nreward_range: ['0', 1]\n")
    assert load_column_fields(path) == {"action": "v", "reward": "r", "propensity": "p",
                                        "reward_range": (0.0, 1.0)}
    with pytest.raises(SimulationInputError, match="column map: action: Input should be a valid string"):
        column_map(action=1, reward="r", propensity="p")
    with pytest.raises(SimulationInputError, match="column map: actions: Value error, must be a list"):
        column_map(action="v", reward="r", propensity="p", actions="ab")


def test_a_csv_row_longer_than_a_batch_of_the_reader_is_read(tmp_path):
    rows = 250_000  # about 2.6 MB of short rows before the long one (3 MB), 0.6 MB after
    frame = pd.DataFrame({"action": "a", "propensity": 0.5, "reward": 1.0, "note": ["x"] * rows})
    frame.loc[rows - 50_000, "note"] = "y" * 3_000_000
    frame.to_csv(tmp_path / "long.csv", index=False)
    table = read_log_table(tmp_path / "long.csv", ["action", "propensity", "reward", "note"], ["action"])
    assert table.num_rows == rows and len(table.column("note")[rows - 50_000].as_py()) == 3_000_000


def test_missing_columns_and_formats_are_reported(tmp_path):
    path = tmp_path / "sends.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(SimulationInputError, match="column\\(s\\) 'reward' not found"):
        load_logs(path, action_col="variant", reward_col="reward", propensity_col="p")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(SimulationInputError, match="unknown log format '.json'"):
        load_logs(tmp_path / "x.json", action_col="a", reward_col="r", propensity_col="p")
    with pytest.raises(SimulationInputError, match="does not exist"):
        load_logs(tmp_path / "nope.csv", action_col="a", reward_col="r", propensity_col="p")


def test_records_from_the_database_load_like_files():
    records = [
        {"context": {"device": "ios"}, "action": "plain", "reward": 1.0, "propensity": 0.5},
        SimpleNamespace(context={"device": "web"}, action="urgent", reward=0.0, propensity=0.5),
        {"context": {"device": "web"}, "action": "urgent", "reward": 0.0, "propensity": None},
        {"context": {}, "action": "bold", "reward": 0.0, "propensity": 0.5},
    ]
    report = logs_from_records(records, actions=["plain", "urgent"], reward_range=(0, 1))
    assert report.data.n == 2 and report.data.contexts == [{"device": "ios"}, {"device": "web"}]
    assert {k: v.count for k, v in report.rejected.items()} == {"unknown_action": 1, "missing_propensity": 1}
    with pytest.raises(SimulationInputError, match="records: a record has no 'propensity' field"):
        logs_from_records([{"action": "a", "reward": 1}])


def test_exported_sendlab_decisions_use_their_variant_combination():
    # the shape of experiments' LoggedDecision: variants per slot, no single action field
    decisions = [
        SimpleNamespace(decision_id="d1", context={"device": "ios"}, arm=0,
                        variants={"subject": "plain", "cta": "shop"}, propensity=0.25, reward=1.0),
        SimpleNamespace(decision_id="d2", context=None, arm=3, variants={"subject": "urgent", "cta": "see"},
                        propensity=0.25, reward=0.0),
    ]
    report = logs_from_records(decisions)
    assert report.data.action_names == ("subject=plain|cta=shop", "subject=urgent|cta=see")
    assert report.data.contexts == [{"device": "ios"}, {}]
    by_arm = logs_from_records(decisions, action=lambda d: f"arm{d.arm}")
    assert by_arm.data.action_names == ("arm0", "arm3")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_source_sets_aside_the_same_rows_as_the_chunked_reader(tmp_path, suffix):
    from simulations.load_reports import LoadSummary
    from simulations.sources import FileSource

    path = tmp_path / f"sends{suffix}"
    frame = _frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    columns = column_map(action="variant", reward="clicked", propensity="p", context=("device", "recency"),
                         actions=("plain", "urgent"), reward_range=(0, 1))
    source = FileSource.open(path, columns, chunk_rows=4)
    reports = list(source.chunks())
    summary = sum((r.summary() for r in reports), LoadSummary())
    expected = read_logs(path, columns, chunk_rows=4)
    assert source.rows == 9 and summary == expected.summary()
    assert [a for r in reports for a in r.data.actions] == [0, 1]
    assert [p for r in reports for p in r.data.propensities] == [0.5, 0.25]


def test_a_non_number_after_the_first_batch_of_a_csv_is_set_aside(tmp_path):
    # pyarrow infers a CSV column's type from its first batch (16 MB of text); a non-number in the
    # propensity column after it makes that column be read again as text, so the row is set aside
    from simulations.load_reports import RejectedRows
    from simulations.log_files import read_log_table
    from simulations.sources import FileSource

    rows = 360_000  # about 50 bytes a row: the file spans two batches
    frame = pd.DataFrame({"a": np.where(np.arange(rows) % 2, "x", "y"), "r": 1.0,
                          "p": np.full(rows, 0.5).astype(object), "note": "n" * 36})
    frame.loc[rows - 1, "p"] = "abc"
    path = tmp_path / "sends.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > 1 << 24
    table = read_log_table(path, ["a", "r", "p"], ["a"])
    assert str(table.column("p").type) == "string" and table.column("p")[rows - 1].as_py() == "abc"
    source = FileSource.open(path, column_map(action="a", reward="r", propensity="p"), chunk_rows=100_000)
    rejected = [r.rejected for r in source.chunks() if r.rejected]
    assert rejected == [{"invalid_propensity": RejectedRows(1, ((rows - 1, "abc"),))}]
