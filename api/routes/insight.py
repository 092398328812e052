"""``/v1/experiments/{key}/insight``, ``/preview`` and ``/preview/report`` (admin key): which recipient
attributes the policy relies on, what sample recipients would get and why, and a sample's coverage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import ServiceDep, require_admin
from api.models.assign import PreviewRequest, PreviewsPublic
from api.models.common import MessageBody, ValidationErrorBody
from api.previews import importance_to_dict, preview_to_dict, report_to_dict

router = APIRouter(
    prefix="/v1/experiments",
    tags=["insight"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"model": MessageBody},
        403: {"model": MessageBody},
        404: {"model": MessageBody, "description": "No experiment with that key."},
        422: {"model": ValidationErrorBody},
    },
)


@router.get(
    "/{key}/insight", responses={409: {"model": MessageBody, "description": "Not a contextual design."}}
)
def insight(
    key: str,
    service: ServiceDep,
    sample: Annotated[int, Query(ge=1, le=100_000, description="Recent policy decisions to look at.")] = 1000,
) -> dict[str, Any]:
    """Which recipient attributes the contextual policy relies on: for each attribute of the design's
    context, how far the policy's choices move when recipients swap their values of it (0 to 1)."""
    return importance_to_dict(service.insight(key, sample=sample))


@router.post(
    "/{key}/preview",
    response_model=PreviewsPublic,
    responses={409: {"model": MessageBody, "description": "The experiment is archived."}},
)
def preview(key: str, body: PreviewRequest, service: ServiceDep) -> dict[str, Any]:
    """What each recipient would get and why, rendered: the draw a decision would make now, the rules
    that fired (or why they were not evaluated), the variants offered per slot with their rendered
    content and probability (and why the others are not), and the combinations' probabilities. Nothing
    is logged, and the draw does not use the generator assignments draw with."""
    previews = service.preview(key, [(r.recipient_id, r.context) for r in body.recipients])
    return {"previews": [preview_to_dict(p) for p in previews]}


@router.post(
    "/{key}/preview/report",
    responses={409: {"model": MessageBody, "description": "The experiment is archived."}},
)
def preview_report(key: str, body: PreviewRequest, service: ServiceDep) -> dict[str, Any]:
    """Per sample recipient: the rules that fired, the variants offered (and why not the others), their
    rendered content and probabilities; then the rule combinations no sample recipient reached and the
    recipients that only ever get the fallback. Nothing is logged."""
    report = service.preview_report(key, [(r.recipient_id, r.context) for r in body.recipients])
    return report_to_dict(report)
