"""``sendlab export KEY --parquet DIR``: the log partitioned by day, read back by pyarrow and by DuckDB,
where the store's own summary SQL (SQLAlchemy Core) answers as it does on the store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from api.cli import app
from experiments.assignment import compile_experiment
from experiments.models import OutcomeEvent
from experiments.parquet_export import export_parquet
from experiments.service import ExperimentService
from experiments.store import decisions_table, outcomes_table
from experiments.store.summaries import (
    arm_stats,
    daily_stats,
    excluded_counts,
    log_cells,
    log_excluded_counts,
)
from tests.experiments.conftest import Clock, make_spec


def _three_days(service: ExperimentService, clock: Clock) -> None:
    service.create(make_spec())
    for day in range(3):
        recipients = [(f"d{day}-r{i}", {"device": "mobile"}) for i in range(40)]
        decisions = service.assign_batch("spring", recipients)
        events = []
        for i, d in enumerate(decisions):
            if i % 3 == 0:
                events.append(OutcomeEvent(f"c-{d.decision_id}", d.decision_id, "click"))
            if i % 7 == 0:
                events.append(OutcomeEvent(f"r-{d.decision_id}", d.decision_id, "revenue", value=12.5 + i))
            if i % 11 == 0:
                events.append(OutcomeEvent(f"m-{d.decision_id}", d.decision_id, "click", machine=True))
        service.record_outcomes(events)
        clock.advance(hours=24)
    late = decisions[0]
    clock.advance(hours=100)  # after the 72 h window: counted as late
    service.record_outcomes([OutcomeEvent("late-1", late.decision_id, "click")])


def _rows(engine: Any, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(*table.primary_key))]
    for r in rows:
        for name in ("variants", "context"):
            if name in r and r[name] is not None:
                r[name] = json.dumps(r[name], sort_keys=True)
    return rows


def _read_back(directory: Path, name: str) -> list[dict[str, Any]]:
    days = ds.partitioning(pa.schema([("day", pa.date32())]), flavor="hive")
    rows = ds.dataset(directory / name, format="parquet", partitioning=days).to_table().to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def test_the_export_holds_every_row_of_the_store(service: ExperimentService, engine: Any, clock: Clock,
                                                 tmp_path: Path) -> None:
    _three_days(service, clock)
    result = export_parquet(engine, "spring", tmp_path / "out", chunk_rows=17)
    assert result.decisions == 120 and result.outcomes == len(_rows(engine, outcomes_table))
    assert len(result.days) == 3
    folders = sorted(p.name for p in (tmp_path / "out" / "decisions").iterdir())
    assert folders == [f"day={d}" for d in result.days]
    for name, table in (("decisions", decisions_table), ("outcomes", outcomes_table)):
        stored = sorted(_rows(engine, table), key=lambda r: r["id"])
        assert _read_back(tmp_path / "out", name) == stored
    # the chunk size changes nothing
    again = export_parquet(engine, "spring", tmp_path / "again")
    for name in ("decisions", "outcomes"):
        assert _read_back(tmp_path / "again", name) == _read_back(tmp_path / "out", name)
    assert not list((tmp_path / "out").rglob("*.partial"))
    assert again.days == result.days


def _duckdb_over(directory: Path) -> Any:
    engine = create_engine("duckdb:///:memory:")
    with engine.begin() as conn:
        for name in ("decisions", "outcomes"):
            conn.execute(text(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{directory / name}/*/*.parquet', "
                "hive_partitioning = true, hive_types = {'day': DATE})"
            ))
    return engine


def test_the_summary_sql_answers_the_same_on_duckdb_over_the_export(
    service: ExperimentService, engine: Any, clock: Clock, tmp_path: Path
) -> None:
    _three_days(service, clock)
    export_parquet(engine, "spring", tmp_path / "out")
    compiled = compile_experiment(service.get("spring").spec, 1)
    warehouse = _duckdb_over(tmp_path / "out")
    with engine.connect() as store, warehouse.connect() as duck:
        # the warehouse has the log alone (no rollups): the full-scan functions read it
        assert log_cells(duck, compiled) == log_cells(store, compiled)
        for machine in (False, True):
            here, there = arm_stats(store, compiled, include_machine=machine), arm_stats(
                duck, compiled, log_cells(duck, compiled, include_machine=machine))
            assert here.keys() == there.keys()
            for arm in here:
                assert there[arm].event_counts == here[arm].event_counts
                assert there[arm].reward.n == here[arm].reward.n
                assert there[arm].reward.sum == pytest.approx(here[arm].reward.sum, rel=1e-12)
                assert there[arm].reward.sum_squares == pytest.approx(here[arm].reward.sum_squares, rel=1e-12)
        in_duck = daily_stats(duck, compiled, log_cells(duck, compiled))
        assert [(d, a, s.event_counts) for d, a, s in in_duck] == [
            (d, a, s.event_counts) for d, a, s in daily_stats(store, compiled)]
        assert log_excluded_counts(duck, compiled) == excluded_counts(store, compiled)
        excluded = excluded_counts(store, compiled)
        assert excluded.late == 1 and excluded.machine_in_window > 0
    warehouse.dispose()


def test_export_command(tmp_path: Path, clock: Clock) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    from experiments.store import create_tables, make_engine

    engine = make_engine(url)
    create_tables(engine)
    _three_days(ExperimentService(engine, clock=clock, seed=1), clock)
    runner = CliRunner()
    done = runner.invoke(app, ["export", "spring", "--parquet", str(tmp_path / "p"), "--db", url, "--json"])
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert (answer["key"], answer["decisions"], len(answer["days"])) == ("spring", 120, 3)
    taken = runner.invoke(app, ["export", "spring", "--parquet", str(tmp_path / "p"), "--db", url])
    assert taken.exit_code == 1 and taken.output.count("\n") == 1 and "not an empty directory" in taken.output
    unknown = runner.invoke(app, ["export", "nope", "--parquet", str(tmp_path / "q"), "--db", url])
    assert unknown.exit_code == 1 and "nope" in unknown.output and "Traceback" not in unknown.output
    assert not (tmp_path / "q").exists()
    engine.dispose()


def test_a_table_without_rows_gets_an_empty_file(service: ExperimentService, engine: Any,
                                                tmp_path: Path) -> None:
    service.create(make_spec())
    service.assign_batch("spring", [("a", {}), ("b", {})])
    result = export_parquet(engine, "spring", tmp_path / "out")
    assert (result.decisions, result.outcomes) == (2, 0)
    assert _read_back(tmp_path / "out", "outcomes") == []
    assert [p.parent.name for p in (tmp_path / "out" / "outcomes").rglob("*.parquet")] == [
        f"day={result.days[0]}"]


def test_days_follow_the_decisions(
    service: ExperimentService, engine: Any, clock: Clock, tmp_path: Path
) -> None:
    """A decision's outcomes are filed under the decision's day (the column the summaries group by)."""
    _three_days(service, clock)
    export_parquet(engine, "spring", tmp_path / "out")
    outcomes = _read_back(tmp_path / "out", "outcomes")
    decisions = {d["id"]: d["day"] for d in _read_back(tmp_path / "out", "decisions")}
    assert all(o["day"] == decisions[o["decision_id"]] for o in outcomes)
    received = [o["received_at"] for o in outcomes]
    assert max(received) - min(received) > timedelta(days=3)
