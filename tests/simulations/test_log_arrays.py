"""A file log checked and encoded through numpy (``LogArrays``, ``FeatureColumns``) gives what the pandas
reader gives on the same rows: the same rejections and used rows, the same reward model, the same
replay, from CSV as from Parquet; and a file replay imports neither pandas, scipy nor pydantic."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from simulations.candidates import CandidateSpec
from simulations.column_maps import column_map, default_column_map
from simulations.feature_columns import FeatureColumn, FeatureColumns
from simulations.log_arrays import LogArrays
from simulations.log_files import log_columns, read_log_table
from simulations.logs import validate_frame
from simulations.replay_files import replay_files
from simulations.reward_model import ContextEncoder, fit_reward_model
from simulations.sources import FileSource
from simulations.streaming import ReplayRequest, replay_source

VARIANTS = ("plain", "urgent", "emoji", "short")


def sends(n: int, seed: int, *, bad: bool) -> pd.DataFrame:
    """A log in SendLab's columns with two text features and two numeric ones (one of integers); with
    ``bad``, every kind of row the checks set aside, spread through it."""
    rng = np.random.default_rng(seed)
    device = rng.choice(["ios", "android", "web"], n)
    segment = rng.choice(["new", "loyal", "lapsed"], n)
    recency = np.round(rng.exponential(10.0, n), 1)
    orders = rng.integers(0, 20, n)
    action = rng.integers(0, len(VARIANTS), n)
    propensity = np.where(device == "ios", 0.4, 0.2)[:, None] * np.ones(len(VARIANTS))[None, :]
    rate = 0.05 + 0.04 * action + 0.05 * (device == "web") - 0.002 * recency + 0.003 * orders
    frame = pd.DataFrame({
        "decision_id": [f"d{i}" for i in range(n)],
        "action": np.array(VARIANTS)[action].astype(object),
        "propensity": propensity[np.arange(n), action],
        "reward": (rng.random(n) < np.clip(rate, 0.01, 0.9)).astype(float),
        "context.device": device.astype(object),
        "context.segment": segment.astype(object),
        "context.recency_days": recency,
        "context.orders": orders,
    })
    if bad:
        rows = rng.choice(n, 70, replace=False)
        frame.loc[rows[0:10], "action"] = None
        frame.loc[rows[10:20], "action"] = "unheard-of"
        frame.loc[rows[20:25], "propensity"] = np.nan
        frame.loc[rows[25:30], "propensity"] = 0.0
        frame.loc[rows[30:35], "propensity"] = 1.5
        frame.loc[rows[35:40], "reward"] = np.nan
        frame.loc[rows[40:45], "reward"] = 7.0
        frame.loc[rows[45:50], "context.device"] = None
        frame.loc[rows[50:55], "context.recency_days"] = np.nan
        frame.loc[rows[55:60], "action"] = None  # and another reason on the same row: counted once
        frame.loc[rows[55:60], "propensity"] = 0.0
        frame.loc[rows[60:70], "context.segment"] = None
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arrays")
    clean, bad = sends(9000, 5, bad=False), sends(9000, 6, bad=True)
    clean.to_csv(folder / "clean.csv", index=False)
    clean.to_parquet(folder / "clean.parquet", row_group_size=2000)
    bad.to_csv(folder / "bad.csv", index=False)
    bad.to_parquet(folder / "bad.parquet", row_group_size=2000)
    return folder


def columns_of(path, actions=VARIANTS):
    return default_column_map(log_columns(path), reward_range=(0.0, 1.0), actions=actions)


@pytest.mark.parametrize("name", ["bad.csv", "bad.parquet", "clean.csv"])
@pytest.mark.parametrize(("start", "stop"), [(0, 9000), (1234, 5678)])
def test_the_array_checks_equal_the_pandas_checks(files, name, start, stop):
    path = files / name
    columns = columns_of(path)
    table = read_log_table(path, columns.columns, [columns.action], columns.context)
    arrays = LogArrays.from_table(table, columns, columns.actions)
    assert arrays is not None and arrays.action_names == VARIANTS
    ours = arrays.report(start, stop)
    theirs = validate_frame(table.slice(start, stop - start).to_pandas(), columns, arrays.action_names,
                            first_row=start, frame_contexts=True)
    if name.startswith("bad"):
        assert len(ours.rejected) == 8  # every reason occurs
    # the same from arrays of the slice alone (Arrow arrays with an offset into their buffers)
    sliced = LogArrays.from_table(table.slice(start, stop - start), columns, VARIANTS, first_row=start)
    assert sliced is not None
    for report in (ours, sliced.report(0, stop - start)):
        assert report.rejected == theirs.rejected and report.rows_read == theirs.rows_read
        np.testing.assert_array_equal(report.kept_rows, theirs.kept_rows)
        for field in ("actions", "rewards", "propensities"):
            np.testing.assert_array_equal(getattr(report.data, field), getattr(theirs.data, field))
        assert report.data.context_mappings() == theirs.data.context_mappings()


def test_the_variants_are_the_sorted_distinct_actions(files):
    path = files / "bad.parquet"
    columns = columns_of(path, actions=None)
    table = read_log_table(path, columns.columns, [columns.action], columns.context)
    arrays = LogArrays.from_table(table, columns)
    assert arrays is not None and arrays.action_names == tuple(sorted([*VARIANTS, "unheard-of"]))
    assert FileSource.open(path, columns).action_names == arrays.action_names


def test_a_column_of_another_type_is_left_to_pandas(tmp_path):
    frame = sends(300, 1, bad=False)
    frame["context.vip"] = frame["context.orders"] > 10  # a boolean feature
    frame.to_parquet(tmp_path / "sends.parquet")
    columns = columns_of(tmp_path / "sends.parquet")
    source = FileSource.open(tmp_path / "sends.parquet", columns)
    assert source.arrays is None and source.table is not None
    (report,) = list(source.chunks())
    assert report.data.n == 300 and isinstance(report.data.contexts, pd.DataFrame)


def pandas_source(source: FileSource) -> FileSource:
    """The same file read through the pandas checks (the path of a log whose types the arrays lack)."""
    table = read_log_table(source.path, source.columns.columns, [source.columns.action],
                           source.columns.context)
    return replace(source, table=table, arrays=None)


def flat(value, path=""):
    if isinstance(value, dict):
        return {k: v for key in value for k, v in flat(value[key], f"{path}.{key}").items()}
    if isinstance(value, list | tuple):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, f"{path}[{i}]").items()}
    return {path: value}


@pytest.mark.parametrize("name", ["bad.csv", "bad.parquet", "clean.csv", "clean.parquet"])
def test_a_replay_through_the_arrays_equals_one_through_pandas(files, name):
    source = FileSource.open(files / name, columns_of(files / name), chunk_rows=1700)
    assert source.arrays is not None
    request = ReplayRequest(candidate=CandidateSpec(policy="thompson"),
                            estimators=("ips", "snips", "dm", "dr"), model_rows=3000, seed=3)
    ours = flat(replay_source(source, request).to_dict())
    theirs = flat(replay_source(pandas_source(source), request).to_dict())
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, float) and not math.isnan(value):
            assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        else:
            assert ours[key] == value, key


def test_the_reward_model_scores_columns_as_it_scores_the_design_matrix(files):
    path = files / "clean.parquet"
    columns = columns_of(path)
    source = FileSource.open(path, columns)
    (report,) = list(source.chunks())
    data = report.data
    assert isinstance(data.contexts, FeatureColumns)
    model = fit_reward_model(data)
    frame = pd.DataFrame(data.context_mappings())
    np.testing.assert_allclose(model.predict(data.contexts), model.predict(frame), rtol=1e-13, atol=0)
    # labels the encoder never saw, and missing ones, add nothing; more labels than one table holds
    encoder = ContextEncoder.fit(frame)
    many = [f"l{i}" for i in range(5000)]
    odd = FeatureColumns((
        FeatureColumn("device", np.array([0, 1, -1, 2]), ("web", "tv", "ios")),
        FeatureColumn("segment", np.array([0, 4999, 1, -1]), tuple(many)),
        FeatureColumn("recency_days", np.array([1.0, 2.0, 3.0, 4.0])),
        FeatureColumn("orders", np.array([1, 2, 3, 4])),
    ), 4)
    coefficients = np.random.default_rng(0).normal(size=(3, encoder.width))
    expected = encoder.transform(odd.to_mappings()) @ coefficients.T
    np.testing.assert_allclose(encoder.scores(odd, coefficients), expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(encoder.transform(odd), encoder.transform(odd.to_mappings()))


def test_feature_columns_take_slice_and_concatenate():
    a = FeatureColumns((FeatureColumn("d", np.array([0, 1, -1]), ("x", "y")),
                        FeatureColumn("r", np.array([1.5, np.nan, 2.0]))), 3)
    b = FeatureColumns((FeatureColumn("d", np.array([1, 0]), ("z", "y")),
                        FeatureColumn("r", np.array([4.0, 5.0]))), 2)
    both = FeatureColumns.concat([a, b])
    assert str(both.to_mappings()) == str(a.to_mappings() + b.to_mappings())  # str: NaN != NaN
    assert both.columns[0].labels == ("x", "y", "z")
    assert a.missing().tolist() == [False, True, True]
    assert a.take(np.array([2, 0])).to_mappings() == [{"d": None, "r": 2.0}, {"d": "x", "r": 1.5}]
    assert str(a.rows_between(1, 3).to_mappings()) == str(a.to_mappings()[1:3])
    with pytest.raises(ValueError, match="features differ"):
        FeatureColumns.concat([a, FeatureColumns((FeatureColumn("d", np.zeros(1, int), ("x",)),), 1)])


@pytest.mark.parametrize("stem", ["bad", "clean"])
def test_a_csv_log_replays_as_the_same_log_in_parquet(files, stem):
    """Every figure, set-aside counts and examples included, is the same from either file."""
    request = ReplayRequest(candidate=CandidateSpec(policy="thompson"),
                            estimators=("ips", "snips", "dm", "dr"), model_rows=3000, seed=3)
    csv, parquet = (replay_files(files / f"{stem}.{kind}", columns_of(files / f"{stem}.{kind}"), request)
                    for kind in ("csv", "parquet"))
    assert json.dumps(csv.to_dict(), sort_keys=True) == json.dumps(parquet.to_dict(), sort_keys=True)
    assert csv.load.rows_read == 9000 and (stem == "clean") == (not csv.load.rejected)


@pytest.mark.parametrize("name", ["clean.csv", "clean.parquet"])
def test_a_file_replay_imports_neither_pandas_scipy_nor_pydantic(files, name):
    script = f"""
import json, sys
from simulations.candidates import CandidateSpec
from simulations.column_maps import default_column_map
from simulations.log_files import log_columns
from simulations.replay_files import replay_files
from simulations.streaming import ReplayRequest
path = {str(files / name)!r}
request = ReplayRequest(candidate=CandidateSpec(policy="thompson"), estimators=("ips", "snips", "dm", "dr"))
result = replay_files(path, default_column_map(log_columns(path)), request)
print(json.dumps([result.replay.candidates[0].estimates[0].value,
                  sorted(m for m in ("pandas", "scipy", "pydantic") if m in sys.modules)]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    value, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert math.isfinite(value) and imported == []


def test_column_map_with_positions_and_a_reward_range(tmp_path):
    frame = pd.DataFrame({"v": ["a", "b", "a", None], "p": [0.5, 0.5, 0.0, 0.5], "r": [1, 3, 0, 1],
                          "pos": [1, 2, 3, 4], "f": ["x", "y", "x", "x"]})
    frame.to_csv(tmp_path / "log.csv", index=False)
    columns = column_map(action="v", propensity="p", reward="r", position="pos", context=("f",),
                         reward_range=(0.0, 1.0))
    table = read_log_table(tmp_path / "log.csv", columns.columns, [columns.action], columns.context)
    arrays = LogArrays.from_table(table, columns, ("a", "b"), first_row=10)
    assert arrays is not None
    report = arrays.report(0, 4)
    expected = validate_frame(table.to_pandas(), columns, ("a", "b"), first_row=10, frame_contexts=True)
    assert report.rejected == expected.rejected
    assert report.rejected["reward_out_of_range"].examples == ((11, "3"),)
    np.testing.assert_array_equal(report.data.positions, expected.data.positions)
    np.testing.assert_array_equal(report.kept_rows, [10])
