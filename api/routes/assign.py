"""``/v1/experiments/{key}/assign``: one recipient or a whole send."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.convert import decision_to_dict
from api.deps import MetricsDep, ServiceDep, require_send
from api.models.assign import (
    AssignRequest,
    BatchAssignRequest,
    BatchDecisions,
    DecisionPublic,
    PreviewRequest,
    PreviewsPublic,
)
from api.models.common import MessageBody, ValidationErrorBody

router = APIRouter(
    prefix="/v1/experiments",
    tags=["assign"],
    dependencies=[Depends(require_send)],
    responses={
        401: {"model": MessageBody},
        403: {"model": MessageBody},
        404: {"model": MessageBody, "description": "No experiment with that key."},
        409: {"model": MessageBody, "description": "The experiment is archived: no more assignments."},
        422: {"model": ValidationErrorBody},
    },
)


@router.post("/{key}/assign", response_model=DecisionPublic)
def assign(key: str, body: AssignRequest, service: ServiceDep, metrics: MetricsDep) -> dict[str, Any]:
    """Choose the variants for one recipient and log the decision with its propensity."""
    decision = service.assign(key, body.recipient_id, body.context)
    metrics.count_decisions(key, 1)
    return decision_to_dict(decision)


@router.post("/{key}/assign/batch", response_model=BatchDecisions)
def assign_batch(key: str, body: BatchAssignRequest, service: ServiceDep, metrics: MetricsDep) -> Any:
    """Choose for every recipient of a send (at most 100,000), logged in bulk, answered in order."""
    decisions = service.assign_batch(key, [(r.recipient_id, r.context) for r in body.recipients])
    metrics.count_decisions(key, len(decisions))
    # Built directly (not re-validated through the response model): a 100,000-row answer.
    return JSONResponse({"decisions": [decision_to_dict(d) for d in decisions]})


@router.post("/{key}/preview", response_model=PreviewsPublic)
def preview(key: str, body: PreviewRequest, service: ServiceDep) -> dict[str, Any]:
    """What each recipient would get and why, rendered; nothing is logged."""
    previews = service.preview(key, [(r.recipient_id, r.context) for r in body.recipients])
    return {"previews": [{"decision": decision_to_dict(p.decision), "explanation": list(p.explanation)}
                         for p in previews]}
