"""The experiment's sample-ratio check is the worst slot's: the smallest p-value over the slots that
can be tested, beside every slot's own check; for adaptive designs it does not apply."""

from __future__ import annotations

import pytest
from scipy import stats

from analysis.stats import SampleStats
from experiments.models import ArmSummary, ExperimentSummary
from experiments.result_analysis import analyze_summary


def summary(design: str, slot_to_counts: dict[str, list[int]]) -> ExperimentSummary:
    arms, slots, control = [], {}, {}
    for slot, counts in slot_to_counts.items():
        ids = [f"{slot}{i}" for i in range(len(counts))]
        slots[slot], control[slot] = ids, ids[0]
        arms += [ArmSummary(slot, v, 1 / len(counts), {"click": n // 10}, SampleStats(n, n / 10, n / 10))
                 for v, n in zip(ids, counts, strict=True)]
    return ExperimentSummary(key="k", version=1, design=design, slots=slots, control=control, arms=arms,
                             combinations=[], holdout=None, daily=[], guardrails=[], reward_events=["click"])


def test_the_experiment_srm_is_the_slot_with_the_smallest_p_value() -> None:
    results = analyze_summary(summary("multivariate", {"subject": [1000, 1010], "cta": [1100, 900]}))
    srm = results.srm
    assert srm is not None and srm.applicable
    # reference: scipy's chi-square goodness of fit against an even split, per slot
    p_subject = stats.chisquare([1000, 1010]).pvalue
    p_cta = stats.chisquare([1100, 900]).pvalue
    assert srm.by_slot["subject"].p_value == pytest.approx(p_subject, rel=1e-9)
    assert srm.by_slot["cta"].p_value == pytest.approx(p_cta, rel=1e-9)
    assert srm.p_value == pytest.approx(min(p_subject, p_cta), rel=1e-9)
    assert srm.flagged and srm.by_slot["cta"].flagged and not srm.by_slot["subject"].flagged


def test_an_adaptive_design_has_no_sample_ratio_check() -> None:
    srm = analyze_summary(summary("bandit", {"subject": [1500, 500]})).srm
    assert srm is not None
    assert (srm.applicable, srm.p_value, srm.flagged, srm.by_slot) == (False, None, False, {})
