"""A log stored as many Parquet files (a directory, or a glob), read as one source in row order.

The files are taken in sorted path order (``day=2026-01-01/part-0.parquet`` before ``day=2026-01-02/...``),
their rows numbered from 0 across all of them. Only the footers are read when the source is opened
(row counts and row groups); a chunk reads just the row groups it overlaps, so a chunk can be read by
any process that sees the files (a Dask worker) and the whole log is never held in memory.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulations.column_maps import ColumnMap
from simulations.data import SimulationInputError
from simulations.file_errors import reading
from simulations.load_reports import LoadReport
from simulations.log_arrays import LogArrays
from simulations.log_files import check_named_once
from simulations.logs import validate_frame

if TYPE_CHECKING:
    import pyarrow as pa

_PARQUET_SUFFIXES = (".parquet", ".pq")


def is_partitioned(path: str | Path) -> bool:
    """Whether ``path`` names many files: a directory, or a pattern with ``*``, ``?`` or ``[``."""
    text = str(path)
    return Path(text).is_dir() or any(c in text for c in "*?[")


def parquet_files(path: str | Path) -> tuple[Path, ...]:
    """The Parquet files of a directory (searched recursively) or a glob, in sorted order."""
    text = str(path)
    if Path(text).is_dir():
        found = [p for p in Path(text).rglob("*") if p.suffix.lower() in _PARQUET_SUFFIXES and p.is_file()]
    else:
        found = [Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file()]
        other = [p for p in found if p.suffix.lower() not in _PARQUET_SUFFIXES]
        if other:
            raise SimulationInputError(
                f"logs: {other[0]} is not Parquet; a pattern must match .parquet files")
    if not found:
        raise SimulationInputError(f"logs: no Parquet file found at {text}")
    return tuple(sorted(found))


def _merged_type(known: pa.Field | None, field: pa.Field, file: Path, first: Path) -> pa.Field:
    """A column's type over the files so far (``known``, from ``first`` on) and ``file``'s ``field``,
    merged as the chunks' tables are concatenated (pyarrow's permissive promotion: integers widen to
    floats, any text to large text); :class:`SimulationInputError` when they do not merge."""
    import pyarrow as pa

    if known is None:
        return field
    try:
        merged = pa.unify_schemas([pa.schema([known]), pa.schema([field])], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        raise SimulationInputError(
            f"{file}: column {field.name!r} holds {field.type}, but the files from {first} on hold "
            f"{known.type}: every file needs the same column types"
        ) from None
    return merged.field(0)


@dataclass(frozen=True)
class PartitionedSource:
    """Many Parquet files as one :class:`~simulations.sources.LogSource`, in chunks of ``chunk_rows``.

    Attributes
    ----------
    files : tuple of Path
    starts : tuple of int
        Each file's first row number in the whole log (plus the total at the end).
    group_rows : tuple of tuple of int
        Each file's row-group sizes.
    columns : ColumnMap
    action_names : tuple of str
    chunk_rows : int
    """

    files: tuple[Path, ...]
    starts: tuple[int, ...]
    group_rows: tuple[tuple[int, ...], ...]
    columns: ColumnMap
    action_names: tuple[str, ...]
    chunk_rows: int = 100_000

    @classmethod
    def open(cls, path: str | Path, columns: ColumnMap, *, chunk_rows: int = 100_000) -> PartitionedSource:
        """Read the files' footers (and, without ``columns.actions``, their action columns, whose sorted
        distinct values are the variants)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if chunk_rows < 1:
            raise SimulationInputError(f"chunk_rows: must be at least 1, got {chunk_rows}")
        files = parquet_files(path)
        starts, groups, distinct = [0], [], set()
        column_to_type: dict[str, pa.Field] = {}
        for file in files:
            with reading(file):
                parquet = pq.ParquetFile(file)
                missing = [c for c in columns.columns if c not in parquet.schema_arrow.names]
                if missing:
                    raise SimulationInputError(f"{file}: missing columns {missing}")
                check_named_once(file, columns.columns, parquet.schema_arrow.names)
                for column in columns.columns:
                    column_to_type[column] = _merged_type(column_to_type.get(column),
                                                          parquet.schema_arrow.field(column), file, files[0])
                meta = parquet.metadata
                groups.append(tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups)))
                starts.append(starts[-1] + meta.num_rows)
                if columns.actions is None and meta.num_rows:
                    action = parquet.read(columns=[columns.action]).column(0)
                    distinct.update(str(v) for v in pc.unique(action).drop_null().to_pylist())
        names = columns.actions or tuple(sorted(distinct))
        if not names:
            raise SimulationInputError(f"{path}: the action column {columns.action!r} has no values")
        return cls(files, tuple(starts), tuple(groups), columns, names, chunk_rows)

    @property
    def rows(self) -> int:
        """Rows in all the files."""
        return self.starts[-1]

    def read(self, start: int, stop: int) -> LoadReport:
        """Rows ``start:stop`` (any span of files), validated, numbered from the log's start."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = []
        for i, file in enumerate(self.files):
            low, high = max(start, self.starts[i]), min(stop, self.starts[i + 1])
            if low >= high:
                continue
            bounds = np.concatenate([[0], np.cumsum(self.group_rows[i])]) + self.starts[i]
            wanted = [g for g in range(len(self.group_rows[i])) if bounds[g] < high and bounds[g + 1] > low]
            with reading(file):
                table = pq.ParquetFile(file).read_row_groups(wanted, columns=list(self.columns.columns))
            first = int(bounds[wanted[0]])
            parts.append(table.slice(low - first, high - low))
        table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        arrays = LogArrays.from_table(table, self.columns, self.action_names, first_row=start)
        if arrays is not None:
            return arrays.report(0, table.num_rows)
        return validate_frame(table.to_pandas(), self.columns, self.action_names, first_row=start,
                              frame_contexts=True)

    def chunks(self, start_row: int = 0, stop_row: int | None = None) -> Iterator[LoadReport]:
        """See :class:`~simulations.sources.LogSource`."""
        stop = self.rows if stop_row is None else min(stop_row, self.rows)
        for first in range(start_row, stop, self.chunk_rows):
            yield self.read(first, min(first + self.chunk_rows, stop))
