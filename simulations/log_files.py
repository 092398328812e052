"""The log files themselves: a CSV or Parquet file's format, header and columns, read in chunks or whole
by pyarrow's streaming readers, with one readable error for a file that cannot be read as a log.

What is done with the rows read (checked, set aside, loaded) is :mod:`simulations.logs`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulations.data import SimulationInputError
from simulations.file_errors import reading

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyarrow import csv as pa_csv


_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".gz", ".txt", ".tsv")


def log_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    raise SimulationInputError(f"{path}: unknown log format {suffix!r}; expected .csv or .parquet")


def existing_log(path: str | Path, what: str = "logs") -> Path:
    path = Path(path)
    if not path.exists():
        raise SimulationInputError(f"{what}: file {path} does not exist")
    return path


def log_columns(path: str | Path) -> list[str]:
    """The column names of a CSV or Parquet log (its header only is read)."""
    path = existing_log(path)
    with reading(path):
        if log_format(path) == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return _csv_header(path)


def _csv_parse_options(path: Path) -> pa_csv.ParseOptions:
    from pyarrow import csv

    return csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")


def _csv_first_block(path: Path) -> pa.Schema:
    """A CSV's column names, and the types pyarrow's reader infers from its first block (64 KiB, or the
    reader's own block when a row is longer)."""
    import pyarrow as pa
    from pyarrow import csv

    for block in (1 << 16, _CSV_LONG_BLOCK_BYTES):
        try:
            read = csv.ReadOptions(block_size=block, use_threads=False)
            reader = csv.open_csv(path, read_options=read, parse_options=_csv_parse_options(path),
                                  convert_options=csv.ConvertOptions(null_values=NULL_TEXTS,
                                                                     strings_can_be_null=True))
        except pa.ArrowInvalid:
            if block == _CSV_LONG_BLOCK_BYTES:
                raise
            continue
        reader.close()
        return reader.schema
    raise AssertionError("unreachable")


def _parquet_schema(path: Path) -> pa.Schema:
    import pyarrow.parquet as pq

    return pq.read_schema(path)


def _csv_header(path: Path) -> list[str]:
    """A CSV's column names as pyarrow's reader, which reads logs, names them."""
    return [str(name) for name in _csv_first_block(path).names]


def read_table_chunks(
    path: Path, columns: Sequence[str], chunk_rows: int, text_columns: Sequence[str] = (), start_row: int = 0,
    stop_row: int | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(number of the first row, frame)`` for consecutive chunks of rows ``start_row:stop_row`` of a
    CSV or Parquet file, with only ``columns`` read; a CSV's ``text_columns`` are read as strings (an
    id ``007`` stays ``"007"``). Errors of reading name the file (:func:`simulations.file_errors.reading`).
    """
    with reading(path):
        yield from _read_chunks(path, list(columns), chunk_rows, list(text_columns), start_row, stop_row)


def _read_chunks(
    path: Path, columns: list[str], chunk_rows: int, text_columns: list[str], start_row: int,
    stop_row: int | None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    import pandas as pd

    check_columns(path, columns, log_columns(path))
    if log_format(path) == "parquet":
        import pyarrow.parquet as pq

        file = pq.ParquetFile(path)
        offsets = np.concatenate([[0], np.cumsum([file.metadata.row_group(g).num_rows
                                                  for g in range(file.num_row_groups)])])
        end = int(offsets[-1]) if stop_row is None else min(stop_row, int(offsets[-1]))
        groups = [g for g in range(file.num_row_groups) if offsets[g + 1] > start_row and offsets[g] < end]
        if not groups:
            return
        position = int(offsets[groups[0]])
        batches = (b.to_pandas() for b in file.iter_batches(batch_size=chunk_rows, columns=columns,
                                                             row_groups=groups))
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        end = stop_row
        position = 0
        batches = pd.read_csv(path, usecols=columns, chunksize=chunk_rows, sep=sep,
                              dtype=dict.fromkeys(text_columns, "string"))
    for frame in batches:
        first, position = position, position + len(frame)
        if position <= start_row:
            continue
        if end is not None and first >= end:
            break
        low = max(start_row - first, 0)
        high = len(frame) if end is None else min(len(frame), end - first)
        if low or high < len(frame):
            frame = frame.iloc[low:high]
        if len(frame):
            yield first + low, frame
    if hasattr(batches, "close"):
        batches.close()


#: Texts read as missing values, as pandas reads them by default.
NULL_TEXTS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
#: Bytes of CSV text per batch of the streaming reader (types are inferred from the first batch). The
#: reader runs on the calling thread: on the few, shared cores a replay runs on, its thread pool cost
#: more than it saved. Batches of 1 MiB rather than 16 MiB: the reader's buffers are then reused
#: instead of mapped afresh for every batch (about 0.2 of 1.3 CPU seconds in a fresh process replaying
#: a 1,000,000-row, 44 MB log).
_CSV_BLOCK_BYTES = 1 << 20
#: The largest batch, for a file with a row longer than a batch of :data:`_CSV_BLOCK_BYTES`.
_CSV_LONG_BLOCK_BYTES = 1 << 24


def read_log_table(path: str | Path, columns: Sequence[str], text_columns: Sequence[str] = (),
                   category_columns: Sequence[str] = ()) -> pa.Table:
    """``columns`` of a CSV or Parquet file, read once by pyarrow's streaming readers (in batches).

    ``text_columns`` (ids) are read as dictionary-encoded text (an id ``007`` stays ``"007"``; pandas
    sees a categorical column, whose lookups touch each distinct id once), and so are those of
    ``category_columns`` (features) that hold text. A CSV's other columns' types are inferred (from the
    first batch; a column whose later values do not fit the inferred type is read again as plain text,
    so that the row checks set those values aside; a column of numbers with a fraction in the file's
    first 64 KiB is read as floats without inference). Missing values are the texts pandas reads as
    missing. Errors of reading name the file (:func:`simulations.file_errors.reading`).
    """
    import pyarrow as pa

    def is_text(kind: pa.DataType) -> bool:
        return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))

    path = existing_log(path)
    with reading(path):
        first = _parquet_schema(path) if log_format(path) == "parquet" else _csv_first_block(path)
    header = [str(name) for name in first.names]
    check_columns(path, list(columns), header)
    texts = [c for c in columns
             if c in text_columns or (c in category_columns and is_text(first.field(c).type))]
    with reading(path):
        if log_format(path) == "parquet":
            import pyarrow.parquet as pq

            file = pq.ParquetFile(path, read_dictionary=[c for c in texts if is_text(first.field(c).type)])
            schema = pa.schema([file.schema_arrow.field(c) for c in columns])
            table = pa.Table.from_batches(list(file.iter_batches(columns=list(columns))), schema=schema)
            for name in text_columns:
                column = table.column(name)
                if is_text(column.type):
                    table = table.set_column(table.schema.get_field_index(name), name,
                                             column.dictionary_encode())
            return table
        from pyarrow import csv

        failed: set[str] = set()
        block = _CSV_BLOCK_BYTES
        text_ids = pa.dictionary(pa.int32(), pa.string())
        floats = [c for c in columns if pa.types.is_float64(first.field(c).type)]
        parse = _csv_parse_options(path)
        while True:
            convert = csv.ConvertOptions(include_columns=list(columns), strings_can_be_null=True,
                                         null_values=NULL_TEXTS,
                                         column_types={**dict.fromkeys(floats, pa.float64()),
                                                       **dict.fromkeys(texts, text_ids),
                                                       **dict.fromkeys(failed, pa.string()),
                                                       **dict.fromkeys(text_columns, text_ids)})
            try:
                read = csv.ReadOptions(block_size=block, use_threads=False)
                reader = csv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
                return reader.read_all()
            except pa.ArrowInvalid as exc:
                if "straddling" in str(exc) and block < _CSV_LONG_BLOCK_BYTES:  # a row longer than a batch
                    block = _CSV_LONG_BLOCK_BYTES
                    continue
                column = _failed_column(str(exc), header)
                if column is None or column in failed or column in text_columns:
                    raise
                failed.add(column)


def _failed_column(message: str, header: list[str]) -> str | None:
    """The column named by pyarrow's ``In CSV column #i: CSV conversion error ...``, if any."""
    prefix = "In CSV column #"
    if not message.startswith(prefix) or "conversion error" not in message:
        return None
    index = message[len(prefix):].split(":", 1)[0]
    return header[int(index)] if index.isdigit() and int(index) < len(header) else None


def check_columns(path: Path, columns: list[str], header: Sequence[str]) -> None:
    """Each of ``columns`` is in ``header``, once."""
    present = set(header)
    missing = [c for c in columns if c not in present]
    if missing:
        raise SimulationInputError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; the file has {sorted(present)}"
        )
    check_named_once(path, columns, header)


def check_named_once(path: Path, columns: Sequence[str], header: Sequence[str]) -> None:
    """Refuse a header that names one of ``columns`` twice (such a column cannot be read by name)."""
    repeated = [c for c in dict.fromkeys(columns) if list(header).count(c) > 1]
    if repeated:
        raise SimulationInputError(
            f"{path}: the header repeats the column name {', '.join(map(repr, repeated))}: "
            "each column needs its own name"
        )
