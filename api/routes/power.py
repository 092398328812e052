"""``/v1/power``: sample size, minimum detectable effect, power, curves and campaign plans before launch.

Every route answers what a function of ``analysis.power`` returns; the simulations (sequential mSPRT,
bandit) run inside the request, so their size is bounded here (the command line and Python are not).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from analysis.power import PowerInputError
from analysis.power.bandit import BanditPlan, plan_bandit
from analysis.power.curves import PowerCurve, power_curve
from analysis.power.means import MeanAnswer, solve_mean
from analysis.power.rates import RateAnswer, solve_rate
from analysis.power.sequential import SequentialInflation, sequential_inflation
from analysis.power.test_then_send import TestThenSendPlan, plan_test_then_send
from analysis.stats import SampleStats
from api.convert import MEAN_MDE_OMITS, WITHOUT_SIZES, checked, plan_to_dict
from api.deps import require_admin
from api.errors import reported_as
from api.models.common import MessageBody, ValidationErrorBody
from api.models.power import (
    BanditPlanRequest,
    MeanCurveRequest,
    MeanMdeRequest,
    MeanPowerForSizeRequest,
    MeanPowerRequest,
    PowerPlanPublic,
    RateCurveRequest,
    RateMdeRequest,
    RatePowerForSizeRequest,
    RatePowerRequest,
    SequentialRequest,
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


def solve_mean_body(body: ValueSpread, **question: Any) -> MeanAnswer:
    """:func:`solve_mean` on a request: its spread (``sd``, ``values`` or ``summary``), its other fields
    and the unknown ``question`` names (``power=None`` to solve for the power)."""
    fields = body.model_dump(exclude=SPREAD_FIELDS)
    with reported_as(sample=sample_name(body)):
        return solve_mean(**spread_arguments(body), **fields, **question)


@calls.post("/rate", response_model=PowerPlanPublic)
def power_rate(body: RatePowerRequest) -> dict[str, Any]:
    """Recipients per arm and in total to detect ``mde`` on a ``baseline`` rate; days with ``daily``."""
    return plan_to_dict(solve_rate(**body.model_dump()))


@calls.post("/rate/mde", response_model=RateAnswer, response_model_exclude=WITHOUT_SIZES)
def power_rate_mde(body: RateMdeRequest) -> RateAnswer:
    """The smallest change of a ``baseline`` rate that ``n_per_arm`` recipients per arm detect."""
    return checked(solve_rate(**body.model_dump()))


@calls.post("/rate/power", response_model=RateAnswer, response_model_exclude=WITHOUT_SIZES)
def power_rate_power(body: RatePowerForSizeRequest) -> RateAnswer:
    """The power of a rate test with ``n_per_arm`` recipients in the control arm to detect ``mde``."""
    return checked(solve_rate(**body.model_dump(), power=None))


@calls.post("/rate/curve", response_model=PowerCurve)
def power_rate_curve(body: RateCurveRequest) -> PowerCurve:
    """Power against the control-arm size (``mde`` fixed) or against the effect (``n_per_arm`` fixed)."""
    fields = body.model_dump(exclude={"over", "x", "power"})
    with reported_as(values="x", target_power="power"):
        curve = power_curve("rate", over=curve_axis(body.over, body.mde), values=body.x,
                            target_power=body.power, **fields)
    return checked(curve)


@calls.post("/mean", response_model=PowerPlanPublic)
def power_mean(body: MeanPowerRequest) -> dict[str, Any]:
    """Recipients per arm and in total to detect ``mde`` on a mean; the sd given, or from past values."""
    return plan_to_dict(solve_mean_body(body))


@calls.post("/mean/mde", response_model=MeanAnswer, response_model_exclude=MEAN_MDE_OMITS)
def power_mean_mde(body: MeanMdeRequest) -> MeanAnswer:
    """The smallest change of a mean that ``n_per_arm`` recipients per arm detect with ``power``."""
    return checked(solve_mean_body(body))


@calls.post("/mean/power", response_model=MeanAnswer, response_model_exclude=WITHOUT_SIZES)
def power_mean_power(body: MeanPowerForSizeRequest) -> MeanAnswer:
    """The power of a test of a mean with ``n_per_arm`` recipients in the control arm to detect ``mde``."""
    return checked(solve_mean_body(body, power=None))


@calls.post("/mean/curve", response_model=PowerCurve)
def power_mean_curve(body: MeanCurveRequest) -> PowerCurve:
    """Power of a test of a mean against the control-arm size or against the effect."""
    spread = spread_arguments(body)
    fields = body.model_dump(exclude=SPREAD_FIELDS | {"over", "x", "power"})
    with reported_as(values="x", target_power="power", sample=sample_name(body)):
        curve = power_curve("mean", over=curve_axis(body.over, body.mde), values=body.x,
                            target_power=body.power, baseline=spread.pop("baseline_mean"), **spread, **fields)
    return checked(curve)


@calls.post("/test-then-send", response_model=TestThenSendPlan)
def power_test_then_send(body: TestThenSendRequest) -> TestThenSendPlan:
    """The share of a known list to test so that expected total conversions are highest."""
    return checked(plan_test_then_send(**body.model_dump()))


@calls.post("/sequential", response_model=SequentialInflation)
def power_sequential(body: SequentialRequest) -> SequentialInflation:
    """How much larger the sample is when the test is analysed sequentially, at the same power."""
    if body.design == "msprt":
        _check_work("replications", body.replications * (body.looks or 100), MSPRT_WORK_LIMIT,
                    "replications x looks")
    return checked(sequential_inflation(**body.model_dump()))


@calls.post("/bandit", response_model=BanditPlan)
def power_bandit(body: BanditPlanRequest) -> BanditPlan:
    """Simulated share of traffic a Thompson sampling bandit sends to losing variants vs a fixed test."""
    work = body.replications * (body.horizon + body.batches * body.n_draws * len(body.rates))
    _check_work("replications", work, BANDIT_WORK_LIMIT,
                "replications x (horizon + batches x n_draws x arms)")
    return checked(plan_bandit(**body.model_dump()))


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
