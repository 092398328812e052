"""``/v1/features``: audience features computed from a small history sent inline (admin key), and
stored as a new version of the feature table (``/refresh``).

The computation runs inside the request, so the history is bounded (:data:`MAX_INLINE_EVENTS`
events); ``sendlab features compute`` / ``refresh`` and Python take histories of any size, in chunks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends

from api.deps import ServiceDep, require_admin
from api.models.common import MessageBody, ValidationErrorBody
from api.models.features import FeaturesPublic, FeaturesRequest, FeatureVersionPublic
from experiments.features import FeatureSet, FeatureSettings, compute_features, events_from_frame
from experiments.features.events import EVENT_COLUMNS

router = APIRouter(
    prefix="/v1/features",
    tags=["features"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody}, 422: {"model": ValidationErrorBody}},
)


@router.post("/compute", response_model=FeaturesPublic)
def features_compute(body: FeaturesRequest) -> dict[str, Any]:
    """Per recipient: recency, frequency, monetary value, engagement counts, RFM scores, a K-means segment
    and, with ``horizon_days``, ``p_convert`` from a cross-validated conversion model."""
    return _compute(body).to_dict()


@router.post("/refresh", response_model=FeatureVersionPublic, status_code=201)
def features_refresh(body: FeaturesRequest, service: ServiceDep) -> dict[str, Any]:
    """Compute the features as ``/compute`` does and store them as a new version of the feature table,
    read at assignment by specs with ``context_from: features``; answers the version."""
    return service.store_features(_compute(body)).to_dict()


def _compute(body: FeaturesRequest) -> FeatureSet:
    settings = FeatureSettings(
        as_of=body.as_of, window_days=body.window_days, engagement_windows=tuple(body.engagement_windows),
        purchase_type=body.purchase_type, k=body.k, k_range=(body.k_min, body.k_max),
        horizon_days=body.horizon_days, folds=body.folds, seed=body.seed,
    )
    frame = pd.DataFrame([e.model_dump() for e in body.events], columns=list(EVENT_COLUMNS))
    events = events_from_frame(frame, purchase_type=settings.purchase_type)
    return compute_features([events], settings)
