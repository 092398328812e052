"""The results as the API and the command line show them: JSON (the v1 contract's fields first, the
full analyses after), plain-text rows and notes. No statistics here: the analysis is
:mod:`experiments.result_analysis`, read and run by :mod:`experiments.service.results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query

from analysis.json_ready import to_jsonable as finite_or_none
from analysis.lift import MIN_ALPHA
from analysis.noninferiority import NonInferiorityResult
from api.convert import signed_percent, to_jsonable
from experiments.event_values import uncounted_values_warning
from experiments.models import ArmSummary, CombinationSummary, ExperimentSummary
from experiments.result_analysis import (
    ADAPTIVE_DESIGNS,
    ExperimentResults,
    ExperimentSrm,
    SegmentResults,
    analyze_segmented,
    analyze_summary,
    daily_points,
)

#: The significance level as a query parameter (``/results``, ``/report``, the experiment page): the
#: range :func:`analysis.lift.check_alpha` accepts, so a level the analysis refuses is a 422 at ``alpha``.
AlphaQuery = Annotated[float, Query(
    ge=MIN_ALPHA, lt=1, description=f"Significance level (intervals at 1 - alpha), {MIN_ALPHA:g} to below 1.",
)]

#: Why ``segment`` and ``covariate`` are not taken together.
ONE_BREAKDOWN = "give segment or covariate, not both (CUPED within segments is not supported)"

__all__ = [
    "ADAPTIVE_DESIGNS",
    "AlphaQuery",
    "ONE_BREAKDOWN",
    "ExperimentResults",
    "SegmentResults",
    "analyze_segmented",
    "analyze_summary",
    "daily_points",
]


def srm_to_dict(srm: ExperimentSrm | None) -> dict[str, Any] | None:
    """The experiment's sample-ratio check as the API answers it."""
    if srm is None:
        return None
    by_slot = {slot: {"p_value": s.p_value, "flagged": s.flagged} for slot, s in srm.by_slot.items()}
    return {"p_value": srm.p_value, "flagged": srm.flagged, "applicable": srm.applicable, "by_slot": by_slot}


def _arm_row(arm: ArmSummary) -> dict[str, Any]:
    return {
        "slot": arm.slot,
        "variant": arm.variant,
        "decisions": arm.decisions,
        "events": dict(arm.event_counts),
        "reward_mean": arm.reward_mean,
        "intended_share": arm.intended_share,
    }


def _combination_row(combination: CombinationSummary) -> dict[str, Any]:
    reward = combination.reward
    return {
        "variants": dict(combination.variants),
        "decisions": combination.decisions,
        "event_counts": dict(combination.event_counts),
        "reward_sum": reward.sum,
        "reward_sum_squares": reward.sum_squares,
        "reward_sum_cubes": reward.sum_cubes,
    }


def results_to_dict(results: ExperimentResults, *, detail: bool = True) -> dict[str, Any]:
    """The results as the API answers them (the v1 contract's fields first, the full analyses after)."""
    summary = results.summary
    comparisons = [
        {
            "slot": c.slot, "variant": c.variant, "control": c.control, "metric": c.metric,
            "lift": c.lift, "ci": list(c.ci), "p_value": c.p_value, "p_value_adjusted": c.p_value_adjusted,
            "significant": c.significant, "prob_beat_control": c.prob_beat_control,
            "variance_reduction": c.variance_reduction,
        }
        for a in results.analyses
        for c in a.comparisons
    ]
    out: dict[str, Any] = {
        "key": summary.key,
        "version": summary.version,
        "design": summary.design,
        "arms": [_arm_row(a) for a in summary.arms],
        "comparisons": comparisons,
        "srm": srm_to_dict(results.srm),
        "decisions": {a.slot: {"verdict": a.decision.verdict, "winner": a.decision.winner,
                               "reason": a.decision.reason} for a in results.analyses},
        "holdout": None if summary.holdout is None else _arm_row(summary.holdout),
        "combinations": [_combination_row(c) for c in summary.combinations],
        "skipped": dict(results.skipped),
        "fallbacks": dict(summary.fallbacks),
        "excluded": {"machine": summary.excluded_machine_events, "late": summary.excluded_late_events},
        "machine_events": {"count": summary.machine_events, "included": summary.machine_included},
        "apprentice": {"decisions": summary.apprentice_decisions, "agreement": summary.apprentice_agreement},
        "values_not_counted": dict(summary.uncounted_value_events),
        "warnings": summary_warnings(summary),
    }
    if results.covariate is not None:
        out["covariate"] = covariate_to_dict(results)
    if detail:
        out["analyses"] = [a.to_dict() for a in results.analyses]
        out["factorials"] = [f.to_dict() for f in results.factorials]
    if results.segments is not None:
        out["segments"] = segments_to_dict(results.segments, detail=detail)
    return finite_or_none(to_jsonable(out))  # a lift over a control of rate 0 is NaN: null in JSON


def summary_warnings(summary: ExperimentSummary) -> list[str]:
    """Warnings about the data behind the results: values posted on event types that carry none."""
    valued = summary.value_event_types
    warning = uncounted_values_warning(summary.uncounted_value_events, valued)
    return [] if warning is None else [warning]


def exclusion_note(summary: ExperimentSummary) -> str:
    """One sentence on the outcomes the results leave out (machine-made, outside the reward window)."""
    machine, late = summary.excluded_machine_events, summary.excluded_late_events
    late_part = f"{late:,} outside the reward window (timed before their decision or after the window)"
    if summary.machine_included:
        return (f"outcomes left out: {late_part}; {summary.machine_events:,} machine-made events are "
                "counted (include_machine), except those outside the window")
    hint = " (include them with include_machine)" if machine else ""
    return f"outcomes left out: {machine:,} machine-made{hint}, {late_part}"


def apprentice_note(summary: ExperimentSummary) -> str | None:
    """How often a warm-started policy would have chosen as the incumbent did (None without one)."""
    if not summary.apprentice_decisions or summary.apprentice_agreement is None:
        return None
    return (f"apprentice: the policy would have chosen as the incumbent did on "
            f"{summary.apprentice_agreement:.1%} of {summary.apprentice_decisions:,} decisions")


def covariate_to_dict(results: ExperimentResults) -> dict[str, Any]:
    """What CUPED did: the covariate, its coverage per variant, each slot's theta, in words."""
    covariate = results.covariate
    assert covariate is not None
    first_slot = next(iter(results.summary.slots))
    counted = [a for a in covariate.arms if a.slot == first_slot]  # every slot covers every decision
    decisions = sum(a.decisions for a in counted)
    observed = sum(a.observed for a in counted)
    missing = decisions - observed
    note = (
        f"reward comparisons are CUPED-adjusted by {covariate.attribute!r} (theta pooled over each slot's "
        "arms); variance_reduction is the share of the variance of each difference removed"
    )
    if observed == 0:
        note = f"no decision has a number for {covariate.attribute!r}: nothing is adjusted"
    elif missing:
        note += (f"; {missing:,} of {decisions:,} decisions have no number for {covariate.attribute!r} and "
                 "are left unadjusted (their covariate is set to the mean of the others)")
    return {
        "attribute": covariate.attribute,
        "decisions": decisions,
        "observed": observed,
        "missing": missing,
        "arms": [{"slot": a.slot, "variant": a.variant, "decisions": a.decisions, "observed": a.observed,
                  "missing": a.missing} for a in covariate.arms],
        "theta": {a.slot: a.cuped_theta for a in results.analyses},
        "note": note,
    }


def segments_to_dict(results: SegmentResults, *, detail: bool = True) -> dict[str, Any]:
    """The results by segment as the API answers them: per slot the cross-segment table (adjusted
    p-values over every segment's comparisons) and the multiplicity warning; with ``detail``, each
    segment's full analysis."""
    seg = results.segmented
    by_slot = []
    for analysis in results.by_slot:
        data = analysis.to_dict()
        entry = {"slot": analysis.slot, "correction": analysis.correction, "warning": analysis.warning,
                 "rows": data["rows"]}
        if detail:
            entry["analyses"] = data["segments"]
        by_slot.append(entry)
    return to_jsonable({
        "attribute": seg.attribute,
        "decisions": seg.decisions,
        "missing": seg.missing,
        "values": {label: s.learnable_decisions for label, s in seg.segments.items()},
        "by_slot": by_slot,
        "skipped": dict(results.skipped),
    })


def guardrail_line(g: NonInferiorityResult) -> str:
    """One guardrail as a line of text: metric, variant against control, verdict, rates, margin and p."""
    verdict = "non-inferior" if g.non_inferior else "NOT shown non-inferior"
    return (f"guardrail {g.metric}: {g.variant} vs {g.control} {verdict} ({g.variant_mean:.3%} vs "
            f"{g.control_mean:.3%}, margin {g.margin:.0%} of {g.control}'s rate, p = {g.p_value:.3g})")


def comparison_rows(results: ExperimentResults, metrics: Sequence[str] | None = None) -> list[list[Any]]:
    """Rows for a plain-text table: slot, variant, metric, lift, CI, adjusted p, P(beat control)."""
    rows = []
    for a in results.analyses:
        for c in a.comparisons:
            if metrics is None or c.metric in metrics:
                rows.append([c.slot, f"{c.variant} vs {c.control}", c.metric, signed_percent(c.lift),
                             f"[{signed_percent(c.ci[0])}, {signed_percent(c.ci[1])}]", c.p_value_adjusted,
                             c.prob_beat_control])
    return rows
