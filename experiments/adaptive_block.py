"""The results of a bandit or contextual experiment: the adaptive estimates, per slot and metric.

Under a learning policy the per-arm rates measure where the policy sent traffic, not what each variant
would do for everyone. This module turns the log the store keeps (:mod:`experiments.adaptive_reader`)
into :func:`analysis.adaptive_results.analyze_adaptive` per slot and metric, and into the blocks
``/results``, ``sendlab analyze``, the report and the experiment page show:

- ``comparisons``: lift, interval, p-value and P(beat control) "if every eligible recipient got this
  variant" (the as-allocated ones stay under ``as_allocated_comparisons``, labelled);
- ``decisions``: the decision text from those estimates (:func:`analysis.adaptive_decision.decide_adaptive`);
- ``policy_value``: the policy as run beside each arm, the defaults and a uniform split;
- ``adaptive``: the method, each target's value, the always-valid results and the warnings.

The results path analyses what the results use case read (:func:`analyze_estimated`) and answers it by
:func:`adaptive_json`; fixed-split designs get ``{}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from analysis.adaptive import AS_ALLOCATED_NOTE, ArmValueEstimates, estimate_arm_values, slot_targets
from analysis.adaptive_aipw import estimate_arm_values_aipw
from analysis.adaptive_decision import decide_adaptive
from analysis.adaptive_results import ALWAYS_VALID_NOTE, AdaptiveAnalysis, analyze_adaptive
from analysis.decisions import Decision
from analysis.errors import AnalysisInputError
from analysis.json_ready import to_jsonable
from analysis.multiplicity import Correction, adjust_p_values
from analysis.policy_value import PolicyValueBlock
from experiments.adaptive_reader import REWARD, AdaptiveData
from experiments.models import ExperimentSummary
from experiments.result_analysis import ADAPTIVE_DESIGNS

#: What the ``policy_value`` block is, in words.
POLICY_VALUE_NOTE = (
    "mean reward per decision of the policy as run (on-policy), and of each arm, the defaults and a uniform "
    "split as if every eligible recipient had got it, estimated on the same log from the logged "
    "propensities; effective_n is the number of equally weighted decisions each estimate is worth"
)


@dataclass(frozen=True)
class AdaptiveSlot:
    """One slot: per metric the adaptive analysis, the p-values corrected across the slot's
    comparisons (``(variant, metric) -> adjusted p``) and the decision."""

    slot: str
    control: str
    primary_metric: str
    metric_to_analysis: dict[str, AdaptiveAnalysis]
    adjusted: dict[tuple[str, str], float]
    decision: Decision


@dataclass(frozen=True)
class AdaptiveResults:
    """Everything the adaptive sections show (module docstring)."""

    design: str
    decisions: int
    method: str
    slots: list[AdaptiveSlot]
    policy_value: PolicyValueBlock | None
    analysis: AdaptiveAnalysis | None  # the reward's analysis of the first slot: values and warnings
    skipped: dict[str, str] = field(default_factory=dict)
    estimator_note: str = ""


def _estimates(data: AdaptiveData, metric: str) -> tuple[ArmValueEstimates | None, str]:
    """The cross-fitted AIPW estimates when the rows were read, else None (the IPW of the sums)."""
    if data.rows is None:
        if data.design == "contextual":
            return None, (f"the log holds {data.log.decisions:,} decisions, more than are read as rows for "
                          "the cross-fitted AIPW: the estimates are the adaptively weighted IPW of the sums")
        return None, ""
    if data.rows.out_of_range:
        return None, (f"{data.rows.out_of_range:,} decisions hold a context number beyond ±2**53 (logged "
                      "before that bound), which a reward model of the context cannot fit: the estimates are "
                      "the adaptively weighted IPW of the sums")
    try:
        return estimate_arm_values_aipw(data.rows.metric_to_rows[metric]), (
            "contextual design: the estimates are augmented by a ridge reward model of the context, "
            "cross-fitted so that no row is predicted by a model that saw it")
    except AnalysisInputError as exc:
        return None, f"the cross-fitted AIPW could not be fitted ({exc}): the IPW of the sums is used"


@dataclass(frozen=True)
class EstimatedLog:
    """The log's sums with, per metric, the row-level estimates to use (None: those of the sums).

    What an analysis at any ``alpha`` needs, without the rows: the experiment page keeps it cached.
    """

    data: AdaptiveData
    metric_to_estimates: dict[str, ArmValueEstimates | None]
    note: str


def estimate_log(data: AdaptiveData) -> EstimatedLog:
    """Fit the row-level estimates of every metric (contextual designs whose rows were read) and drop
    the rows."""
    metric_to_estimates = {}
    notes: list[str] = []
    for metric in data.log.metric_to_log:
        estimates, note = _estimates(data, metric)
        metric_to_estimates[metric] = estimates
        if note and note not in notes:
            notes.append(note)
    return EstimatedLog(replace(data, rows=None), metric_to_estimates, "; ".join(notes))


def analyze_adaptive_data(
    estimated: EstimatedLog,
    *,
    controls: Mapping[str, str],
    metrics: Sequence[str],
    guardrails: Sequence[str] = (),
    alpha: float = 0.05,
    correction: Correction = "holm",
) -> AdaptiveResults:
    """Analyse every slot on every metric (``metrics[0]`` is the primary one) and on the guardrails.

    Parameters
    ----------
    estimated : EstimatedLog
        :func:`estimate_log` of what :meth:`ExperimentService.read_adaptive` read.
    controls : Mapping[str, str]
        Per slot, its control variant (the slots in the spec's order).
    metrics, guardrails : Sequence[str]
        ``"reward"`` and event types (each event's rate).
    """
    data = estimated.data
    log = data.log
    defaults = {data.default_arm: 1.0}
    one_slot = len(controls) == 1
    slots, skipped = [], {}
    for slot, control in controls.items():
        targets = None if one_slot else slot_targets(log.arm_to_variants, slot)
        try:
            by_metric = {
                metric: analyze_adaptive(
                    log.metric_to_log[metric], control, targets=targets, defaults=defaults, alpha=alpha,
                    ddof=1 if metric == REWARD else 0, floor=data.floor,
                    estimates=estimated.metric_to_estimates.get(metric) or estimate_arm_values(
                        log.metric_to_log[metric], arms=log.arms, ddof=1 if metric == REWARD else 0),
                )
                for metric in [*metrics, *guardrails]
            }
        except AnalysisInputError as exc:
            skipped[slot] = f"cannot estimate under the learning policy yet: {exc}"
            continue
        keys = [(c.variant, m) for m in [*metrics, *guardrails] for c in by_metric[m].comparisons]
        raw = [by_metric[m].comparison(v).p_value for v, m in keys]
        adjusted = dict(zip(keys, adjust_p_values(raw, correction).tolist(), strict=True)) if keys else {}
        primary = metrics[0]
        decision = decide_adaptive(
            by_metric[primary].comparisons,
            [(g, c) for g in guardrails for c in by_metric[g].comparisons],
            metric=primary, control=control, alpha=alpha, correction=correction,
        )
        slots.append(AdaptiveSlot(slot, control, primary, by_metric, adjusted, decision))
    first = slots[0].metric_to_analysis.get(REWARD) if slots else None
    return AdaptiveResults(
        design=data.design, decisions=log.decisions,
        method=first.method if first is not None else "",
        slots=slots, policy_value=first.policy_value if first is not None else None, analysis=first,
        skipped=skipped, estimator_note=estimated.note,
    )


def adaptive_to_dict(
    results: AdaptiveResults, as_allocated: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The blocks the results answer for a learning policy (module docstring), JSON-ready."""
    comparisons = []
    values = []
    for s in results.slots:
        for metric, analysis in s.metric_to_analysis.items():
            for c in analysis.comparisons:
                p_adj = s.adjusted[(c.variant, metric)]
                comparisons.append({
                    "slot": s.slot, "variant": c.variant, "control": c.control, "metric": metric,
                    "lift": c.lift, "ci": list(c.ci), "p_value": c.p_value, "p_value_adjusted": p_adj,
                    "significant": p_adj < analysis.alpha, "prob_beat_control": c.prob_beat_control,
                    "variance_reduction": None, "absolute_lift": c.absolute_lift,
                    "absolute_ci": list(c.absolute_ci), "control_value": c.control_value,
                    "variant_value": c.variant_value, "effective_n": c.effective_n,
                    "always_valid": c.always_valid, "as_allocated_lift": c.as_allocated_lift,
                    "method": c.method,
                })
            for v in analysis.values:
                values.append({"slot": s.slot, "metric": metric, "variant": v.label, "estimate": v.estimate,
                               "std_error": v.std_error, "ci": list(v.ci), "effective_n": v.effective_n,
                               "decisions": v.decisions, "as_allocated_mean": v.as_allocated_mean})
    block = results.analysis
    out: dict[str, Any] = {
        "comparisons": comparisons,
        "decisions": {s.slot: {"verdict": s.decision.verdict, "winner": s.decision.winner,
                               "reason": s.decision.reason} for s in results.slots},
        "as_allocated_comparisons": [dict(c, note=AS_ALLOCATED_NOTE) for c in as_allocated],
        "arms_note": AS_ALLOCATED_NOTE,
        "policy_value": None if results.policy_value is None else {
            **to_jsonable(results.policy_value), "note": POLICY_VALUE_NOTE},
        "adaptive": {
            "design": results.design,
            "decisions": results.decisions,
            "method": results.method,
            "estimator_note": results.estimator_note,
            "as_allocated_note": AS_ALLOCATED_NOTE,
            "always_valid_note": ALWAYS_VALID_NOTE,
            "values": values,
            "warnings": [] if block is None else [
                {"kind": w.kind, "arm": w.arm, "message": w.message} for w in block.warnings],
            "skipped": dict(results.skipped),
        },
    }
    return to_jsonable(out)


class AdaptiveSource(Protocol):
    """What :func:`adaptive_block` needs of the service."""

    def read_adaptive(self, key: str, *, include_machine: bool = False) -> AdaptiveData: ...


def result_metrics(summary: ExperimentSummary) -> tuple[list[str], list[str]]:
    """The metrics of the adaptive analysis (the reward first, then the rewarded events seen) and the
    guardrail events seen."""
    seen = {event for arm in summary.arms for event, count in arm.event_counts.items() if count}
    guardrails = [g for g in summary.guardrails if g in seen]
    events = [e for e in summary.reward_events if e in seen and e not in guardrails]
    return [REWARD, *events], guardrails


def adaptive_results(
    service: AdaptiveSource, summary: ExperimentSummary, *, alpha: float = 0.05,
    correction: Correction = "holm", include_machine: bool = False,
) -> AdaptiveResults | None:
    """The adaptive analysis of ``summary``'s experiment; None for a fixed-split design or before any
    decision of the policy."""
    if summary.design not in ADAPTIVE_DESIGNS:
        return None
    data = service.read_adaptive(summary.key, include_machine=include_machine)
    return analyze_estimated(estimate_log(data), summary, alpha=alpha, correction=correction)


def analyze_estimated(
    estimated: EstimatedLog | None, summary: ExperimentSummary, *, alpha: float = 0.05,
    correction: Correction = "holm",
) -> AdaptiveResults | None:
    """:func:`analyze_adaptive_data` on ``summary``'s metrics and controls; None without a decision."""
    if estimated is None or estimated.data.log.decisions == 0:
        return None
    metrics, guardrails = result_metrics(summary)
    return analyze_adaptive_data(estimated, controls=summary.control, metrics=metrics,
                                 guardrails=guardrails, alpha=alpha, correction=correction)


def adaptive_json(
    analysed: AdaptiveResults | None, summary: ExperimentSummary, results: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`adaptive_to_dict` of ``analysed`` for the answer ``results`` (the fixed-split one) of
    ``summary``: ``{}`` for a fixed-split design, the empty blocks before the policy's first decision."""
    if summary.design not in ADAPTIVE_DESIGNS:
        return {}
    if analysed is None:
        return {"policy_value": None, "arms_note": AS_ALLOCATED_NOTE,
                "adaptive": {"design": summary.design, "decisions": 0, "values": [], "warnings": [],
                             "skipped": {"*": "no decision of the policy yet"}}}
    return adaptive_to_dict(analysed, results.get("comparisons", ()))
