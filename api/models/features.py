"""``POST /v1/features/compute``: a small history sent inline, and the features computed from it.

Only types and sizes are checked here; the values (dates, windows, a purchase's amount, ...) are checked
by ``experiments.features``, so the API, the command line and Python give the same messages.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.models.common import model_of
from experiments.features.computation import RecipientFeatures
from experiments.features.settings import (
    MAX_AMOUNT,
    MAX_ENGAGEMENT_WINDOWS,
    MAX_FOLDS,
    MAX_K,
    MAX_WINDOW_DAYS,
)
from experiments.limits import MAX_EVENT_TYPE_LENGTH, MAX_ID_LENGTH, MAX_TIMESTAMP_TEXT_LENGTH

#: Most events one request may carry; larger histories go through ``sendlab features compute``.
MAX_INLINE_EVENTS = 20_000


class HistoryEventIn(BaseModel):
    """One event of the history."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    recipient_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    timestamp: str = Field(max_length=MAX_TIMESTAMP_TEXT_LENGTH,
                           description="ISO 8601; UTC unless a zone is given.",
                           examples=["2024-05-01T10:00:00Z"])
    type: str = Field(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH, examples=["purchase", "open", "click"])
    amount: float | None = Field(None, ge=0, le=MAX_AMOUNT, description="A purchase's amount (needed then).")


class FeaturesRequest(BaseModel):
    """The history and the computation's settings (as ``sendlab features compute`` takes them)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    as_of: str = Field(max_length=MAX_TIMESTAMP_TEXT_LENGTH,
                       description="The moment the features describe (ISO 8601).",
                       examples=["2024-06-01"])
    events: list[HistoryEventIn] = Field(min_length=1, max_length=MAX_INLINE_EVENTS)
    k: int | None = Field(None, ge=1, le=MAX_K, description="Segments; none: chosen by silhouette.")
    k_min: int = Field(2, ge=2, le=MAX_K)
    k_max: int = Field(8, ge=2, le=MAX_K)
    window_days: int = Field(365, ge=1, le=MAX_WINDOW_DAYS)
    engagement_windows: list[int] = Field([30, 90], min_length=1, max_length=MAX_ENGAGEMENT_WINDOWS)
    purchase_type: str = Field("purchase", min_length=1, max_length=MAX_EVENT_TYPE_LENGTH)
    horizon_days: int | None = Field(None, ge=1, le=MAX_WINDOW_DAYS,
                                     description="Train a conversion model and score p_convert.")
    folds: int = Field(5, ge=2, le=MAX_FOLDS)
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _range(self) -> FeaturesRequest:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must not be below k_min ({self.k_min})")
        return self


class RfmPublic(BaseModel):
    r: int
    f: int
    m: int


RecipientFeaturesPublic = model_of(
    "RecipientFeaturesPublic", RecipientFeatures,
    "One recipient's features (``recency_days`` and ``average_order_value`` null without a purchase).",
    engagement=(dict[str, int], ...), rfm=(RfmPublic, ...),
)


class SegmentPublic(BaseModel):
    segment: int
    size: int
    centre: dict[str, float]


class SegmentationPublic(BaseModel):
    k: int
    chosen_by: str
    silhouette: dict[str, float]
    features: list[str]
    recency_cap_days: int
    fit_rows: int
    seed: int


class CalibrationBinPublic(BaseModel):
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


class ImportancePublic(BaseModel):
    feature: str
    mean: float
    sd: float


class ModelPublic(BaseModel):
    """The conversion model's cross-validated quality and explanation."""

    target: str
    horizon_days: int
    split_at: str
    recipients: int
    training_rows: int
    positives: int
    folds: int
    auc: float
    auc_by_fold: list[float]
    log_loss: float
    base_log_loss: float
    calibration: list[CalibrationBinPublic]
    importance: list[ImportancePublic]
    features: list[str]


class EventCountsPublic(BaseModel):
    read: int
    used: int
    after_as_of: int


class FeaturesPublic(BaseModel):
    """Features per recipient, the segments, and the model (null without ``horizon_days``)."""

    as_of: str
    window_days: int
    engagement_windows: list[int]
    purchase_type: str
    events: EventCountsPublic
    rfm_convention: str
    recipients: list[RecipientFeaturesPublic]
    segments: list[SegmentPublic]
    segmentation: SegmentationPublic
    model: ModelPublic | None


class FeatureVersionPublic(BaseModel):
    """A stored version of the feature table (``POST /v1/features/refresh``)."""

    version: int
    as_of: str
    settings: dict[str, Any]
    recipients: int
    events: EventCountsPublic
    model: dict[str, Any] | None = Field(
        description="The conversion model's AUC, log loss, ... (null without).")
    created_at: str
