"""``/v1/experiments/{key}/results``: per-arm statistics and the analysis of each slot."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from api.deps import ServiceDep, require_admin
from api.models.common import MessageBody, ValidationErrorBody
from api.models.results import ResultsPublic
from api.report import results_html
from api.results import ONE_BREAKDOWN, AlphaQuery, results_to_dict
from experiments.adaptive_block import adaptive_json
from experiments.drift_block import drift_json
from experiments.errors import InvalidInput
from experiments.result_analysis import ExperimentResults
from experiments.service import ExperimentService

router = APIRouter(
    prefix="/v1/experiments",
    tags=["results"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody},
               404: {"model": MessageBody, "description": "No experiment with that key."},
               422: {"model": ValidationErrorBody}},
)


IncludeMachine = Annotated[
    bool,
    Query(description="Count machine-made outcomes (Apple Mail Privacy Protection opens, link scanners' "
                      "clicks) in the results; they are left out by default."),
]


SegmentQuery = Annotated[str | None, Query(
    description="Also break the results down by this context attribute stored with the decisions "
    "(a category: country, device, ...), corrected across all segments.")]
CovariateQuery = Annotated[str | None, Query(
    description="CUPED-adjust the reward by this numeric context attribute recorded at send time "
    "(e.g. clicks_30d); each reward comparison reports its variance reduction.")]


def _analysed(
    service: ExperimentService, key: str, segment: str | None, covariate: str | None, **options: Any
) -> ExperimentResults:
    """The results of ``key`` by ``segment`` or CUPED-adjusted by ``covariate`` (at most one of the
    two), read in one transaction; a bad attribute is a 422 at its query parameter."""
    if segment is not None and covariate is not None:
        raise HTTPException(422, [{"loc": ["query", "covariate"], "msg": ONE_BREAKDOWN}])
    try:
        return service.results(key, segment=segment, covariate=covariate, **options)
    except InvalidInput as exc:  # the attribute is a query parameter here, not a body field
        raise HTTPException(422, [{"loc": ["query", exc.field], "msg": exc.reason}]) from None


@router.get("/{key}/results", response_model=ResultsPublic)
def results(
    key: str,
    service: ServiceDep,
    alpha: AlphaQuery = 0.05,
    correction: Annotated[
        Literal["holm", "bh", "none"], Query(description="Multiplicity correction.")
    ] = "holm",
    detail: Annotated[bool, Query(description="Include the full analysis of each slot.")] = True,
    include_machine: IncludeMachine = False,
    segment: SegmentQuery = None,
    covariate: CovariateQuery = None,
) -> dict[str, Any]:
    """Arms (decisions, events, mean reward), comparisons against control, SRM, and each slot's decision.

    ``excluded`` counts the outcomes left out: machine-made ones (unless ``include_machine``) and those
    outside the reward window (``late``: timed before their decision or after the window). ``segment``
    adds ``segments`` (the results per value of that attribute); ``covariate`` adjusts the reward
    comparisons by CUPED and adds ``covariate``. One of the two at a time.
    """
    analysed = _analysed(service, key, segment, covariate, alpha=alpha, correction=correction,
                         include_machine=include_machine, blocks=True)
    out = results_to_dict(analysed, detail=detail)
    out.update(adaptive_json(analysed.adaptive, analysed.summary, out))
    out["drift"] = drift_json(analysed.drift)  # type: ignore[arg-type]  # read with blocks=True
    return out


def _json_error(model: str, description: str) -> dict[str, Any]:
    """An error answered as JSON by a route whose success is HTML.

    FastAPI would document a ``model`` response in the route's own media type (``text/html``); the
    error handlers answer JSON, so the content is spelled out (the schemas are components already).
    """
    ref = {"$ref": f"#/components/schemas/{model}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


HTML_ROUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _json_error("MessageBody", "No key, or a key that is not known."),
    403: _json_error("MessageBody", "The key may not do this."),
    404: _json_error("MessageBody", "No experiment with that key."),
    409: _json_error("MessageBody", "No slot can be analysed yet."),
    422: _json_error("ValidationErrorBody", "A query parameter is out of range."),
}


@router.get("/{key}/report", response_class=HTMLResponse, responses=HTML_ROUTE_ERRORS)
def report(
    key: str,
    service: ServiceDep,
    alpha: AlphaQuery = 0.05,
    include_machine: IncludeMachine = False,
    segment: SegmentQuery = None,
    covariate: CovariateQuery = None,
) -> HTMLResponse:
    """The results as one self-contained HTML page (charts work offline), with the same ``segment`` and
    ``covariate`` options as ``/results``."""
    analysed = _analysed(service, key, segment, covariate, alpha=alpha, include_machine=include_machine,
                         blocks=True)
    return HTMLResponse(results_html(analysed, title=f"SendLab results: {key}", adaptive=analysed.adaptive,
                                     segments=analysed.segments))
