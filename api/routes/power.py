"""``/v1/power``: sample size, minimum detectable effect, power, curves and campaign plans before launch.

Every route answers what a function of ``analysis.power`` returns; the simulations (sequential mSPRT,
bandit) run inside the request, so their size is bounded here (the command line and Python are not).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends

from analysis.power import (
    PowerInputError,
    evaluate_mean_power,
    evaluate_rate_power,
    plan_bandit,
    plan_test_then_send,
    power_curve,
    sequential_inflation,
    solve_mean_mde,
    solve_mean_sample_size,
    solve_rate_mde,
    solve_rate_sample_size,
)
from analysis.stats import SampleStats
from api.convert import plan_to_dict, power_to_dict
from api.deps import require_admin
from api.errors import reported_as
from api.models.common import MessageBody, ValidationErrorBody
from api.models.power import (
    BanditPlanPublic,
    BanditPlanRequest,
    MeanCurveRequest,
    MeanMdePublic,
    MeanMdeRequest,
    MeanPowerForSizeRequest,
    MeanPowerPublic,
    MeanPowerRequest,
    PowerCurvePublic,
    PowerPlanPublic,
    RateCurveRequest,
    RateMdePublic,
    RateMdeRequest,
    RatePowerForSizeRequest,
    RatePowerPublic,
    RatePowerRequest,
    SequentialPublic,
    SequentialRequest,
    TestThenSendPublic,
    TestThenSendRequest,
    ValueSpread,
)
from api.ui.access import require_call_access

#: The calculators, without their access rule: served under ``/v1/power`` with the admin key
#: (:data:`router`) and under ``/ui/power/api`` with the pages' session and CSRF token
#: (:data:`ui_router`), so the power page needs no key in the browser.
calls = APIRouter()

#: Largest simulation a request may ask for (about three seconds of one core).
BANDIT_WORK_LIMIT = 50_000_000
MSPRT_WORK_LIMIT = 2_000_000
SPREAD_FIELDS = {"sd", "values", "summary", "baseline_mean", "method"}


def spread_arguments(body: ValueSpread) -> dict[str, Any]:
    """The sd of a value as the analysis functions take it: ``sd``, or ``sample`` (values or summary)."""
    sample: list[float] | SampleStats | None = body.values
    if body.summary is not None:
        sample = SampleStats(body.summary.n, body.summary.sum, body.summary.sum_squares)
    return {"sd": body.sd, "sample": sample, "baseline_mean": body.baseline_mean, "method": body.method}


def sample_name(body: ValueSpread) -> str:
    """The request field that holds the sample of past values."""
    return "summary" if body.summary is not None else "values"


def curve_axis(over: str | None, mde: float | None) -> str:
    """The x axis of a curve: as asked, else n when an effect is fixed and the effect otherwise."""
    return over or ("n" if mde is not None else "effect")


@calls.post("/rate", response_model=PowerPlanPublic)
def power_rate(body: RatePowerRequest) -> dict[str, Any]:
    """Recipients per arm and in total to detect ``mde`` on a ``baseline`` rate; days with ``daily``."""
    return plan_to_dict(solve_rate_sample_size(**body.model_dump()))


@calls.post("/rate/mde", response_model=RateMdePublic)
def power_rate_mde(body: RateMdeRequest) -> dict[str, Any]:
    """The smallest change of a ``baseline`` rate that ``n_per_arm`` recipients per arm detect."""
    fields = body.model_dump()
    return power_to_dict(solve_rate_mde(fields.pop("baseline"), fields.pop("n_per_arm"), **fields))


@calls.post("/rate/power", response_model=RatePowerPublic)
def power_rate_power(body: RatePowerForSizeRequest) -> dict[str, Any]:
    """The power of a rate test with ``n_per_arm`` recipients in the control arm to detect ``mde``."""
    fields = body.model_dump()
    return power_to_dict(evaluate_rate_power(fields.pop("baseline"), fields.pop("mde"),
                                             fields.pop("n_per_arm"), **fields))


@calls.post("/rate/curve", response_model=PowerCurvePublic)
def power_rate_curve(body: RateCurveRequest) -> dict[str, Any]:
    """Power against the control-arm size (``mde`` fixed) or against the effect (``n_per_arm`` fixed)."""
    fields = body.model_dump(exclude={"over", "x", "power"})
    with reported_as(values="x", target_power="power"):
        curve = power_curve("rate", over=curve_axis(body.over, body.mde), values=body.x,
                            target_power=body.power, **fields)
    return power_to_dict(curve)


@calls.post("/mean", response_model=PowerPlanPublic)
def power_mean(body: MeanPowerRequest) -> dict[str, Any]:
    """Recipients per arm and in total to detect ``mde`` on a mean; the sd given, or from past values."""
    spread = spread_arguments(body)
    fields = body.model_dump(exclude=SPREAD_FIELDS)
    with reported_as(sample=sample_name(body)):
        plan = solve_mean_sample_size(spread.pop("sd"), fields.pop("mde"), **spread, **fields)
    return plan_to_dict(plan)


@calls.post("/mean/mde", response_model=MeanMdePublic)
def power_mean_mde(body: MeanMdeRequest) -> dict[str, Any]:
    """The smallest change of a mean that ``n_per_arm`` recipients per arm detect with ``power``."""
    spread = spread_arguments(body)
    fields = body.model_dump(exclude=SPREAD_FIELDS)
    with reported_as(sample=sample_name(body)):
        found = solve_mean_mde(spread.pop("sd"), fields.pop("n_per_arm"), **spread, **fields)
    return power_to_dict(found)


@calls.post("/mean/power", response_model=MeanPowerPublic)
def power_mean_power(body: MeanPowerForSizeRequest) -> dict[str, Any]:
    """The power of a test of a mean with ``n_per_arm`` recipients in the control arm to detect ``mde``."""
    spread = spread_arguments(body)
    fields = body.model_dump(exclude=SPREAD_FIELDS)
    with reported_as(sample=sample_name(body)):
        result = evaluate_mean_power(spread.pop("sd"), fields.pop("mde"), fields.pop("n_per_arm"), **spread,
                                     **fields)
    return power_to_dict(result)


@calls.post("/mean/curve", response_model=PowerCurvePublic)
def power_mean_curve(body: MeanCurveRequest) -> dict[str, Any]:
    """Power of a test of a mean against the control-arm size or against the effect."""
    spread = spread_arguments(body)
    fields = body.model_dump(exclude=SPREAD_FIELDS | {"over", "x", "power"})
    with reported_as(values="x", target_power="power", sample=sample_name(body)):
        curve = power_curve("mean", over=curve_axis(body.over, body.mde), values=body.x,
                            target_power=body.power, baseline=spread.pop("baseline_mean"), **spread, **fields)
    return power_to_dict(curve)


@calls.post("/test-then-send", response_model=TestThenSendPublic)
def power_test_then_send(body: TestThenSendRequest) -> dict[str, Any]:
    """The share of a known list to test so that expected total conversions are highest."""
    fields = body.model_dump()
    return power_to_dict(plan_test_then_send(fields.pop("list_size"), **fields))


@calls.post("/sequential", response_model=SequentialPublic)
def power_sequential(body: SequentialRequest) -> dict[str, Any]:
    """How much larger the sample is when the test is analysed sequentially, at the same power."""
    if body.design == "msprt":
        _check_work("replications", body.replications * (body.looks or 100), MSPRT_WORK_LIMIT,
                    "replications x looks")
    fields = body.model_dump(exclude={"seed"})
    result = sequential_inflation(fields.pop("design"), rng=np.random.default_rng(body.seed), **fields)
    return power_to_dict(result, seed=body.seed)


@calls.post("/bandit", response_model=BanditPlanPublic)
def power_bandit(body: BanditPlanRequest) -> dict[str, Any]:
    """Simulated share of traffic a Thompson sampling bandit sends to losing variants vs a fixed test."""
    work = body.replications * (body.horizon + body.batches * body.n_draws * len(body.rates))
    _check_work("replications", work, BANDIT_WORK_LIMIT,
                "replications x (horizon + batches x n_draws x arms)")
    fields = body.model_dump(exclude={"seed"})
    plan = plan_bandit(fields.pop("rates"), fields.pop("horizon"), rng=np.random.default_rng(body.seed),
                       **fields)
    return power_to_dict(plan, seed=body.seed)


def _check_work(field: str, work: int, limit: int, formula: str) -> None:
    if work > limit:
        raise PowerInputError(
            f"{formula} is {work:,}, above the {limit:,} one request may simulate; ask for fewer "
            "or run it with the sendlab command line or in Python.", field=field,
        )


router = APIRouter(
    prefix="/v1/power",
    tags=["power"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody}, 422: {"model": ValidationErrorBody}},
)
router.include_router(calls)

ui_router = APIRouter(prefix="/ui/power/api", dependencies=[Depends(require_call_access)],
                      include_in_schema=False)
ui_router.include_router(calls)
