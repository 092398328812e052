"""The experiment page's optional views: the results by segment, or CUPED-adjusted by a covariate.

They are the ``segment`` and ``covariate`` options of ``GET /v1/experiments/{key}/results`` (one at a
time), read from the store when asked (not from the pages' cache: each attribute is its own query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.results import Comparison
from api.report import segments_html
from api.results import ONE_BREAKDOWN, covariate_to_dict
from experiments.compiled import compile_experiment
from experiments.errors import InvalidInput
from experiments.models import ExperimentInfo


@dataclass(frozen=True)
class Breakdown:
    """What the page shows of a segment or covariate request, and the attributes it may ask for.

    ``error`` is ``"<field>: <reason>"`` when the request cannot be answered (then nothing else is set).
    """

    attributes: list[str]
    segment: str | None = None
    covariate: str | None = None
    error: str | None = None
    segments: str | None = None  # the per-segment tables (HTML, every value escaped)
    cuped_note: str | None = None
    cuped: list[Comparison] = field(default_factory=list)


def stored_attributes(info: ExperimentInfo) -> list[str]:
    """The context attributes stored with the decisions of ``info``'s version (those results can group or
    adjust by)."""
    return sorted(compile_experiment(info.spec, info.version).stored_attributes)


def breakdown(
    service: Any, info: ExperimentInfo, *, segment: str | None, covariate: str | None, alpha: float,
    correction: str,
) -> Breakdown:
    """The results of ``info`` by ``segment`` or adjusted by ``covariate`` (neither: only the choices)."""
    attributes = stored_attributes(info)
    if segment is None and covariate is None:
        return Breakdown(attributes)
    if segment is not None and covariate is not None:
        return Breakdown(attributes, segment, covariate, error=f"covariate: {ONE_BREAKDOWN}")
    try:
        results = service.results(info.key, segment=segment, covariate=covariate, alpha=alpha,
                                  correction=correction)
    except InvalidInput as exc:
        return Breakdown(attributes, segment, covariate, error=str(exc))
    if results.segments is not None:
        return Breakdown(attributes, segment, covariate, segments=segments_html(results.segments))
    adjusted = [c for a in results.analyses for c in a.comparisons if c.variance_reduction is not None]
    return Breakdown(attributes, segment, covariate, cuped_note=covariate_to_dict(results)["note"],
                     cuped=adjusted)
