"""``/v1/power``: sample size and duration before launch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from analysis.power import solve_mean_sample_size, solve_rate_sample_size
from api.convert import plan_to_dict
from api.deps import require_admin
from api.models.common import MessageBody, ValidationErrorBody
from api.models.power import MeanPowerRequest, PowerPlanPublic, RatePowerRequest

router = APIRouter(
    prefix="/v1/power",
    tags=["power"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody}, 422: {"model": ValidationErrorBody}},
)


@router.post("/rate", response_model=PowerPlanPublic)
def power_rate(body: RatePowerRequest) -> dict[str, Any]:
    """Recipients per arm and in total to detect ``mde`` on a ``baseline`` rate; days with ``daily``."""
    return plan_to_dict(solve_rate_sample_size(**body.model_dump()))


@router.post("/mean", response_model=PowerPlanPublic)
def power_mean(body: MeanPowerRequest) -> dict[str, Any]:
    """Recipients per arm and in total to detect ``mde`` on a mean with standard deviation ``sd``."""
    return plan_to_dict(solve_mean_sample_size(**body.model_dump()))
