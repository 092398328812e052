"""The one conversion from an ``ExperimentSummary`` (experiments/) to the analysis inputs (analysis/).

Used by ``GET /v1/experiments/{key}/results``, ``sendlab analyze`` and ``sendlab demo``, so all three
show the same numbers. No statistics here: it regroups the summary per slot and calls
:func:`analysis.results.analyze_slot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from analysis.cuped import fill_missing_covariate
from analysis.errors import AnalysisInputError
from analysis.factorial import FactorialAnalysis, FactorialCell, analyze_factorial
from analysis.json_ready import to_jsonable as finite_or_none
from analysis.lift import check_alpha
from analysis.multiplicity import Correction
from analysis.results import ArmData, SlotAnalysis, analyze_slot
from analysis.segments import SegmentAnalysis, combine_segments
from analysis.stats import RegressionStats, SampleStats
from analysis.timeseries import DailyPoint
from api.convert import signed_percent, to_jsonable
from experiments.event_values import uncounted_values_warning
from experiments.models import ArmSummary, CovariateSummary, ExperimentSummary, SegmentedSummary

MIN_UNITS = 2  # analyze_slot needs at least two units per arm
ADAPTIVE_DESIGNS = frozenset({"bandit", "contextual"})


@dataclass(frozen=True)
class SlotInputs:
    """The analysis inputs of one slot, or why it cannot be analysed yet."""

    slot: str
    control: str
    arms: list[ArmData]
    metrics: list[str]
    guardrails: list[str]
    skipped: str | None = None


@dataclass(frozen=True)
class ExperimentResults:
    """A summary, the analysis of each slot that has enough data, and for a multivariate design the
    factorial model of its combinations (main effects and interactions) per rate metric."""

    summary: ExperimentSummary
    analyses: list[SlotAnalysis]
    skipped: dict[str, str] = field(default_factory=dict)
    factorials: list[FactorialAnalysis] = field(default_factory=list)
    covariate: CovariateSummary | None = None


@dataclass(frozen=True)
class SegmentResults:
    """The results of each slot broken down by a context attribute.

    ``by_slot`` holds one :class:`analysis.segments.SegmentAnalysis` per slot that could be analysed in
    at least one segment (one correction across all its segments' comparisons); ``skipped`` says, per
    ``"slot / segment"`` (or per slot), why it was left out.
    """

    segmented: SegmentedSummary
    by_slot: list[SegmentAnalysis]
    skipped: dict[str, str] = field(default_factory=dict)


def arm_data(arm: ArmSummary, *, adaptive: bool = False) -> ArmData:
    """One arm's summary as :class:`analysis.results.ArmData` (the value metric is the reward).

    A bandit's allocation moves as it learns, so it has no fixed split for the sample-ratio check to
    test: for ``adaptive`` designs the realised split stands in for the intended one, and
    ``analyze_slot(..., adaptive=True)`` reports the check as not applicable instead of testing it.
    """
    return ArmData(
        variant=arm.variant,
        n=arm.decisions,
        event_counts=dict(arm.event_counts),
        value=SampleStats(arm.decisions, arm.reward_sum, arm.reward_sum_squares, arm.reward_sum_cubes),
        intended_share=float(max(arm.decisions, 1)) if adaptive else arm.intended_share,
    )


def daily_points(summary: ExperimentSummary) -> list[DailyPoint]:
    """The summary's per-day counts as :class:`analysis.timeseries.DailyPoint` (for the report's charts)."""
    return [DailyPoint(d.day, d.slot, d.variant, d.decisions, dict(d.event_counts)) for d in summary.daily]


def _srm_answer(
    summary: ExperimentSummary, worst: dict[str, Any] | None, by_slot: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The worst slot's sample-ratio check; for adaptive designs, a check that does not apply."""
    if summary.design in ADAPTIVE_DESIGNS:
        return {"p_value": None, "flagged": False, "applicable": False, "by_slot": {}}
    return None if worst is None else {**worst, "applicable": True, "by_slot": by_slot}


def slot_inputs(summary: ExperimentSummary) -> list[SlotInputs]:
    """Per slot: its arms in the spec's order, the rate metrics (rewarded events seen) and guardrails."""
    out = []
    for slot, variant_ids in summary.slots.items():
        by_variant = {a.variant: a for a in summary.arms if a.slot == slot}
        adaptive = summary.design in ADAPTIVE_DESIGNS
        arms = [arm_data(by_variant[v], adaptive=adaptive) for v in variant_ids if v in by_variant]
        seen = {event for a in arms for event in a.event_counts}
        guardrails = [g for g in summary.guardrails if g in seen]
        metrics = [e for e in summary.reward_events if e in seen and e not in guardrails]
        skipped = None
        if len(variant_ids) < 2:
            skipped = "only one variant: nothing to compare"
        elif len(arms) < len(variant_ids) or any(a.n < MIN_UNITS for a in arms):
            skipped = f"not enough data yet: every variant needs at least {MIN_UNITS} decisions"
        elif any(not a.intended_share > 0 for a in arms):
            skipped = "a variant has no intended traffic share"
        out.append(SlotInputs(slot, summary.control[slot], arms, metrics, guardrails, skipped))
    return out


def _check_options(alpha: float, correction: str) -> None:
    check_alpha(alpha)
    if correction not in get_args(Correction):
        choices = list(get_args(Correction))
        raise AnalysisInputError(f"correction: must be one of {choices}, got {correction!r}")


def covariate_inputs(inputs: SlotInputs, covariate: CovariateSummary) -> dict[str, RegressionStats]:
    """The CUPED statistics of a slot's arms (variant -> reward ``y`` with covariate ``x``), decisions
    without a numeric covariate filled in by :func:`analysis.cuped.fill_missing_covariate`."""
    by_variant = {a.variant: a for a in covariate.arms if a.slot == inputs.slot}
    observed = []
    for arm in inputs.arms:
        c = by_variant[arm.variant]
        observed.append(RegressionStats(c.observed, c.sum_x, c.sum_y, c.sum_x_squares, c.sum_y_squares,
                                        c.sum_xy))
    filled = fill_missing_covariate(observed, [a.value for a in inputs.arms])
    return {a.variant: f for a, f in zip(inputs.arms, filled, strict=True)}


def _analyze_inputs(
    inputs: SlotInputs, design: str, *, alpha: float, correction: str, seed: int,
    covariates: dict[str, RegressionStats] | None = None,
) -> SlotAnalysis:
    return analyze_slot(
        inputs.slot, inputs.arms, inputs.control, metrics=inputs.metrics, value_metric="reward",
        guardrails=inputs.guardrails, alpha=alpha, correction=correction,  # type: ignore[arg-type]
        seed=seed, adaptive=design in ADAPTIVE_DESIGNS, covariates=covariates,
    )


def analyze_summary(
    summary: ExperimentSummary, *, alpha: float = 0.05, correction: str = "holm", seed: int = 0,
    covariate: CovariateSummary | None = None,
) -> ExperimentResults:
    """Analyse every slot of ``summary`` that has enough data.

    With ``covariate`` (the CUPED sums of a numeric context attribute, from
    ``ExperimentService.summarize_covariate``) the reward is CUPED-adjusted in every slot and each reward
    comparison reports its ``variance_reduction``.

    Raises
    ------
    AnalysisInputError
        For a bad ``alpha`` or ``correction`` (checked before any slot, so they are never taken for
        a slot's data problem).
    """
    _check_options(alpha, correction)
    analyses, skipped = [], {}
    for inputs in slot_inputs(summary):
        if inputs.skipped:
            skipped[inputs.slot] = inputs.skipped
            continue
        try:
            covariates = None if covariate is None else covariate_inputs(inputs, covariate)
            analyses.append(_analyze_inputs(inputs, summary.design, alpha=alpha, correction=correction,
                                            seed=seed, covariates=covariates))
        except AnalysisInputError as exc:
            # The summary comes from our own store, so this is data the analysis cannot use yet
            # (e.g. an arm whose reward has no spread), not a bad request: report it per slot.
            skipped[inputs.slot] = f"cannot analyse this data yet: {exc}"
    factorials = []
    if summary.design == "multivariate" and len(summary.slots) > 1:
        for metric in [m for m in summary.reward_events if m not in summary.guardrails]:
            cells = factorial_cells(summary, metric)
            try:
                factorials.append(analyze_factorial(cells, metric=metric, reference=summary.control,
                                                    alpha=alpha))
            except AnalysisInputError as exc:
                skipped[f"factorial:{metric}"] = f"cannot fit the factorial model yet: {exc}"
    return ExperimentResults(summary, analyses, skipped, factorials, covariate)


def analyze_segmented(
    segmented: SegmentedSummary, *, alpha: float = 0.05, correction: str = "holm", seed: int = 0
) -> SegmentResults:
    """Each slot analysed in every segment with enough data, then corrected across all segments.

    A segment where some variant has fewer than two decisions (or whose data the analysis cannot use)
    is left out of that slot and listed in ``skipped``; so is a slot no segment can analyse.
    """
    _check_options(alpha, correction)
    skipped: dict[str, str] = {}
    per_segment = {label: slot_inputs(summary) for label, summary in segmented.segments.items()}
    slots = [] if not segmented.segments else list(next(iter(segmented.segments.values())).slots)
    by_slot = []
    for index, slot in enumerate(slots):
        analyses = {}
        for label, inputs_list in per_segment.items():
            inputs = inputs_list[index]
            if inputs.skipped:
                skipped[f"{slot} / {label}"] = inputs.skipped
                continue
            design = segmented.segments[label].design
            try:
                analyses[label] = _analyze_inputs(inputs, design, alpha=alpha, correction=correction,
                                                  seed=seed)
            except AnalysisInputError as exc:
                skipped[f"{slot} / {label}"] = f"cannot analyse this data yet: {exc}"
        if analyses:
            by_slot.append(combine_segments(slot, segmented.attribute, analyses, alpha=alpha,
                                            correction=correction))  # type: ignore[arg-type]
        else:
            skipped[slot] = "no segment has enough data yet"
    return SegmentResults(segmented, by_slot, skipped)


def factorial_cells(summary: ExperimentSummary, metric: str) -> list[FactorialCell]:
    """The combinations that were sent, as cells of the factorial model of ``metric``."""
    return [
        FactorialCell(dict(c.variants), c.decisions, int(c.event_counts.get(metric, 0)))
        for c in summary.combinations
        if c.decisions > 0
    ]


def _arm_row(arm: ArmSummary) -> dict[str, Any]:
    return {
        "slot": arm.slot,
        "variant": arm.variant,
        "decisions": arm.decisions,
        "events": dict(arm.event_counts),
        "reward_mean": arm.reward_mean,
        "intended_share": arm.intended_share,
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
    srm_by_slot = {a.slot: {"p_value": a.srm.p_value, "flagged": a.srm.flagged}
                   for a in results.analyses if a.srm.applicable}
    worst = min(srm_by_slot.values(), key=lambda s: s["p_value"], default=None)
    out: dict[str, Any] = {
        "key": summary.key,
        "version": summary.version,
        "design": summary.design,
        "arms": [_arm_row(a) for a in summary.arms],
        "comparisons": comparisons,
        "srm": _srm_answer(summary, worst, srm_by_slot),
        "decisions": {a.slot: {"verdict": a.decision.verdict, "winner": a.decision.winner,
                               "reason": a.decision.reason} for a in results.analyses},
        "holdout": None if summary.holdout is None else _arm_row(summary.holdout),
        "combinations": to_jsonable(summary.combinations),
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
    return finite_or_none(to_jsonable(out))  # a lift over a control of rate 0 is NaN: null in JSON


def summary_warnings(summary: ExperimentSummary) -> list[str]:
    """Warnings about the data behind the results: values posted on event types that carry none."""
    valued = summary.value_event_types
    warning = uncounted_values_warning(summary.uncounted_value_events, valued)
    return [] if warning is None else [warning]


def exclusion_note(summary: ExperimentSummary) -> str:
    """One sentence on the outcomes the results leave out (machine-made, after the reward window)."""
    machine, late = summary.excluded_machine_events, summary.excluded_late_events
    late_part = f"{late:,} after the reward window"
    if summary.machine_included:
        return (f"outcomes left out: {late_part}; {summary.machine_events:,} machine-made events are "
                "counted (include_machine), except those after the window")
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
