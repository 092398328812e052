"""``/v1/decisions/{decision_id}``: a logged decision and the reasons behind it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.convert import to_jsonable
from api.deps import ServiceDep, require_admin
from api.models.common import MessageBody

router = APIRouter(
    prefix="/v1/decisions",
    tags=["decisions"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody},
               404: {"model": MessageBody, "description": "No decision with that id."}},
)


@router.get("/{decision_id}")
def explain_decision(decision_id: str, service: ServiceDep) -> dict[str, Any]:
    """The decision as logged, with an explanation re-evaluated on its stored context."""
    return to_jsonable(service.explain(decision_id))
