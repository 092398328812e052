"""What a feature computation is asked for, with its bounds, checked once for Python, CLI and HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from experiments.errors import InvalidInput
from experiments.limits import MAX_EVENT_TYPE_LENGTH, MAX_OUTCOME_VALUE, MAX_SEGMENTS

#: The event type of a purchase unless the settings name another.
PURCHASE = "purchase"
#: Longest window (and prediction horizon) in days: ten years.
MAX_WINDOW_DAYS = 3650
#: Most engagement windows one computation counts.
MAX_ENGAGEMENT_WINDOWS = 8
#: Most distinct event types one history may hold (each is counted per window, for every recipient).
MAX_EVENT_TYPES = 32
#: Largest amount of one purchase: the largest outcome value the store accepts.
MAX_AMOUNT = MAX_OUTCOME_VALUE
#: Most K-means segments: the segments become a context attribute, and results by segment take at most
#: this many distinct values.
MAX_K = MAX_SEGMENTS
#: Most cross-validation folds.
MAX_FOLDS = 20
#: The years an ``as_of`` may fall in (its windows and horizon stay within the range of int64 nanoseconds).
AS_OF_YEARS = (1900, 2200)


def utc_timestamp(value: str | datetime | pd.Timestamp, field: str = "as_of") -> pd.Timestamp:
    """``value`` as an aware UTC timestamp (a date or date-time without a zone is taken as UTC).

    Raises
    ------
    InvalidInput
        When ``value`` is not an ISO 8601 date or date-time, or falls outside :data:`AS_OF_YEARS`.
    """
    try:
        stamp = pd.Timestamp(datetime.fromisoformat(value) if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(field, f"must be an ISO 8601 date or date-time, got {value!r}") from None
    if stamp is pd.NaT:
        raise InvalidInput(field, f"must be an ISO 8601 date or date-time, got {value!r}")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not AS_OF_YEARS[0] <= stamp.year <= AS_OF_YEARS[1]:
        low, high = AS_OF_YEARS
        raise InvalidInput(field, f"must fall in the years {low} to {high}, got {value!r}")
    return stamp


@dataclass(frozen=True)
class FeatureSettings:
    """One feature computation.

    Attributes
    ----------
    as_of : pandas.Timestamp
        The moment the features describe (aware UTC; a string or naive time is read as UTC). Events after
        it are counted and left out.
    window_days : int
        Frequency and monetary value count the purchases in ``(as_of - window_days, as_of]``.
    engagement_windows : tuple of int
        Each event type is counted per recipient in ``(as_of - w, as_of]`` for each ``w`` (days).
    purchase_type : str
        The event type of a purchase.
    k : int or None
        The number of K-means segments; ``None`` chooses it by silhouette over ``k_range``.
    k_range : (int, int)
        Smallest and largest ``k`` tried (inclusive) when ``k`` is None.
    horizon_days : int or None
        With a horizon, a conversion model is trained (features as of ``as_of - horizon_days``, label: a
        purchase in the following ``horizon_days``) and every recipient gets ``p_convert``, the
        probability of a purchase in the ``horizon_days`` after ``as_of``. ``None``: no model.
    folds : int
        Cross-validation folds of the conversion model.
    seed : int
        Seed of K-means, the samples and the model.
    segment_rows : int
        At most this many recipients (a seeded sample) fit K-means; every recipient is then assigned.
    silhouette_rows : int
        At most this many of those score each ``k`` by silhouette (the score is quadratic in rows).
    model_rows : int
        At most this many recipients (a seeded sample) train and cross-validate the conversion model.
    threads : int
        Threads scikit-learn's K-means and gradient boosting may use (OpenMP). One by default: on a
        machine shared with other work, OpenMP threads that wait by spinning slow each other down.
    """

    as_of: pd.Timestamp
    window_days: int = 365
    engagement_windows: tuple[int, ...] = (30, 90)
    purchase_type: str = PURCHASE
    k: int | None = None
    k_range: tuple[int, int] = (2, 8)
    horizon_days: int | None = None
    folds: int = 5
    seed: int = 0
    segment_rows: int = 100_000
    silhouette_rows: int = 10_000
    model_rows: int = 200_000
    threads: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", utc_timestamp(self.as_of))
        object.__setattr__(self, "engagement_windows", tuple(self.engagement_windows))
        object.__setattr__(self, "k_range", tuple(self.k_range))
        _check_days("window_days", self.window_days)
        if not 1 <= len(self.engagement_windows) <= MAX_ENGAGEMENT_WINDOWS:
            raise InvalidInput("engagement_windows", f"give 1 to {MAX_ENGAGEMENT_WINDOWS} windows, got "
                                                     f"{len(self.engagement_windows)}")
        for days in self.engagement_windows:
            _check_days("engagement_windows", days)
        if len(set(self.engagement_windows)) != len(self.engagement_windows):
            raise InvalidInput("engagement_windows",
                               f"a window is given twice: {list(self.engagement_windows)}")
        if not self.purchase_type or len(self.purchase_type) > MAX_EVENT_TYPE_LENGTH:
            raise InvalidInput("purchase_type", f"must be 1 to {MAX_EVENT_TYPE_LENGTH} characters")
        if self.k is not None:
            _check_int("k", self.k, 1, MAX_K)
        if len(self.k_range) != 2:
            raise InvalidInput("k_range", f"must be (smallest, largest), got {self.k_range!r}")
        _check_int("k_range", self.k_range[0], 2, MAX_K)
        _check_int("k_range", self.k_range[1], self.k_range[0], MAX_K)
        if self.horizon_days is not None:
            _check_days("horizon_days", self.horizon_days)
        _check_int("folds", self.folds, 2, MAX_FOLDS)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("segment_rows", self.segment_rows, 2, 10**9)
        _check_int("silhouette_rows", self.silhouette_rows, 2, 10**9)
        _check_int("model_rows", self.model_rows, 2, 10**9)
        _check_int("threads", self.threads, 1, 256)

    @property
    def split_at(self) -> pd.Timestamp | None:
        """``as_of - horizon_days``: the conversion model's features are as of this moment."""
        return None if self.horizon_days is None else self.as_of - pd.Timedelta(days=self.horizon_days)


def _check_int(field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field, f"must be a whole number from {low} to {high}, got {value!r}")


def _check_days(field: str, value: object) -> None:
    _check_int(field, value, 1, MAX_WINDOW_DAYS)
