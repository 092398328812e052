"""Per-recipient totals of a history, accumulated chunk by chunk in memory that grows with recipients.

Each chunk of events (:class:`~experiments.features.events.EventBatch`) is summed per recipient into
a :class:`HistoryTotals`: the time of the last event and of the last purchase (maxima), and counts and
amounts (sums of integers). Totals merge with ``+`` exactly (maxima and integer sums do not depend on
order), so a history read in chunks of any size gives the same totals as the whole history at once.
:func:`aggregate_history` merges the chunks' totals as they come, so memory holds the running totals
(one row per recipient seen) and a few chunks' worth of partial totals, never the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.errors import InvalidInput
from experiments.features.events import EventBatch
from experiments.features.settings import MAX_EVENT_TYPES

NANOS_PER_DAY = 86_400 * 10**9
#: "No such event" in a time column (the smallest int64, below every real time).
NO_TIME = np.iinfo(np.int64).min
#: Time columns, merged by maximum.
TIME_COLUMNS = ("last_event", "last_purchase")
#: Purchase sums in the window, merged by sum; an amount in millionths is split into its high and low
#: 32 bits so that no int64 sum can overflow.
SUM_COLUMNS = ("frequency", "money_high", "money_low")
_LOW_BITS = 32
#: Partial totals wait until they hold this many rows (or as many as the running totals) to be merged.
MERGE_ROWS = 1_000_000


def count_column(event_type: str, days: int) -> str:
    """The name of the count of ``event_type`` events in the last ``days`` days: ``open_30d``."""
    return f"{event_type}_{days}d"


@dataclass(frozen=True)
class Cutoff:
    """What is summed per recipient, as of one moment.

    Attributes
    ----------
    as_of : int
        Nanoseconds since the epoch (UTC); later events are left out.
    window_days : int
        Purchases in ``(as_of - window_days, as_of]`` make frequency and monetary value.
    count_windows : tuple of int
        Each event type is counted in ``(as_of - w, as_of]`` for each ``w`` (days).
    purchase_type : str
    """

    as_of: int
    window_days: int
    count_windows: tuple[int, ...]
    purchase_type: str


@dataclass(frozen=True)
class HistoryTotals:
    """Per-recipient totals of some events, as of one :class:`Cutoff`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per recipient (the index: recipient ids), int64 columns :data:`TIME_COLUMNS`,
        :data:`SUM_COLUMNS` and one count per ``(type, window)`` named by :func:`count_column`.
    counted : tuple of (str, int)
        The ``(type, window days)`` of the count columns, sorted.
    events_used : int
        Events at or before the cutoff.
    events_after : int
        Events after it (left out).
    """

    frame: pd.DataFrame
    counted: tuple[tuple[str, int], ...] = ()
    events_used: int = 0
    events_after: int = 0

    def __len__(self) -> int:
        return len(self.frame)

    def __add__(self, other: HistoryTotals) -> HistoryTotals:
        if not isinstance(other, HistoryTotals):
            return NotImplemented
        return merge_totals([self, other])

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event types seen, sorted."""
        return tuple(sorted({t for t, _ in self.counted}))


def empty_totals() -> HistoryTotals:
    """Totals of no events."""
    columns = {c: pd.Series([], dtype=np.int64) for c in TIME_COLUMNS + SUM_COLUMNS}
    return HistoryTotals(pd.DataFrame(columns, index=pd.Index([], dtype=object, name="recipient_id")))


def batch_totals(batch: EventBatch, cutoff: Cutoff) -> HistoryTotals:
    """The totals of one chunk of events per recipient.

    Parameters
    ----------
    batch : EventBatch
    cutoff : Cutoff

    Returns
    -------
    HistoryTotals
        For the recipients with an event at or before ``cutoff.as_of`` in the chunk.
    """
    _check_type_count(set(batch.event_types))
    used = batch.times <= cutoff.as_of
    codes = batch.recipient_codes[used]
    present, codes = np.unique(codes, return_inverse=True)
    n = len(present)
    times = batch.times[used]
    type_codes = batch.type_codes[used]
    purchase_code = (batch.event_types.index(cutoff.purchase_type)
                     if cutoff.purchase_type in batch.event_types else -1)
    purchase = type_codes == purchase_code
    bought = purchase & (times > cutoff.as_of - cutoff.window_days * NANOS_PER_DAY)
    micros = np.where(bought, batch.amount_micros[used], 0)
    last_event = np.full(n, NO_TIME)
    np.maximum.at(last_event, codes, times)
    last_purchase = np.full(n, NO_TIME)
    np.maximum.at(last_purchase, codes[purchase], times[purchase])
    columns: dict[str, np.ndarray] = {
        "last_event": last_event,
        "last_purchase": last_purchase,
        "frequency": np.bincount(codes[bought], minlength=n),
        "money_high": _integer_sums(codes, micros >> _LOW_BITS, n),
        "money_low": _integer_sums(codes, micros & ((1 << _LOW_BITS) - 1), n),
    }
    counted = []
    for code, event_type in sorted(enumerate(batch.event_types), key=lambda pair: pair[1]):
        of_type = type_codes == code
        if not of_type.any():
            continue
        for days in sorted(cutoff.count_windows):
            counted.append((event_type, days))
            recent = of_type & (times > cutoff.as_of - days * NANOS_PER_DAY)
            columns[count_column(event_type, days)] = np.bincount(codes[recent], minlength=n)
    index = pd.Index(batch.recipients[present], name="recipient_id")
    frame = pd.DataFrame({c: v.astype(np.int64) for c, v in columns.items()}, index=index)
    return HistoryTotals(frame, tuple(counted), int(used.sum()), int((~used).sum()))


def _integer_sums(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-group sums of int64 ``values``, exact."""
    sums = np.zeros(n, dtype=np.int64)
    np.add.at(sums, codes, values)
    return sums


def _check_type_count(types: set[str]) -> None:
    if len(types) > MAX_EVENT_TYPES:
        raise InvalidInput("events", f"the history holds more than {MAX_EVENT_TYPES} event types "
                                     f"({', '.join(sorted(types)[:5])}, ...): is the type column the "
                                     "right one?")


def merge_totals(parts: Sequence[HistoryTotals]) -> HistoryTotals:
    """Totals of several chunks as one: per recipient, maxima of times and sums of the rest.

    A count column missing from a part (an event type that part never saw) counts 0 there.
    """
    parts = [p for p in parts if len(p) or p.events_used or p.events_after]
    if not parts:
        return empty_totals()
    counted = tuple(sorted({c for p in parts for c in p.counted}))
    _check_type_count({t for t, _ in counted})
    names = list(TIME_COLUMNS + SUM_COLUMNS) + [count_column(t, d) for t, d in counted]
    frames = [p.frame for p in parts if len(p)]
    if len(frames) <= 1:
        frame = frames[0].reindex(columns=names, fill_value=0) if frames else empty_totals().frame
    else:
        codes, recipients = pd.factorize(frames[0].index.append([f.index for f in frames[1:]]))
        n = len(recipients)
        columns = {c: np.full(n, NO_TIME) for c in TIME_COLUMNS}
        columns.update({c: np.zeros(n, dtype=np.int64) for c in names[len(TIME_COLUMNS):]})
        start = 0
        for part in frames:
            where = codes[start:start + len(part)]
            start += len(part)
            for name in part.columns:
                values = part[name].to_numpy()
                if name in TIME_COLUMNS:
                    np.maximum.at(columns[name], where, values)
                else:
                    np.add.at(columns[name], where, values)
        frame = pd.DataFrame(columns, index=pd.Index(recipients, name="recipient_id"))
    return HistoryTotals(frame, counted, sum(p.events_used for p in parts),
                         sum(p.events_after for p in parts))


def aggregate_history(
    batches: Iterable[EventBatch],
    cutoffs: Sequence[Cutoff],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[HistoryTotals, ...]:
    """Per-recipient totals of a whole history as of each cutoff, reading it once, chunk by chunk.

    Parameters
    ----------
    batches : iterable of EventBatch
        The history's events in any order and any chunking.
    cutoffs : sequence of Cutoff
    on_progress : callable, optional
        Called with the number of events read so far after each chunk.

    Returns
    -------
    tuple of HistoryTotals
        One per cutoff, recipients sorted by id: equal for any chunking of the same events.
    """
    running = [empty_totals() for _ in cutoffs]
    waiting: list[list[HistoryTotals]] = [[] for _ in cutoffs]
    read = 0
    for batch in batches:
        read += len(batch)
        for i, cutoff in enumerate(cutoffs):
            waiting[i].append(batch_totals(batch, cutoff))
            if sum(len(p) for p in waiting[i]) >= max(len(running[i]), MERGE_ROWS):
                running[i] = merge_totals([running[i], *waiting[i]])
                waiting[i] = []
        if on_progress is not None:
            on_progress(read)
    merged = [merge_totals([r, *w]) for r, w in zip(running, waiting, strict=True)]
    return tuple(HistoryTotals(_sorted_by_id(t.frame), t.counted, t.events_used, t.events_after)
                 for t in merged)


def _sorted_by_id(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by recipient id, the index as Python strings (however many merges built it)."""
    frame = frame.sort_index()
    frame.index = pd.Index(frame.index.to_numpy(dtype=object), dtype=object, name="recipient_id")
    return frame
