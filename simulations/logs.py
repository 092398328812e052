"""Loading logged sends from CSV or Parquet files, setting bad rows aside.

Every row read is either used or reported: rows with a missing or non-positive propensity, a missing
or unknown variant, a missing reward or one outside the declared range, or a missing feature are
counted by reason, with the first few row numbers and values as examples, and never reach the
estimators. Which column holds what is a :class:`~simulations.column_maps.ColumnMap`; what a load
produced is a :class:`~simulations.load_reports.LoadReport`; records already fetched are read by
:func:`simulations.log_records.logs_from_records`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulations.column_maps import ColumnMap, column_map, feature_name
from simulations.data import LoggedData, SimulationInputError
from simulations.file_errors import reading
from simulations.load_reports import LoadReport, merge_reports
from simulations.row_checks import split_rows

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyarrow import csv as pa_csv

# pandas is imported by the functions that read or check through it: a replay of a file reads and
# checks its columns through Arrow and numpy (simulations.log_arrays) and never imports it.


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_text(values: pd.Series) -> pd.Series:
    """Ids as text: a column of strings (categorical or not) as it is, any other converted to text."""
    import pandas as pd

    inner = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else values
    if pd.api.types.is_string_dtype(inner.dtype) and (
        inner.dtype != object or pd.api.types.infer_dtype(inner, skipna=True) in ("string", "empty")
    ):
        return values
    return values.astype("string")


def _not_numbers(values: pd.Series, numbers: np.ndarray) -> np.ndarray:
    """Which of ``values`` (read as ``numbers``, NaN where missing or not a number) are given but are
    not numbers: NaN, and neither missing nor one of the texts read as missing (``"nan"``, ``"NA"``,
    ...), as a CSV's reader reads them."""
    out = np.isnan(numbers)
    if out.any():
        rows = np.flatnonzero(out)
        given = values.iloc[rows]
        out[rows] = given.notna().to_numpy() & ~given.astype(str).isin(_NULL_TEXTS).to_numpy()
    return out


def validate_rows(
    action_values: pd.Series,
    reward_values: pd.Series,
    propensity_values: pd.Series,
    contexts: pd.DataFrame | list[Mapping[str, object]],
    position_values: pd.Series | None,
    action_names: tuple[str, ...],
    reward_range: tuple[float, float] | None,
    row_numbers: np.ndarray,
    frame_contexts: bool = False,
) -> LoadReport:
    """Check one chunk row by row (vectorised) and split it into used rows and rejections."""
    import pandas as pd

    n = len(action_values)
    actions_text = _as_text(action_values)
    rewards = pd.to_numeric(reward_values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    propensities = pd.to_numeric(propensity_values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    indices = pd.Index(action_names, dtype=object).get_indexer(actions_text)  # -1: unknown or missing
    if isinstance(contexts, pd.DataFrame):
        missing_context = contexts.isna().any(axis=1).to_numpy() if contexts.shape[1] else np.zeros(n, bool)
    else:
        missing_context = np.array([any(map(_is_missing, c.values())) for c in contexts], dtype=bool)
    sources = {"action": action_values, "propensity": propensity_values, "reward": reward_values}
    keep, rejected = split_rows(
        indices, actions_text.isna().to_numpy(), rewards, propensities, missing_context, reward_range,
        row_numbers, lambda field, i: str(sources[field].iloc[i]),
        _not_numbers(propensity_values, propensities),
    )
    if isinstance(contexts, pd.DataFrame):
        if contexts.shape[1] and frame_contexts:
            kept_contexts: object = contexts[keep].reset_index(drop=True)
        elif contexts.shape[1]:
            kept_contexts = contexts[keep].to_dict("records")
        else:
            kept_contexts = np.zeros((int(keep.sum()), 0))
    else:
        kept_contexts = [c for c, k in zip(contexts, keep, strict=True) if k]
    positions = None
    if position_values is not None:
        positions = pd.to_numeric(position_values, errors="coerce").to_numpy(dtype=float)[keep]
    data = LoggedData(
        contexts=kept_contexts,
        actions=indices[keep].astype(np.int64),
        rewards=rewards[keep],
        propensities=propensities[keep],
        action_names=action_names,
        positions=positions,
    )
    return LoadReport(data, rejected, n, np.asarray(row_numbers, dtype=np.int64)[keep])


_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".gz", ".txt", ".tsv")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    raise SimulationInputError(f"{path}: unknown log format {suffix!r}; expected .csv or .parquet")


def _existing(path: str | Path, what: str = "logs") -> Path:
    path = Path(path)
    if not path.exists():
        raise SimulationInputError(f"{what}: file {path} does not exist")
    return path


def log_columns(path: str | Path) -> list[str]:
    """The column names of a CSV or Parquet log (its header only is read)."""
    path = _existing(path)
    with reading(path):
        if _format(path) == "parquet":
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
                                  convert_options=csv.ConvertOptions(null_values=_NULL_TEXTS,
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

    _check_columns(path, columns, log_columns(path))
    if _format(path) == "parquet":
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
_NULL_TEXTS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
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

    path = _existing(path)
    with reading(path):
        first = _parquet_schema(path) if _format(path) == "parquet" else _csv_first_block(path)
    header = [str(name) for name in first.names]
    _check_columns(path, list(columns), header)
    texts = [c for c in columns
             if c in text_columns or (c in category_columns and is_text(first.field(c).type))]
    with reading(path):
        if _format(path) == "parquet":
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
                                         null_values=_NULL_TEXTS,
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


def _check_columns(path: Path, columns: list[str], header: Sequence[str]) -> None:
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


@dataclass(frozen=True)
class LogScan:
    """What one cheap pass over a log's action column finds.

    Attributes
    ----------
    rows : int
        Rows in the file.
    action_names : tuple of str
        The variants: the map's ``actions``, else the sorted distinct values of the action column.
    """

    rows: int
    action_names: tuple[str, ...]


def scan_log(path: str | Path, columns: ColumnMap, *, chunk_rows: int = 100_000) -> LogScan:
    """Count a log's rows and find its variants, reading the action column only (Parquet: the row
    count comes from the file's metadata, and nothing is read when the map lists the actions)."""
    path = _existing(path)
    _check_columns(path, columns.columns, log_columns(path))
    if _format(path) == "parquet" and columns.actions is not None:
        import pyarrow.parquet as pq

        with reading(path):
            return LogScan(int(pq.ParquetFile(path).metadata.num_rows), columns.actions)
    seen: set[str] = set()
    rows = 0
    for _, chunk in read_table_chunks(path, [columns.action], chunk_rows, [columns.action]):
        rows += len(chunk)
        if columns.actions is None:
            seen.update(chunk[columns.action].dropna().astype(str).unique().tolist())
    if columns.actions is not None:
        return LogScan(rows, columns.actions)
    if not seen:
        raise SimulationInputError(f"{path}: the action column {columns.action!r} has no values")
    return LogScan(rows, tuple(sorted(seen)))


def iter_logs(
    path: str | Path,
    columns: ColumnMap,
    *,
    chunk_rows: int = 100_000,
    action_names: Sequence[str] | None = None,
    start_row: int = 0,
    stop_row: int | None = None,
    frame_contexts: bool = False,
) -> Iterator[LoadReport]:
    """Read a CSV or Parquet log chunk by chunk.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (or ``.csv.gz``) or ``.parquet``.
    columns : ColumnMap
        Which column holds what.
    chunk_rows : int
        Rows per chunk (Parquet chunks also end at the file's row groups).
    action_names : sequence of str, optional
        The variants (as :func:`scan_log` found them); by default ``columns.actions`` or one pass over
        the action column.
    start_row, stop_row : int
        Read only the file's rows ``start_row:stop_row`` (Parquet skips whole row groups before).
    frame_contexts : bool
        Keep the features as a DataFrame (:class:`LoggedData` accepts one) instead of one mapping per row.

    Yields
    ------
    LoadReport
        One per chunk, with row numbers counted from the start of the file.
    """
    if chunk_rows < 1:
        raise SimulationInputError(f"chunk_rows: must be at least 1, got {chunk_rows}")
    path = _existing(path)
    _format(path)
    names = tuple(
        action_names or columns.actions or scan_log(path, columns, chunk_rows=chunk_rows).action_names
    )
    chunks = read_table_chunks(path, columns.columns, chunk_rows, [columns.action], start_row, stop_row)
    for first_row, chunk in chunks:
        yield validate_frame(chunk, columns, names, first_row=first_row, frame_contexts=frame_contexts)


def validate_frame(
    frame: pd.DataFrame,
    columns: ColumnMap,
    action_names: Sequence[str],
    *,
    first_row: int = 0,
    row_numbers: np.ndarray | None = None,
    frame_contexts: bool = False,
) -> LoadReport:
    """Check a table of logged sends and split it into usable rows and rejections.

    Parameters
    ----------
    frame : pandas.DataFrame
        Holds at least ``columns.columns``.
    columns : ColumnMap
    action_names : sequence of str
        The variants; other actions are rejected as unknown.
    first_row : int
        Number of the frame's first row in its source (rows are numbered consecutively from it).
    row_numbers : ndarray of int, shape (len(frame),), optional
        Explicit row numbers instead of ``first_row``.
    frame_contexts : bool
        Keep the used rows' features as a DataFrame instead of one mapping per row.

    Returns
    -------
    LoadReport
    """
    _check_columns(Path("frame"), columns.columns, [str(c) for c in frame.columns])
    frame = frame.reset_index(drop=True)
    numbers = first_row + np.arange(len(frame)) if row_numbers is None else np.asarray(row_numbers)
    contexts = frame[list(columns.context)]
    contexts.columns = [feature_name(str(c)) for c in contexts.columns]
    return validate_rows(
        frame[columns.action],
        frame[columns.reward],
        frame[columns.propensity],
        contexts,
        frame[columns.position] if columns.position else None,
        tuple(str(a) for a in action_names),
        columns.reward_range,
        numbers,
        frame_contexts,
    )


def load_logs(
    path: str | Path,
    *,
    action_col: str,
    reward_col: str,
    propensity_col: str,
    context_cols: Sequence[str] | None = None,
    position_col: str | None = None,
    actions: Sequence[str] | None = None,
    reward_range: tuple[float, float] | None = None,
    chunk_rows: int = 100_000,
) -> LoadReport:
    """Load a whole CSV or Parquet log (read in chunks) into one :class:`LoadReport`.

    The keyword arguments are the fields of :class:`ColumnMap`; see :func:`iter_logs`.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"v": ["a", "b", "c"], "p": [0.5, 0.0, 0.5], "r": [1, 0, 1]}).to_csv(
    ...     folder / "log.csv", index=False)
    >>> report = load_logs(folder / "log.csv", action_col="v", reward_col="r", propensity_col="p",
    ...                    actions=["a", "b"])
    >>> report.data.n, {k: v.count for k, v in report.rejected.items()}
    (1, {'unknown_action': 1, 'zero_propensity': 1})
    """
    columns = column_map(
        action=action_col,
        reward=reward_col,
        propensity=propensity_col,
        context=tuple(context_cols or ()),
        position=position_col,
        actions=None if actions is None else tuple(actions),
        reward_range=reward_range,
    )
    return read_logs(path, columns, chunk_rows=chunk_rows)


def read_logs(path: str | Path, columns: ColumnMap, *, chunk_rows: int = 100_000) -> LoadReport:
    """Load a whole log described by a :class:`ColumnMap` into memory (see :func:`iter_logs`; for logs
    too big for memory use :func:`simulations.streaming.replay_source`)."""
    return merge_reports(iter_logs(path, columns, chunk_rows=chunk_rows))
