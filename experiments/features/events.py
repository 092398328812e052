"""Events of a purchase and engagement history, checked and in the form the aggregation reads.

A history is a table of events, one row each: who (``recipient_id``), when (``timestamp``, ISO 8601; a
time without a zone is UTC), what (``type``: ``purchase`` or any engagement such as ``open`` or
``click``) and, for a purchase, how much (``amount``, in the currency's units, non-negative). Readers
(files, SQL tables, an HTTP body) hand :func:`events_from_frame` a frame with those four columns; a bad
row stops the computation with an :class:`EventProblem` naming the row, the column and the value.

Amounts are kept as whole millionths of the currency unit (``amount_micros``), so that per-recipient
sums are sums of integers: exact, and the same however the history is cut into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.errors import InvalidInput
from experiments.features.settings import MAX_AMOUNT, PURCHASE
from experiments.limits import MAX_EVENT_TYPE_LENGTH, MAX_ID_LENGTH
from experiments.text import SURROGATE_REASON, has_lone_surrogate

#: The columns of a history in SendLab's names.
EVENT_COLUMNS = ("recipient_id", "timestamp", "type", "amount")
#: Amounts are summed in these units of the currency (millionths).
MICROS_PER_UNIT = 1_000_000


class EventProblem(InvalidInput):
    """A row of a history that cannot be used: ``row`` (counted from 0 in read order), ``column`` (one
    of :data:`EVENT_COLUMNS`), the offending ``value`` and the ``reason``. Its field is
    ``events[row].column``, so an HTTP answer points at the event in the request's body."""

    def __init__(self, row: int, column: str, value: object, reason: str) -> None:
        if isinstance(value, np.generic):
            value = value.item()
        self.row = row
        self.column = column
        self.value = value
        self.problem = reason
        super().__init__(f"events[{row}].{column}", f"{reason}, got {value!r}")


@dataclass(frozen=True)
class EventBatch:
    """Consecutive events of a history, checked, with recipients and types numbered.

    Attributes
    ----------
    recipients : pandas.Index of str, shape (r,)
        The distinct recipient ids of the batch.
    recipient_codes : ndarray of int64, shape (n,)
        Each event's recipient, as a position in ``recipients``.
    times : ndarray of int64, shape (n,)
        Nanoseconds since 1970-01-01 UTC.
    event_types : tuple of str
        The distinct event types of the batch.
    type_codes : ndarray of int64, shape (n,)
        Each event's type, as a position in ``event_types``.
    amount_micros : ndarray of int64, shape (n,)
        A purchase's amount in millionths of the currency unit; 0 for other events.
    first_row : int
        Number of the first event in its source (events are numbered consecutively from it).
    """

    recipients: pd.Index
    recipient_codes: np.ndarray
    times: np.ndarray
    event_types: tuple[str, ...]
    type_codes: np.ndarray
    amount_micros: np.ndarray
    first_row: int = 0

    def __len__(self) -> int:
        return len(self.times)


def _first(mask: np.ndarray) -> int | None:
    where = np.flatnonzero(mask)
    return int(where[0]) if where.size else None


def _text(values: pd.Series, column: str, first_row: int, max_length: int) -> pd.Series:
    """A column of names as strings: all Unicode text, none missing or empty, none longer than
    ``max_length``."""
    text = _unicode(values, column, first_row)
    missing = text.isna().to_numpy() | (text.str.len() == 0).fillna(True).to_numpy()
    row = _first(missing)
    if row is not None:
        raise EventProblem(first_row + row, column, None if pd.isna(values.iloc[row]) else values.iloc[row],
                           "is missing")
    row = _first((text.str.len() > max_length).to_numpy())
    if row is not None:
        raise EventProblem(first_row + row, column, str(text.iloc[row])[:40] + "...",
                           f"is longer than {max_length} characters")
    row = _first(text.str.contains("\x00", regex=False).to_numpy())
    if row is not None:
        raise EventProblem(first_row + row, column, str(text.iloc[row]), "must not contain a NUL character")
    return text


def _unicode(values: pd.Series, column: str, first_row: int) -> pd.Series:
    """``values`` as pandas strings; a value that is no Unicode text stops with its row: a Python string
    holding a lone surrogate (``"\\ud800"``), or a file's bytes that are not UTF-8 (a surrogate encoded
    alone, ``ED A0 80``), which the string types would fail on deep in pyarrow, without a row."""
    import pyarrow as pa

    try:
        text = values.astype("string")
        pa.array(text).validate(full=True)  # Arrow's strings are not checked as UTF-8 when read
        return text
    except (UnicodeEncodeError, pa.ArrowException) as exc:
        failure = exc
    if values.dtype == object:
        for row, value in enumerate(values):
            if isinstance(value, str) and has_lone_surrogate(value):
                raise EventProblem(first_row + row, column, value, SURROGATE_REASON)
    else:
        for row, raw in enumerate(pa.array(values).cast(pa.large_binary()).to_pylist()):
            try:
                None if raw is None else raw.decode("utf-8")
            except UnicodeDecodeError:
                raise EventProblem(first_row + row, column, raw, "must be UTF-8 text") from None
    raise failure  # not a value's text: Arrow's own error


def _times(values: pd.Series, first_row: int) -> np.ndarray:
    """Nanoseconds since the epoch, UTC; a date or date-time without a zone is UTC."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values.astype("string"), utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    row = _first(bad)
    if row is not None:
        value = values.iloc[row]
        raise EventProblem(first_row + row, "timestamp", None if pd.isna(value) else value,
                           "must be an ISO 8601 date or date-time" if not pd.isna(value) else "is missing")
    return parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)


def _purchase_micros(values: pd.Series, purchases: np.ndarray, first_row: int) -> np.ndarray:
    """Each purchase's amount in millionths (0 for other events); a purchase needs a finite amount in
    ``[0, MAX_AMOUNT]``. Other events' amounts are not read."""
    amounts = pd.to_numeric(values.where(pd.Series(purchases, index=values.index)), errors="coerce")
    amounts = amounts.to_numpy(dtype=float, na_value=np.nan)
    bad = purchases & ~(np.isfinite(amounts) & (amounts >= 0) & (amounts <= MAX_AMOUNT))
    row = _first(bad)
    if row is not None:
        value = values.iloc[row]
        if pd.isna(value):
            raise EventProblem(first_row + row, "amount", None, "a purchase needs an amount")
        raise EventProblem(first_row + row, "amount", value,
                           f"must be a number from 0 to {MAX_AMOUNT:g}")
    return np.where(purchases, np.rint(np.nan_to_num(amounts) * MICROS_PER_UNIT), 0).astype(np.int64)


def events_from_frame(
    frame: pd.DataFrame, *, purchase_type: str = PURCHASE, first_row: int = 0,
) -> EventBatch:
    """Check a table of events and put it in the form the aggregation reads.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``recipient_id``, ``timestamp``, ``type`` and ``amount`` (see the module docstring).
    purchase_type : str
        The type of a purchase: those rows need an amount.
    first_row : int
        Number of the frame's first row in its source (for the row numbers of problems).

    Returns
    -------
    EventBatch

    Raises
    ------
    EventProblem
        For the first row (in order of columns) that cannot be used.

    Examples
    --------
    >>> batch = events_from_frame(pd.DataFrame({
    ...     "recipient_id": ["a", "b"], "timestamp": ["2024-05-01", "2024-05-02T10:00:00+02:00"],
    ...     "type": ["purchase", "open"], "amount": [19.99, None]}))
    >>> batch.amount_micros.tolist(), [batch.event_types[c] for c in batch.type_codes]
    ([19990000, 0], ['purchase', 'open'])
    """
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInput("events", f"column(s) {missing} missing; a history has {list(EVENT_COLUMNS)}")
    frame = frame.reset_index(drop=True)
    ids = _text(frame["recipient_id"], "recipient_id", first_row, MAX_ID_LENGTH)
    times = _times(frame["timestamp"], first_row)
    types = _text(frame["type"], "type", first_row, MAX_EVENT_TYPE_LENGTH)
    micros = _purchase_micros(frame["amount"], (types == purchase_type).to_numpy(dtype=bool), first_row)
    recipient_codes, recipients = pd.factorize(ids)
    type_codes, event_types = pd.factorize(types)
    return EventBatch(recipients, recipient_codes.astype(np.int64), times,
                      tuple(str(t) for t in event_types), type_codes.astype(np.int64), micros, first_row)
