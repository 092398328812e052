"""Per-recipient features as of one moment: recency, frequency, monetary value, engagement counts.

Definitions, for a recipient as of ``as_of``, over the events at or before it:

- ``recency_days``: days since the last purchase, ever (fractional; ``NaN`` when there is none);
- ``days_since_last_event``: days since the last event of any type;
- ``frequency``: purchases in ``(as_of - window_days, as_of]``;
- ``monetary``: the sum of their amounts;
- ``average_order_value``: ``monetary / frequency`` (``NaN`` without a purchase in the window);
- ``<type>_<w>d``: events of each type in ``(as_of - w days, as_of]``, for each engagement window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.features.events import MICROS_PER_UNIT
from experiments.features.totals import NANOS_PER_DAY, NO_TIME, HistoryTotals, count_column

#: The features every recipient has, in order.
BASE_FEATURES = ("recency_days", "days_since_last_event", "frequency", "monetary", "average_order_value")


@dataclass(frozen=True)
class EngagementCount:
    """Events of one type per recipient in one window.

    Attributes
    ----------
    event_type : str
    window_days : int
    counts : ndarray of int64, shape (n,)
    """

    event_type: str
    window_days: int
    counts: np.ndarray

    @property
    def name(self) -> str:
        """``<type>_<window>d``, the count's name in tables and JSON."""
        return count_column(self.event_type, self.window_days)


@dataclass(frozen=True)
class FeatureTable:
    """Features of every recipient of a history as of one moment (see the module docstring).

    Attributes
    ----------
    as_of : pandas.Timestamp
    window_days : int
    recipient_ids : ndarray of str, shape (n,)
        Sorted.
    recency_days, days_since_last_event : ndarray of float, shape (n,)
    frequency : ndarray of int64, shape (n,)
    monetary, average_order_value : ndarray of float, shape (n,)
    engagement : tuple of EngagementCount
        Sorted by type, then window.
    """

    as_of: pd.Timestamp
    window_days: int
    recipient_ids: np.ndarray
    recency_days: np.ndarray
    days_since_last_event: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    average_order_value: np.ndarray
    engagement: tuple[EngagementCount, ...]

    def __len__(self) -> int:
        return len(self.recipient_ids)

    def engagement_count(self, event_type: str, window_days: int) -> np.ndarray:
        """The counts of ``event_type`` in ``window_days`` (zeros for a type never seen)."""
        for count in self.engagement:
            if (count.event_type, count.window_days) == (event_type, window_days):
                return count.counts
        return np.zeros(len(self), dtype=np.int64)

    def to_frame(self) -> pd.DataFrame:
        """One row per recipient: ``recipient_id``, :data:`BASE_FEATURES`, then each engagement count."""
        columns = {"recipient_id": self.recipient_ids}
        columns.update({name: getattr(self, name) for name in BASE_FEATURES})
        columns.update({c.name: c.counts for c in self.engagement})
        return pd.DataFrame(columns)


def feature_table(
    totals: HistoryTotals, as_of: pd.Timestamp, window_days: int, engagement_windows: tuple[int, ...],
) -> FeatureTable:
    """The features of :class:`HistoryTotals` summed as of ``as_of``.

    Parameters
    ----------
    totals : HistoryTotals
        Summed with the same ``as_of`` and ``window_days``, and counts for at least
        ``engagement_windows``.
    as_of : pandas.Timestamp
    window_days : int
    engagement_windows : tuple of int
        The counts to keep (other counted windows are left out).

    Returns
    -------
    FeatureTable
    """
    frame = totals.frame
    now = as_of.value
    last_purchase = frame["last_purchase"].to_numpy()
    recency = np.where(last_purchase == NO_TIME, np.nan, (now - last_purchase) / NANOS_PER_DAY)
    frequency = frame["frequency"].to_numpy()
    monetary = (frame["money_high"].to_numpy() * (2.0**32 / MICROS_PER_UNIT)
                + frame["money_low"].to_numpy() / MICROS_PER_UNIT)
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(frequency > 0, monetary / np.maximum(frequency, 1), np.nan)
    kept = set(engagement_windows)
    engagement = tuple(EngagementCount(t, d, frame[count_column(t, d)].to_numpy())
                       for t, d in totals.counted if d in kept)
    return FeatureTable(
        as_of=as_of,
        window_days=window_days,
        recipient_ids=frame.index.to_numpy(dtype=object),
        recency_days=recency,
        days_since_last_event=(now - frame["last_event"].to_numpy()) / NANOS_PER_DAY,
        frequency=frequency,
        monetary=monetary,
        average_order_value=average,
        engagement=engagement,
    )
