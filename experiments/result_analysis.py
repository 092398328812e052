"""The analysis of an experiment's results: its summary regrouped per slot into the inputs of
:func:`analysis.results.analyze_slot`, each slot analysed, the factorial model of a multivariate
design, the results by segment, and the experiment's sample-ratio check (the worst slot's).

Shared by ``GET /v1/experiments/{key}/results``, ``sendlab analyze``, ``sendlab demo`` and the pages,
so all of them show the same numbers; :mod:`experiments.service.results` reads the summaries it
needs in one transaction and calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, get_args

from analysis.cuped import fill_missing_covariate
from analysis.errors import AnalysisInputError
from analysis.factorial import FactorialAnalysis, FactorialCell, analyze_factorial
from analysis.lift import check_alpha
from analysis.multiplicity import Correction
from analysis.results import ArmData, SlotAnalysis, analyze_slot
from analysis.segments import SegmentAnalysis, combine_segments
from analysis.srm import SrmResult
from analysis.stats import RegressionStats
from analysis.timeseries import DailyPoint
from experiments.models import ArmSummary, CovariateSummary, ExperimentSummary, SegmentedSummary

if TYPE_CHECKING:  # the adaptive block builds on this module
    from experiments.adaptive_block import AdaptiveResults
    from experiments.drift_block import DriftVerdict

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
class SegmentResults:
    """The results of each slot broken down by a context attribute.

    ``by_slot`` holds one :class:`analysis.segments.SegmentAnalysis` per slot that could be analysed in
    at least one segment (one correction across all its segments' comparisons); ``skipped`` says, per
    ``"slot / segment"`` (or per slot), why it was left out.
    """

    segmented: SegmentedSummary
    by_slot: list[SegmentAnalysis]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentSrm:
    """The experiment's sample-ratio check: the slot with the smallest p-value stands for the
    experiment (a mismatch in any slot puts the whole allocation in doubt), beside every slot's own.

    For adaptive designs the allocation moves as the policy learns: there is no fixed split to test,
    and the check does not apply (``applicable`` false, no p-value).
    """

    applicable: bool
    p_value: float | None
    flagged: bool
    by_slot: dict[str, SrmResult]


def experiment_srm(design: str, analyses: list[SlotAnalysis]) -> ExperimentSrm | None:
    """The experiment's :class:`ExperimentSrm` from its slots' analyses (None when no slot could be
    tested)."""
    if design in ADAPTIVE_DESIGNS:
        return ExperimentSrm(False, None, False, {})
    by_slot = {a.slot: a.srm for a in analyses if a.srm.applicable}
    worst = min(by_slot.values(), key=lambda s: s.p_value, default=None)
    return None if worst is None else ExperimentSrm(True, worst.p_value, worst.flagged, by_slot)


@dataclass(frozen=True)
class ExperimentResults:
    """A summary, the analysis of each slot that has enough data, and for a multivariate design the
    factorial model of its combinations (main effects and interactions) per rate metric, the
    experiment's sample-ratio check, and (when asked) the results by segment."""

    summary: ExperimentSummary
    analyses: list[SlotAnalysis]
    skipped: dict[str, str] = field(default_factory=dict)
    factorials: list[FactorialAnalysis] = field(default_factory=list)
    covariate: CovariateSummary | None = None
    srm: ExperimentSrm | None = None
    segments: SegmentResults | None = None
    #: When asked for (``results(..., blocks=True)``), read in the same transaction as the summary: the
    #: adaptive analysis (None for a fixed-split design or before the policy's first decision) and the
    #: drift monitor's report.
    adaptive: AdaptiveResults | None = None
    drift: DriftVerdict | None = None


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
        value=arm.reward,
        intended_share=float(max(arm.decisions, 1)) if adaptive else arm.intended_share,
    )


def daily_points(summary: ExperimentSummary) -> list[DailyPoint]:
    """The summary's per-day counts as :class:`analysis.timeseries.DailyPoint` (for the report's charts)."""
    return [DailyPoint(d.day, d.slot, d.variant, d.decisions, dict(d.event_counts)) for d in summary.daily]


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
    observed = [by_variant[arm.variant].xy for arm in inputs.arms]
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
    srm = experiment_srm(summary.design, analyses)
    return ExperimentResults(summary, analyses, skipped, factorials, covariate, srm)


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
