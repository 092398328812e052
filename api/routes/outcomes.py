"""``/v1/outcomes``: one event or a bulk list, idempotent by ``event_id``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.deps import MetricsDep, ServiceDep, require_send
from api.models.common import MessageBody, ValidationErrorBody
from api.models.outcomes import OutcomeCountsPublic, OutcomesRequest
from experiments.models import OutcomeEvent

router = APIRouter(
    prefix="/v1",
    tags=["outcomes"],
    dependencies=[Depends(require_send)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody}, 422: {"model": ValidationErrorBody}},
)


@router.post("/outcomes", response_model=OutcomeCountsPublic)
def post_outcomes(
    body: OutcomesRequest, service: ServiceDep, metrics: MetricsDep
) -> dict[str, Any]:
    """Record outcomes, ``{"events": [...]}`` or one bare event; committed before the answer.

    A repeated ``event_id`` counts as a duplicate, an event for an unknown decision as an orphan.
    """
    events = body.events
    counts = service.record_outcomes(
        [
            OutcomeEvent(
                event_id=e.event_id,
                decision_id=e.decision_id,
                type=e.type,
                value=e.value,
                timestamp=e.timestamp,
                machine=e.machine,
                user_agent=e.user_agent,
            )
            for e in events
        ]
    )
    metrics.count_outcomes(counts.accepted, counts.duplicates, counts.orphans, counts.erased)
    return {"accepted": counts.accepted, "duplicates": counts.duplicates, "orphans": counts.orphans,
            "erased": counts.erased}
