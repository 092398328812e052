"""An experiment's decision and outcome log as Parquet, partitioned by day: what a warehouse or Dask reads.

``DIR/decisions/day=YYYY-MM-DD/part-0.parquet`` and ``DIR/outcomes/day=YYYY-MM-DD/part-0.parquet`` hold
every column of the store's ``decisions`` and ``outcomes`` rows of one experiment (all spec versions),
with ``day`` as the Hive partition (a reader such as DuckDB's ``read_parquet(..., hive_partitioning =
true)``, pyarrow's datasets or Dask gets it back as a column). JSON columns (``variants``, ``context``)
are JSON text. Rows are read in day order ``chunk_rows`` at a time and each day's file is written as it
comes, so memory stays bounded by a chunk; the files of a day are written to a temporary name and renamed
when complete, so a reader never sees half a file. A table without rows (no outcomes yet) gets one empty
file, so a reader's glob always finds both tables.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import sqltypes

from experiments.errors import NotFound
from experiments.store import decisions_table, experiments_table, outcomes_table

#: Rows fetched and converted at a time.
PARQUET_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class ParquetExport:
    """What :func:`export_parquet` wrote: rows and day partitions per table, and where."""

    key: str
    directory: str
    decisions: int
    outcomes: int
    days: list[str]


#: Arrow's type of each Python type the store's columns hold (JSON columns are written as JSON text).
_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.string(), bool: pa.bool_(), int: pa.int64(), float: pa.float64(), datetime: pa.timestamp("us"),
    date: pa.date32(), bytes: pa.binary(),
}


def _arrow_type(column: Any) -> pa.DataType:
    if isinstance(column.type, sqltypes.JSON):
        return pa.string()
    sql_type = getattr(column.type, "impl_instance", column.type)  # SQLModel's AutoString decorates String
    return _ARROW_TYPES[sql_type.python_type]


def _schema(table: Table) -> pa.Schema:
    """The table's columns but ``day`` (the partition)."""
    return pa.schema([(c.name, _arrow_type(c)) for c in table.columns if c.name != "day"])


def _rows_by_day(engine: Engine, table: Table, key: str, chunk_rows: int) -> Iterator[tuple[Any, list[Any]]]:
    """(day, rows of that day), in day order, fetching ``chunk_rows`` at a time."""
    query = select(table).where(table.c.experiment_key == key).order_by(table.c.day, *table.primary_key)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk_rows).execute(query)
        day, rows = None, []
        for chunk in result.partitions():
            for row in chunk:
                if row.day != day and rows:
                    yield day, rows
                    rows = []
                day = row.day
                rows.append(row)
                if len(rows) >= chunk_rows:
                    yield day, rows
                    rows = []
        if rows:
            yield day, rows


def _arrow_batch(rows: list[Any], schema: pa.Schema, json_columns: frozenset[str]) -> pa.RecordBatch:
    columns = []
    for field in schema:
        values = [getattr(r, field.name) for r in rows]
        if field.name in json_columns:
            values = [None if v is None else json.dumps(v, sort_keys=True) for v in values]
        columns.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _write_table(engine: Engine, table: Table, key: str, root: Path, chunk_rows: int,
                 empty_day: str) -> tuple[int, set[str]]:
    """Write ``table``'s rows of ``key`` by day; without rows, one empty file under ``empty_day``."""
    schema = _schema(table)
    json_columns = frozenset(c.name for c in table.columns if isinstance(c.type, sqltypes.JSON))
    count, days = 0, set()
    writer: pq.ParquetWriter | None = None
    current = None

    def finish() -> None:
        if writer is not None:
            writer.close()
            folder = root / f"day={current}"
            os.replace(folder / "part-0.parquet.partial", folder / "part-0.parquet")

    for day, rows in _rows_by_day(engine, table, key, chunk_rows):
        if day.isoformat() != current:
            finish()
            current = day.isoformat()
            days.add(current)
            (root / f"day={current}").mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(root / f"day={current}" / "part-0.parquet.partial", schema)
        assert writer is not None
        writer.write_batch(_arrow_batch(rows, schema, json_columns))
        count += len(rows)
    if count == 0:
        current = empty_day
        (root / f"day={current}").mkdir(parents=True, exist_ok=True)
        writer = pq.ParquetWriter(root / f"day={current}" / "part-0.parquet.partial", schema)
    finish()
    return count, days


def export_parquet(engine: Engine, key: str, directory: str | Path, *,
                   chunk_rows: int = PARQUET_CHUNK_ROWS) -> ParquetExport:
    """Write experiment ``key``'s log under ``directory`` (which must be empty or absent)."""
    root = Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not an empty directory")
    with engine.connect() as conn:
        known = select(experiments_table.c.key).where(experiments_table.c.key == key)
        if conn.execute(known).first() is None:
            raise NotFound(key)
    root.mkdir(parents=True, exist_ok=True)
    try:
        today = datetime.now(UTC).date().isoformat()
        decisions, decision_days = _write_table(engine, decisions_table, key, root / "decisions", chunk_rows,
                                                today)
        outcomes, outcome_days = _write_table(engine, outcomes_table, key, root / "outcomes", chunk_rows,
                                              min(decision_days, default=today))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ParquetExport(key, str(root), decisions, outcomes, sorted(decision_days | outcome_days))
