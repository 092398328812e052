"""A log's mapped columns as numpy arrays, checked chunk by chunk without pandas.

:class:`~simulations.sources.FileSource` reads a file's mapped columns into an Arrow table once, and
:class:`~simulations.parquet_parts.PartitionedSource` a chunk's; :meth:`LogArrays.from_table` turns
such a table into numpy arrays (a text column becomes integer codes into its distinct texts, so the
variants and the text features are looked up once per distinct text), and :meth:`LogArrays.report`
checks any range of rows by the same rules as :func:`simulations.logs.validate_rows` (both call
:func:`simulations.row_checks.split_rows`), keeping the features as
:class:`~simulations.feature_columns.FeatureColumns`. No pandas object is built, and pandas
is not imported. The arrays take about as much memory as the Arrow table (8 bytes a number, 4 a text).

This covers the columns a log usually has: a text action column, numeric rewards, propensities and
positions, and numeric or text features. A table with a column of any other type (a text reward, a
boolean or date feature, a numeric action id) is left to the pandas reader
(:meth:`LogArrays.from_table` returns ``None``), whose conversions it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulations.column_maps import feature_name
from simulations.data import LoggedData
from simulations.feature_columns import FeatureColumn, FeatureColumns
from simulations.load_reports import LoadReport
from simulations.row_checks import split_rows

if TYPE_CHECKING:
    import pyarrow as pa

    from simulations.column_maps import ColumnMap


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_number(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _buffer_values(array: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A primitive Arrow array's values (read-only, from its data buffer) and its valid rows (``None``
    when none is missing). Read from the buffers: pyarrow's ``to_numpy`` imports pandas."""
    import pyarrow as pa

    kind = array.type
    code = "f" if pa.types.is_floating(kind) else "u" if pa.types.is_unsigned_integer(kind) else "i"
    dtype = np.dtype(f"{code}{kind.bit_width // 8}")
    if len(array) == 0:
        return np.zeros(0, dtype=dtype), None
    bitmap, data = array.buffers()[:2]
    values = np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
    if not array.null_count:
        return values, None
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return values, bits[array.offset:array.offset + len(array)].astype(bool)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, tuple[str, ...]]:
    """A text column as ``int32`` codes into its distinct texts (-1 where missing)."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    if column.num_chunks == 0:
        return np.zeros(0, dtype=np.int32), ()
    column = column.unify_dictionaries()  # every chunk's codes index the first chunk's dictionary
    texts = column.chunk(0).dictionary.to_pylist()
    parts = []
    for chunk in column.chunks:
        values, valid = _buffer_values(chunk.indices)
        parts.append(values if valid is None else np.where(valid, values, -1))
    codes = np.concatenate(parts).astype(np.int32, copy=False)
    if any(text is None for text in texts):  # a missing text in the dictionary itself
        codes = np.array([-1 if t is None else i for i, t in enumerate(texts)] + [-1], dtype=np.int32)[codes]
    return codes, tuple("" if t is None else str(t) for t in texts)


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as pandas converts it: integers stay integers unless a value is missing (then
    the column is floats, NaN where missing)."""
    parts = []
    for chunk in column.chunks:
        values, valid = _buffer_values(chunk)
        if valid is not None:
            values = np.where(valid, values, np.nan)
        parts.append(values)
    if not parts:
        return np.zeros(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True)
class LogArrays:
    """A log's mapped columns as numpy arrays, each of shape ``(rows,)``.

    Attributes
    ----------
    action_names : tuple of str
    indices : ndarray of int
        Each row's variant index in ``action_names`` (-1: unknown or missing).
    action_codes : ndarray of int32
        Codes into ``action_labels`` (-1: missing).
    action_labels : tuple of str
        The action column's distinct texts.
    rewards, propensities : ndarray
        As read (integers or floats, NaN where missing).
    positions : ndarray or None
    features : FeatureColumns
    reward_range : (float, float) or None
    first_row : int
        The number of the first row in the whole log (rows are numbered consecutively from it).
    """

    action_names: tuple[str, ...]
    indices: np.ndarray
    action_codes: np.ndarray
    action_labels: tuple[str, ...]
    rewards: np.ndarray
    propensities: np.ndarray
    positions: np.ndarray | None
    features: FeatureColumns
    reward_range: tuple[float, float] | None
    first_row: int = 0

    @classmethod
    def from_table(cls, table: pa.Table, columns: ColumnMap, action_names: Sequence[str] | None = None,
                   first_row: int = 0) -> LogArrays | None:
        """The arrays of ``table``'s mapped columns, its rows numbered from ``first_row``; ``None``
        when a column's type is not one this form holds (see the module's notes). The variants are
        ``action_names``, else the sorted distinct values of the action column (none when it has no
        value)."""
        names = [feature_name(c) for c in columns.context]
        numeric_roles = [columns.reward, columns.propensity, *([columns.position] * bool(columns.position))]
        kinds = {c: table.schema.field(c).type for c in columns.columns}
        if (not _is_text(kinds[columns.action]) or len(set(names)) != len(names)
                or not all(_is_number(kinds[c]) for c in numeric_roles)
                or not all(_is_text(kinds[c]) or _is_number(kinds[c]) for c in columns.context)):
            return None
        codes, labels = _codes(table.column(columns.action))
        if action_names is None:
            present = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(labels)))
            action_names = sorted({labels[i] for i in present})
        action_names = tuple(str(a) for a in action_names)
        position_of = {name: i for i, name in enumerate(action_names)}
        # code -1 (missing) picks the last entry: -1
        indices = np.array([position_of.get(label, -1) for label in labels] + [-1], dtype=np.int32)[codes]
        features = []
        for column, name in zip(columns.context, names, strict=True):
            if _is_text(kinds[column]):
                features.append(FeatureColumn(name, *_codes(table.column(column))))
            else:
                features.append(FeatureColumn(name, _numbers(table.column(column))))
        return cls(
            action_names, indices, codes, labels, _numbers(table.column(columns.reward)),
            _numbers(table.column(columns.propensity)),
            _numbers(table.column(columns.position)) if columns.position else None,
            FeatureColumns(tuple(features), table.num_rows), columns.reward_range, first_row,
        )

    @property
    def rows(self) -> int:
        """Rows in the log."""
        return int(self.indices.shape[0])

    def report(self, start: int, stop: int) -> LoadReport:
        """Check rows ``start:stop`` (of these arrays) and split them into used rows and rejections, as
        :func:`simulations.logs.validate_frame` does for the same rows as a DataFrame."""
        part = slice(start, stop)
        indices, codes = self.indices[part], self.action_codes[part]
        raw = {"reward": self.rewards[part], "propensity": self.propensities[part]}
        rewards = raw["reward"].astype(float, copy=False)
        propensities = raw["propensity"].astype(float, copy=False)
        features = self.features.rows_between(start, stop)
        labels = [*self.action_labels, ""]

        def example(field: str, i: int) -> str:
            return labels[codes[i]] if field == "action" else str(raw[field][i])

        row_numbers = np.arange(self.first_row + start, self.first_row + stop, dtype=np.int64)
        keep, rejected = split_rows(indices, codes < 0, rewards, propensities, features.missing(),
                                    self.reward_range, row_numbers, example)
        kept = None if keep.all() else np.flatnonzero(keep)

        def used(values: np.ndarray) -> np.ndarray:
            return values if kept is None else values[kept]

        n_used = len(row_numbers) if kept is None else len(kept)
        data = LoggedData(
            contexts=(features if kept is None else features.take(kept)) if features.columns
            else np.zeros((n_used, 0)),
            actions=used(indices).astype(np.int64),
            rewards=used(rewards),
            propensities=used(propensities),
            action_names=self.action_names,
            positions=None if self.positions is None else used(self.positions[part].astype(float)),
        )
        return LoadReport(data, rejected, len(row_numbers), used(row_numbers))
