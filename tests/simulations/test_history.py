"""Reading a history from CSV, Parquet and SQL tables (SQLite, PostgreSQL), mapped and in chunks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from experiments.features import FeatureSettings, compute_features, events_from_frame
from experiments.features.totals import Cutoff, aggregate_history
from simulations.column_maps import load_column_map
from simulations.data import SimulationInputError
from simulations.history import HistoryColumns, read_history, read_sql_history

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
CUTOFF = [Cutoff(AS_OF.value, 365, (30, 90), "purchase")]
EVENTS = pd.DataFrame({
    "recipient_id": ["007", "007", "b", "c", "b", "c", "d"],
    "timestamp": ["2024-05-01T10:00:00Z", "2024-05-20", "2024-04-01", "2024-05-30T23:00:00-02:00",
                  "2024-05-31", "2024-01-05", "2024-07-01"],
    "type": ["purchase", "open", "purchase", "purchase", "click", "open", "purchase"],
    "amount": [19.99, None, 5.0, 120.0, None, None, 7.0],
})
FOREIGN = EVENTS.rename(columns={"recipient_id": "customer", "timestamp": "at", "type": "event",
                                 "amount": "revenue"}).assign(extra=1)


def totals(batches) -> pd.DataFrame:
    return aggregate_history(batches, CUTOFF)[0].frame


@pytest.fixture
def expected() -> pd.DataFrame:
    return totals([events_from_frame(EVENTS)])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_files_read_in_chunks_give_the_totals_of_the_frame(tmp_path: Path, expected, suffix, chunk_rows):
    path = tmp_path / f"history{suffix}"
    EVENTS.to_csv(path, index=False) if suffix == ".csv" else EVENTS.to_parquet(path, row_group_size=2)
    got = totals(read_history(path, chunk_rows=chunk_rows))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert "007" in expected.index  # an id with leading zeros stays a string


def test_a_yaml_column_map_reads_another_tools_names(tmp_path: Path, expected) -> None:
    FOREIGN.to_csv(tmp_path / "foreign.csv", index=False)
    (tmp_path / "map.yaml").write_text(
        "recipient_id: customer\ntimestamp: at\ntype: event\namount: revenue\n")
    columns = load_column_map(tmp_path / "map.yaml", HistoryColumns)
    assert columns == HistoryColumns(recipient_id="customer", timestamp="at", type="event", amount="revenue")
    pd.testing.assert_frame_equal(totals(read_history(tmp_path / "foreign.csv", columns)), expected,
                                  check_exact=True)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("recipient_id: customer\ntimestamp: customer\n", "a column is mapped twice"),
    ("recipient: customer\n", "recipient: Extra inputs are not permitted"),
    ("- customer\n", "expected a mapping of column roles to column names"),
])
def test_a_bad_column_map_is_refused(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "map.yaml").write_text(yaml_text)
    with pytest.raises(SimulationInputError, match=message):
        load_column_map(tmp_path / "map.yaml", HistoryColumns)


def test_a_bad_row_is_named_by_file_row_and_mapped_column(tmp_path: Path) -> None:
    bad = FOREIGN.copy()
    bad.loc[4, "at"] = "31/05/2024"
    bad.to_csv(tmp_path / "foreign.csv", index=False)
    columns = HistoryColumns(recipient_id="customer", timestamp="at", type="event", amount="revenue")
    with pytest.raises(SimulationInputError) as info:
        list(read_history(tmp_path / "foreign.csv", columns, chunk_rows=3))
    assert str(info.value) == (f"{tmp_path / 'foreign.csv'}: row 4: at must be an ISO 8601 date or "
                               "date-time, got '31/05/2024'")


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: None, "history: file {path} does not exist"),
    (lambda p: EVENTS.drop(columns="amount").to_csv(p, index=False), "column(s) 'amount' not found"),
    (lambda p: p.write_bytes(b""), "{path}: empty"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00bad"), "{path}: not UTF-8 text"),
])
def test_unreadable_files_are_named(tmp_path: Path, setup, message: str) -> None:
    path = tmp_path / "history.csv"
    setup(path)
    with pytest.raises(SimulationInputError) as info:
        list(read_history(path))
    assert message.format(path=path) in str(info.value)


def write_table(url: str, frame: pd.DataFrame, name: str = "events") -> None:
    engine = sqlalchemy.create_engine(url)
    try:
        frame.to_sql(name, engine, index=False)
    finally:
        engine.dispose()


def test_a_sqlite_table_is_read_in_chunks(tmp_path: Path, expected) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    write_table(url, FOREIGN, "shop_events")
    columns = HistoryColumns(recipient_id="customer", timestamp="at", type="event", amount="revenue")
    got = totals(read_sql_history(url, "shop_events", columns, chunk_rows=2))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    with pytest.raises(SimulationInputError, match="table 'nope': not found in the database"):
        list(read_sql_history(url, "nope", columns))
    with pytest.raises(SimulationInputError, match="table 'shop_events': column\\(s\\) 'recipient_id', "
                                                   "'timestamp', 'type', 'amount' not found"):
        list(read_sql_history(url, "shop_events"))


@pytest.mark.postgres
def test_a_postgresql_table_with_real_timestamps_is_read_with_a_server_side_cursor(pg_url: str, expected):
    typed = EVENTS.assign(timestamp=pd.to_datetime(EVENTS["timestamp"], utc=True, format="ISO8601"))
    write_table(pg_url, typed)
    got = totals(read_sql_history(pg_url, "public.events", chunk_rows=3))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    result = compute_features(read_sql_history(pg_url, "events"), FeatureSettings(as_of=AS_OF, k=2))
    assert result.to_frame()["recipient_id"].tolist() == ["007", "b", "c"]
