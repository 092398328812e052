"""Reading a purchase and engagement history in chunks: a CSV or Parquet file, or a SQL table.

A history has one row per event with SendLab's column names ``recipient_id``, ``timestamp``, ``type``
and ``amount`` (see :mod:`experiments.features.events`), or any other names given by a
:class:`HistoryColumns` map, the same kind of map as a replay's
(:class:`simulations.column_maps.ColumnRoles`), read from YAML by
:func:`simulations.column_maps.load_column_map`::

    recipient_id: customer
    timestamp: event_time
    type: event
    amount: revenue

Each reader yields :class:`~experiments.features.events.EventBatch` chunks, checked, with rows numbered
from 0 in read order, so :func:`experiments.features.compute_features` holds no more than a chunk of
events at a time. A row that cannot be used stops the reading with a :class:`SimulationInputError`
naming the source, the row, the column and the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.features.events import EVENT_COLUMNS, EventBatch, EventProblem, events_from_frame
from experiments.features.settings import PURCHASE
from simulations.column_maps import ColumnRoles
from simulations.data import SimulationInputError
from simulations.log_files import read_table_chunks

#: Rows read at a time unless asked otherwise.
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class HistoryColumns(ColumnRoles):
    """Which column of a history holds what (each defaults to SendLab's name for it).

    Attributes
    ----------
    recipient_id, timestamp, type, amount : str
    """

    recipient_id: str = "recipient_id"
    timestamp: str = "timestamp"
    type: str = "type"
    amount: str = "amount"

    @property
    def columns(self) -> list[str]:
        return [self.recipient_id, self.timestamp, self.type, self.amount]

    def renamed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the mapped columns under SendLab's names."""
        return frame.rename(columns=dict(zip(self.columns, EVENT_COLUMNS, strict=True)))[list(EVENT_COLUMNS)]


def _checked(
    frames: Iterator[tuple[int, pd.DataFrame]], columns: HistoryColumns, source: str, purchase_type: str,
) -> Iterator[EventBatch]:
    for first_row, frame in frames:
        try:
            yield events_from_frame(columns.renamed(frame), purchase_type=purchase_type, first_row=first_row)
        except EventProblem as exc:
            column = getattr(columns, exc.column)
            raise SimulationInputError(
                f"{source}: row {exc.row}: {column} {exc.problem}"
                + ("" if exc.value is None else f", got {exc.value!r}")
            ) from None


def read_history(
    path: str | Path,
    columns: HistoryColumns | None = None,
    *,
    purchase_type: str = PURCHASE,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[EventBatch]:
    """The events of a CSV or Parquet history, chunk by chunk.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (``.csv.gz``, ``.tsv``) or ``.parquet``.
    columns : HistoryColumns, optional
        Which column holds what; by default SendLab's names.
    purchase_type : str
        The type of a purchase (those rows need an amount).
    chunk_rows : int
        Rows per chunk (Parquet chunks also end at the file's row groups).

    Yields
    ------
    EventBatch

    Raises
    ------
    SimulationInputError
        A missing file, an unknown format, a missing column, a file that is not what its name says, or a
        row that cannot be used.
    """
    columns = columns or HistoryColumns()
    path = Path(path)
    if not path.exists():
        raise SimulationInputError(f"history: file {path} does not exist")
    if chunk_rows < 1:
        raise SimulationInputError(f"chunk_rows: must be at least 1, got {chunk_rows}")
    frames = read_table_chunks(path, columns.columns, chunk_rows, [columns.recipient_id, columns.type])
    yield from _checked(frames, columns, str(path), purchase_type)


def read_sql_history(
    url: str,
    table: str,
    columns: HistoryColumns | None = None,
    *,
    purchase_type: str = PURCHASE,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[EventBatch]:
    """The events of a table in a SQL database, chunk by chunk (a server-side cursor where the
    database has one, so memory holds one chunk).

    Parameters
    ----------
    url : str
        A SQLAlchemy URL (``postgresql+psycopg://...``, ``sqlite:///events.db``).
    table : str
        The table's name, optionally ``schema.table``.
    columns, purchase_type, chunk_rows
        As in :func:`read_history`, which yields the same :class:`EventBatch` chunks; the
        :class:`SimulationInputError` here names an unknown table or column, or a row that cannot be used.
    """
    import sqlalchemy

    columns = columns or HistoryColumns()
    if chunk_rows < 1:
        raise SimulationInputError(f"chunk_rows: must be at least 1, got {chunk_rows}")
    schema, _, name = table.rpartition(".")
    engine = sqlalchemy.create_engine(url)
    try:
        try:
            found = sqlalchemy.Table(name, sqlalchemy.MetaData(), schema=schema or None, autoload_with=engine)
        except sqlalchemy.exc.NoSuchTableError:
            raise SimulationInputError(f"table {table!r}: not found in the database") from None
        missing = [c for c in columns.columns if c not in found.c]
        if missing:
            raise SimulationInputError(f"table {table!r}: column(s) {', '.join(map(repr, missing))} not "
                                       f"found; the table has {sorted(found.c.keys())}")
        query = sqlalchemy.select(*(found.c[c] for c in columns.columns))
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
            first_row = 0
            for rows in result.partitions():
                chunk = (first_row, pd.DataFrame(rows, columns=columns.columns))
                yield from _checked(iter([chunk]), columns, f"table {table!r}", purchase_type)
                first_row += len(rows)
    finally:
        engine.dispose()
