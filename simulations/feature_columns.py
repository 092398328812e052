"""Features of logged sends as one numpy array per feature: the form in which file logs keep them.

A :class:`FeatureColumns` holds ``n`` rows of named features, each a :class:`FeatureColumn`: numbers
(an array of floats or integers, NaN where missing), or text labels held as integer codes into the
column's distinct labels (``-1`` where missing). It is one of the forms of
:data:`simulations.data.Contexts`: the file readers fill it straight from Arrow columns, and the reward
model encodes it column by column, so no pandas object and no mapping per row is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureColumn:
    """One feature of ``n`` rows.

    Attributes
    ----------
    name : str
    values : ndarray of shape (n,)
        The numbers (float or integer; NaN where missing), or, when ``labels`` is given, codes into
        ``labels`` (``-1`` where missing).
    labels : tuple of str, or None
        The distinct texts of a text feature; ``None`` for a numeric one.
    """

    name: str
    values: np.ndarray
    labels: tuple[str, ...] | None = None

    @property
    def is_numeric(self) -> bool:
        """Whether the feature is a number (else a text label)."""
        return self.labels is None

    def missing(self) -> np.ndarray:
        """Rows whose value is missing, shape (n,)."""
        if self.labels is not None:
            return self.values < 0
        if np.issubdtype(self.values.dtype, np.floating):
            return np.isnan(self.values)
        return np.zeros(self.values.shape, dtype=bool)

    def python_values(self) -> list[object]:
        """The values as Python objects (``None`` for a missing label)."""
        if self.labels is None:
            return self.values.tolist()
        labels = [*self.labels, None]  # code -1 picks the last
        return [labels[c] for c in self.values.tolist()]


@dataclass(frozen=True)
class FeatureColumns:
    """Named features of ``rows`` logged sends, one array per feature.

    Attributes
    ----------
    columns : tuple of FeatureColumn
        Each of shape ``(rows,)``, names distinct.
    rows : int
    """

    columns: tuple[FeatureColumn, ...]
    rows: int

    def __post_init__(self) -> None:
        for column in self.columns:
            if column.values.shape != (self.rows,):
                raise ValueError(f"feature {column.name!r}: expected shape ({self.rows},), "
                                 f"got {column.values.shape}")

    def __len__(self) -> int:
        return self.rows

    def missing(self) -> np.ndarray:
        """Rows with any feature missing, shape (rows,)."""
        out = np.zeros(self.rows, dtype=bool)
        for column in self.columns:
            out |= column.missing()
        return out

    def take(self, indices: np.ndarray) -> FeatureColumns:
        """The rows at ``indices`` (in that order, repeats allowed), or those where a boolean mask is true."""
        picked = tuple(FeatureColumn(c.name, c.values[indices], c.labels) for c in self.columns)
        rows = int(np.count_nonzero(indices)) if np.asarray(indices).dtype == bool else len(indices)
        return FeatureColumns(picked, rows)

    def rows_between(self, start: int, stop: int) -> FeatureColumns:
        """The rows ``start:stop`` (views, no copy)."""
        picked = tuple(FeatureColumn(c.name, c.values[start:stop], c.labels) for c in self.columns)
        return FeatureColumns(picked, len(range(*slice(start, stop).indices(self.rows))))

    def to_mappings(self) -> list[dict[str, object]]:
        """One ``{name: value}`` mapping per row, values as Python scalars."""
        if not self.columns:
            return [{} for _ in range(self.rows)]
        names = [c.name for c in self.columns]
        return [dict(zip(names, row, strict=True))
                for row in zip(*(c.python_values() for c in self.columns), strict=True)]

    @classmethod
    def concat(cls, parts: Sequence[FeatureColumns]) -> FeatureColumns:
        """The rows of ``parts`` one after the other; they must have the same features, each numeric in
        all parts or text in all (a text feature's labels are merged, in order of first appearance)."""
        if not parts:
            raise ValueError("parts: nothing to concatenate")
        first = parts[0]
        names = [c.name for c in first.columns]
        for part in parts:
            if [c.name for c in part.columns] != names or any(
                    a.is_numeric != b.is_numeric for a, b in zip(part.columns, first.columns, strict=True)):
                raise ValueError("parts: the features differ")
        columns = []
        for j, name in enumerate(names):
            pieces = [p.columns[j] for p in parts]
            if first.columns[j].is_numeric:
                columns.append(FeatureColumn(name, np.concatenate([c.values for c in pieces])))
                continue
            merged: dict[str, int] = {}
            codes = []
            for piece in pieces:
                assert piece.labels is not None
                recode = np.array([merged.setdefault(label, len(merged)) for label in piece.labels] + [-1],
                                  dtype=np.int64)
                codes.append(recode[piece.values])  # code -1 picks the last: still missing
            columns.append(FeatureColumn(name, np.concatenate(codes), tuple(merged)))
        return cls(tuple(columns), sum(p.rows for p in parts))
