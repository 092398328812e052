"""Logged sends read chunk by chunk, as many times as a replay needs, from a file or from records.

A :class:`LogSource` knows how many rows it has and its variants, and yields the validated chunks of
any range of its rows (:class:`~simulations.load_reports.LoadReport`, with row numbers counted from the
source's start). A replay reads the earlier part once to train, then the later part once to evaluate.

- :class:`FileSource`: a CSV or Parquet file through a :class:`~simulations.column_maps.ColumnMap`;
- :class:`RecordSource`: chunks of records (mappings or objects, as exported from the SendLab
  database) produced afresh by a function on each pass;
- :class:`ProbabilityReader`: a file of per-row action probabilities read in step with the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from simulations.column_maps import ColumnMap
from simulations.data import SimulationInputError
from simulations.file_errors import reading
from simulations.load_reports import LoadReport
from simulations.log_arrays import LogArrays
from simulations.log_files import read_log_table
from simulations.log_records import combination_label, logs_from_records
from simulations.logs import validate_frame
from simulations.replay import probability_values

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class LogSource(Protocol):
    """Logged sends that can be read in chunks, any range of rows, any number of times."""

    @property
    def rows(self) -> int:
        """Rows in the source, usable or not."""
        ...

    @property
    def action_names(self) -> tuple[str, ...]:
        """The variants, in the order of every ``(n, k)`` array."""
        ...

    def chunks(self, start_row: int = 0, stop_row: int | None = None) -> Iterator[LoadReport]:
        """Validated chunks of rows ``start_row:stop_row``, in order."""
        ...


@dataclass(frozen=True)
class FileSource:
    """A CSV or Parquet log read through a column map (features kept as DataFrames, not mappings).

    Build it with :meth:`open`, which reads the mapped columns of the file once, with pyarrow's
    streaming readers (:func:`simulations.log_files.read_log_table`), into an Arrow table: the row count,
    the variants and every chunk come from that table, so a replay reads the file once. The table holds
    only the mapped columns (about 40 bytes a row for a log with three features). Where their types
    allow, they are held as numpy arrays instead (:class:`~simulations.log_arrays.LogArrays`, about as
    large), from which each chunk is checked without pandas; else each chunk is converted to pandas and
    checked when it is asked for.
    """

    path: Path
    columns: ColumnMap
    table: pa.Table | None
    action_names: tuple[str, ...]
    chunk_rows: int = 100_000
    arrays: LogArrays | None = None

    @classmethod
    def open(cls, path: str | Path, columns: ColumnMap, *, chunk_rows: int = 100_000) -> FileSource:
        """Read the file and return the source; the variants are ``columns.actions``, else the sorted
        distinct values of the action column."""
        if chunk_rows < 1:
            raise SimulationInputError(f"chunk_rows: must be at least 1, got {chunk_rows}")
        table = read_log_table(path, columns.columns, [columns.action], columns.context)
        arrays = LogArrays.from_table(table, columns, columns.actions)
        if arrays is not None:
            names = arrays.action_names
        elif columns.actions is not None:
            names = columns.actions
        else:
            import pyarrow.compute as pc

            distinct = pc.unique(table.column(columns.action)).drop_null().to_pylist()
            names = tuple(sorted({str(v) for v in distinct}))
        if not names:
            raise SimulationInputError(f"{path}: the action column {columns.action!r} has no values")
        return cls(Path(path), columns, None if arrays is not None else table, names, chunk_rows, arrays)

    @property
    def rows(self) -> int:
        """Rows in the file."""
        if self.arrays is not None:
            return self.arrays.rows
        assert self.table is not None
        return int(self.table.num_rows)

    def chunks(self, start_row: int = 0, stop_row: int | None = None) -> Iterator[LoadReport]:
        """See :class:`LogSource`."""
        stop = self.rows if stop_row is None else min(stop_row, self.rows)
        for first in range(start_row, stop, self.chunk_rows):
            last = min(first + self.chunk_rows, stop)
            if self.arrays is not None:
                yield self.arrays.report(first, last)
                continue
            assert self.table is not None
            frame = self.table.slice(first, last - first).to_pandas()
            yield validate_frame(frame, self.columns, self.action_names, first_row=first, frame_contexts=True)


@dataclass(frozen=True)
class RecordSource:
    """Records in chunks, as :func:`simulations.log_records.logs_from_records` reads them.

    Attributes
    ----------
    open_chunks : callable
        ``open_chunks()`` starts a new pass and yields sequences of records in log order (for example
        ``lambda: service.export_log_chunks(key)``).
    rows : int
        Records read: the first ``rows`` records of each pass (records added later are left out).
    action_names : tuple of str
        The variants; records with another action are set aside as unknown.
    reward_range : (float, float) or None
        Inclusive bounds for the reward.
    action : str or callable
        As in :func:`~simulations.log_records.logs_from_records`.
    """

    open_chunks: Callable[[], Iterable[Sequence[object]]]
    rows: int
    action_names: tuple[str, ...]
    reward_range: tuple[float, float] | None = None
    action: str | Callable[[object], object] = "action"

    def chunks(self, start_row: int = 0, stop_row: int | None = None) -> Iterator[LoadReport]:
        """See :class:`LogSource`."""
        stop_row = self.rows if stop_row is None else min(stop_row, self.rows)
        position = 0
        batches = iter(self.open_chunks())
        try:
            for records in batches:
                first, position = position, position + len(records)
                if position <= start_row:
                    continue
                if first >= stop_row:
                    break
                low = max(start_row - first, 0)
                high = min(len(records), stop_row - first)
                part = records[low:high] if low or high < len(records) else records
                if len(part):
                    yield logs_from_records(part, actions=self.action_names, reward_range=self.reward_range,
                                            action=self.action, first_row=first + low)
                if position >= stop_row:
                    break
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()


class ProbabilityReader:
    """A per-row probability file (one row per logged send, one column per variant) read in step with
    the log: :meth:`rows_of` takes the probabilities of a chunk's used rows as the chunks go by.

    Parameters
    ----------
    path : str or Path
        CSV or Parquet.
    action_names : sequence of str
        The log's variants; the arrays' columns follow this order.
    total_rows : int
        Rows the file must have (the log's rows, used or not).
    chunk_rows : int
        Rows read at a time.
    """

    def __init__(self, path: str | Path, action_names: Sequence[str], total_rows: int, *,
                 chunk_rows: int = 100_000) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SimulationInputError(f"probabilities: file {self.path} does not exist")
        suffix = self.path.suffix.lower()
        if suffix not in (".parquet", ".pq", ".csv", ".gz"):
            raise SimulationInputError(
                f"probabilities: unknown format {suffix!r}; expected .csv or .parquet"
            )
        self.action_names = tuple(action_names)
        self.total_rows = total_rows
        self.chunk_rows = chunk_rows
        self._frames: Iterator[pd.DataFrame] | None = None
        self._buffer = np.zeros((0, len(self.action_names)))
        self._buffer_start = 0
        with reading(self.path):  # a file that is empty, not UTF-8 or not Parquet fails here, not later
            if suffix in (".parquet", ".pq"):
                import pyarrow.parquet as pq

                pq.ParquetFile(self.path).close()
            else:
                import pandas as pd

                pd.read_csv(self.path, nrows=0)

    def _open(self) -> Iterator[pd.DataFrame]:
        """The file's frames, in order; a file that is not what its name says is named in the error."""
        with reading(self.path):
            yield from self._read()

    def _read(self) -> Iterator[pd.DataFrame]:
        if self.path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            file = pq.ParquetFile(self.path)
            if file.metadata.num_rows != self.total_rows:
                self._wrong_length(int(file.metadata.num_rows))
            yield from (b.to_pandas() for b in file.iter_batches(batch_size=self.chunk_rows))
            return
        import pandas as pd

        with pd.read_csv(self.path, chunksize=self.chunk_rows) as frames:
            yield from frames

    def _wrong_length(self, rows: int | str) -> None:
        raise SimulationInputError(
            f"probabilities: {rows} rows, but the log has {self.total_rows}; "
            "one row per logged send is needed"
        )

    def _read_until(self, stop: int) -> None:
        if self._frames is None:
            self._frames = self._open()
        parts = [self._buffer]
        end = self._buffer_start + self._buffer.shape[0]
        while end < stop:
            frame = next(self._frames, None)
            if frame is None:
                self._wrong_length(end if end < self.total_rows else f"more than {end}")
            parts.append(probability_values(frame, self.action_names, first_row=end))
            end += len(frame)
        if end > self.total_rows:
            self._wrong_length(f"at least {end}")
        self._buffer = np.concatenate(parts) if len(parts) > 1 else self._buffer

    def rows_of(self, report: LoadReport) -> np.ndarray:
        """The ``(report.data.n, k)`` probabilities of a chunk's used rows; chunks must come in order."""
        kept = np.asarray(report.kept_rows, dtype=np.int64)
        if kept.size == 0:
            return np.zeros((0, len(self.action_names)))
        if kept[0] < self._buffer_start:
            raise SimulationInputError("probabilities: chunks must be read in order")
        self._read_until(int(kept[-1]) + 1)
        out = self._buffer[kept - self._buffer_start]
        drop = int(kept[-1]) + 1 - self._buffer_start
        self._buffer, self._buffer_start = self._buffer[drop:], self._buffer_start + drop
        return out

    def finish(self) -> None:
        """Check that the file has no rows beyond the log's."""
        self._read_until(self.total_rows)
        if self._frames is not None and next(self._frames, None) is not None:
            self._wrong_length(f"more than {self.total_rows}")


class DecisionLog(Protocol):
    """What :func:`experiment_source` needs of the experiment service."""

    def export_log_summary(self, key: str) -> Any: ...

    def export_log_chunks(self, key: str, chunk_rows: int = ...) -> Iterator[list[Any]]: ...


def experiment_source(service: DecisionLog, key: str, chunk_rows: int) -> RecordSource:
    """The decision log of experiment ``key`` (its current version's learnable decisions with their
    rewards), read from the store in chunks of ``chunk_rows``.

    The actions are the experiment's arms, named ``slot=variant|slot=variant`` in the spec's slot order.
    """
    export = service.export_log_summary(key)
    names = tuple(combination_label(variants) for variants in export.arms)
    return RecordSource(
        open_chunks=lambda: service.export_log_chunks(key, chunk_rows),
        rows=export.rows,
        action_names=names,
        action=lambda decision: names[decision.arm],  # type: ignore[attr-defined]
    )
