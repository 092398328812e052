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
from simulations.log_files import (
    NULL_TEXTS,
    check_columns,
    existing_log,
    log_columns,
    log_format,
    read_table_chunks,
)
from simulations.row_checks import split_rows

if TYPE_CHECKING:
    import pandas as pd

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
        out[rows] = given.notna().to_numpy() & ~given.astype(str).isin(NULL_TEXTS).to_numpy()
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
    path = existing_log(path)
    check_columns(path, columns.columns, log_columns(path))
    if log_format(path) == "parquet" and columns.actions is not None:
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
    path = existing_log(path)
    log_format(path)
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
    check_columns(Path("frame"), columns.columns, [str(c) for c in frame.columns])
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
