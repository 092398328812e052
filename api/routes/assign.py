"""``/v1/experiments/{key}/assign``: one recipient or a whole send."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.batch import batch_body_schema, decisions_json, parse_send
from api.convert import decision_json
from api.deps import MetricsDep, ServiceDep, require_send
from api.models.assign import AssignRequest, BatchDecisions, DecisionPublic
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
def assign(key: str, body: AssignRequest, service: ServiceDep, metrics: MetricsDep) -> Response:
    """Choose the variants for one recipient and log the decision with its propensity.

    The answer is the ``DecisionPublic`` model's JSON, written here (:func:`api.convert.decision_json`)
    rather than by FastAPI in another hop to its thread pool.
    """
    decision = service.assign(
        key, body.recipient_id, body.context, send_id=body.send_id, send_at=body.send_at,
        send_date=body.send_date,
    )
    metrics.count_decisions(key, 1)
    return Response(decision_json(decision), media_type="application/json")


@router.post(
    "/{key}/assign/batch",
    response_model=BatchDecisions,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": batch_body_schema()}}}},
)
async def assign_batch(key: str, request: Request, service: ServiceDep, metrics: MetricsDep) -> Response:
    """Choose for every recipient of a send (at most 100,000), logged in bulk, answered in order.

    With a ``send_id``, a recipient already logged for that send gets its original decision back and
    nothing is logged again: a retried or re-run send is safe.

    The body is ``BatchAssignRequest``; it is validated from its bytes by :mod:`api.batch` (not through
    a model per recipient) and the answer is written there too (not re-validated: a 100,000-row answer).
    """
    raw = await request.body()

    def work() -> bytes:
        send = parse_send(raw)
        decisions = service.assign_batch(
            key, send.recipients, send_id=send.send_id, send_at=send.send_at, send_date=send.send_date
        )
        metrics.count_decisions(key, len(decisions))
        return decisions_json(decisions)

    return Response(await run_in_threadpool(work), media_type="application/json")

