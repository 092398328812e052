"""A batch of contexts as named feature columns, checked column by column rather than value by value.

A batch comes in one of three forms, all with one row per recipient:

- a sequence of mappings ``{name: value}`` (what the service passes); a missing name and a ``None``
  value both mean "missing";
- a 2-D numeric (or bool) numpy array, whose column ``j`` is the feature named ``x{j}``;
- a pandas DataFrame, one feature per column (pandas is not imported: the frame is read through its
  ``columns`` and ``to_numpy``); in a text or object column a missing value (NaN, as pandas marks it)
  is missing, in a numeric column it is an error, as NaN is in a mapping.

Each feature becomes one or two :class:`FeatureColumn`: its numbers, and its categories (strings, and
bools as ``true``/``false``). A column holding one kind of value is checked at once (the kinds present
are found by one pass of ``type`` over the values, numbers are converted and checked finite as an
array); a column mixing kinds is checked value by value with :func:`bandit.inputs.check_feature`, whose
messages every path shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, Literal

import numpy as np

from bandit.policy import PolicyError

_NUMBER_TYPES = (int, float, np.integer, np.floating)
_BOOL_TYPES = (bool, np.bool_)


@dataclass(frozen=True)
class FeatureColumn:
    """One feature over the rows of a batch where it has a value of one kind.

    Attributes
    ----------
    name : str
    kind : {"number", "category"}
    values : ndarray, shape (m,)
        float64 numbers, or the category tokens as str (``"true"``/``"false"`` for bools).
    rows : ndarray of int, shape (m,), or None
        The rows holding these values; None means every row, in order.
    """

    name: str
    kind: Literal["number", "category"]
    values: np.ndarray
    rows: np.ndarray | None = None


def is_frame(contexts: object) -> bool:
    """Whether ``contexts`` looks like a pandas DataFrame (without importing pandas)."""
    return hasattr(contexts, "columns") and hasattr(contexts, "to_numpy") and hasattr(contexts, "dtypes")


def feature_columns(contexts: object, n: int) -> list[FeatureColumn]:
    """The feature columns of a batch of ``n`` rows (see the module notes), every value checked.

    Raises
    ------
    PolicyError
        Naming the first bad row and feature, as :func:`bandit.inputs.check_feature` does.
    """
    if isinstance(contexts, int | np.integer):
        return []
    if isinstance(contexts, np.ndarray):
        return _array_columns(contexts)
    if is_frame(contexts):
        return _frame_columns(contexts)
    return _mapping_columns(contexts, n)  # type: ignore[arg-type]


def _array_columns(array: np.ndarray) -> list[FeatureColumn]:
    if array.ndim != 2:
        raise PolicyError(f"contexts: an array of contexts must have 2 dimensions (rows, features), "
                          f"got shape {array.shape}")
    if array.dtype == np.bool_:
        return [FeatureColumn(f"x{j}", "category", _bool_tokens(array[:, j])) for j in range(array.shape[1])]
    if array.dtype.kind not in "iuf":
        raise PolicyError(f"contexts: an array of contexts must hold numbers, got dtype {array.dtype}; "
                          "pass mappings or a DataFrame for text features")
    numbers = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        value = float(numbers[row, column])
        raise PolicyError(f"contexts[{row}]: feature 'x{column}' must be finite, got {value!r}")
    return [FeatureColumn(f"x{j}", "number", numbers[:, j]) for j in range(array.shape[1])]


def _frame_columns(frame: Any) -> list[FeatureColumn]:
    out: list[FeatureColumn] = []
    for position, name in enumerate(frame.columns):
        _check_name(name, lambda: 0)
        series = frame.iloc[:, position]
        kind = series.dtype.kind
        if kind in "iuf":
            numbers = series.to_numpy(dtype=np.float64)
            out.extend(_number_column(name, numbers, None, numbers.tolist()))
        elif kind == "b":
            out.append(FeatureColumn(name, "category", _bool_tokens(series.to_numpy(dtype=bool))))
        else:  # text or object: pandas marks a missing value NaN here, read as missing
            values = series.to_numpy(dtype=object).tolist()
            out.extend(_value_column(name, [None if v != v else v for v in values]))
    return out


def _mapping_columns(rows: Sequence[Mapping[str, Any]], n: int) -> list[FeatureColumn]:
    if set(map(type, rows)) - {dict}:
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise PolicyError(
                    f"contexts[{i}]: expected a mapping of feature name to value, got {type(row).__name__}"
                )
    if n == 0:
        return []
    names = list(rows[0])
    columns: list[list[Any]] | None = None
    if sum(map(len, rows)) == n * len(names):  # every row has the first row's names, or a KeyError
        try:
            columns = [list(map(itemgetter(name), rows)) for name in names]
        except KeyError:
            columns = None
    if columns is None:
        names = list(dict.fromkeys(chain.from_iterable(rows)))
        columns = [[row.get(name) for row in rows] for name in names]
    out: list[FeatureColumn] = []
    for name, values in zip(names, columns, strict=True):
        _check_name(name, lambda name=name: next(i for i, row in enumerate(rows) if name in row))
        out.extend(_value_column(name, values))
    return out


def _check_name(name: object, first_row: Any) -> None:
    if not isinstance(name, str) or not name:
        raise PolicyError(f"contexts[{first_row()}]: feature names must be non-empty strings, got {name!r}")


def _value_column(name: str, values: list[Any]) -> list[FeatureColumn]:
    """A column of Python (or numpy scalar) values: one kind checked at once, mixed kinds one by one."""
    kinds = set(map(type, values))
    if all(issubclass(t, _NUMBER_TYPES) and not issubclass(t, _BOOL_TYPES) for t in kinds):
        try:
            numbers = np.fromiter(values, dtype=np.float64, count=len(values))
        except OverflowError:
            return _mixed_column(name, values)
        return _number_column(name, numbers, None, values)
    if all(issubclass(t, str) for t in kinds):
        return [FeatureColumn(name, "category", np.array(values, dtype=str))]
    if all(issubclass(t, _BOOL_TYPES) for t in kinds):
        return [FeatureColumn(name, "category", _bool_tokens(np.array(values, dtype=bool)))]
    return _mixed_column(name, values)


def _number_column(name: str, numbers: np.ndarray, rows: np.ndarray | None,
                   originals: Sequence[Any] | np.ndarray) -> list[FeatureColumn]:
    bad = ~np.isfinite(numbers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = i if rows is None else int(rows[i])
        raise PolicyError(f"contexts[{row}]: feature {name!r} must be finite, got {originals[i]!r}")
    return [FeatureColumn(name, "number", numbers, rows)]


def _mixed_column(name: str, values: list[Any]) -> list[FeatureColumn]:
    from bandit.inputs import check_feature

    number_rows: list[int] = []
    category_rows: list[int] = []
    tokens: list[str] = []
    for i, value in enumerate(values):
        check_feature(name, value, where=f"contexts[{i}]")
        if value is None:
            continue
        if isinstance(value, _BOOL_TYPES):
            category_rows.append(i)
            tokens.append("true" if bool(value) else "false")
        elif isinstance(value, str):
            category_rows.append(i)
            tokens.append(value)
        else:
            number_rows.append(i)
    out = []
    if number_rows:
        rows = np.array(number_rows, dtype=np.int64)
        out.append(FeatureColumn(name, "number", np.array([float(values[i]) for i in number_rows]), rows))
    if category_rows:
        out.append(FeatureColumn(name, "category", np.array(tokens, dtype=str),
                                 np.array(category_rows, dtype=np.int64)))
    return out


def _bool_tokens(flags: np.ndarray) -> np.ndarray:
    return np.where(flags, "true", "false")
