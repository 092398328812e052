"""The verdict's reason says what the data still allow: the leader's confidence sequence, not a constant."""

from __future__ import annotations

import re

import pytest

from analysis.results import ArmData, analyze_slot
from analysis.stats import SampleStats


def two_arms(n: int, clicks_a: int, clicks_b: int) -> list[ArmData]:
    return [ArmData(name, n, {"click": x}, SampleStats(n, float(x), float(x)), 0.5)
            for name, x in (("plain", clicks_a), ("urgent", clicks_b))]


@pytest.mark.parametrize(("n", "clicks_a", "clicks_b"), [(5_000, 500, 520), (40_000, 4_000, 4_090)])
def test_keep_running_states_the_leaders_confidence_sequence(n: int, clicks_a: int, clicks_b: int) -> None:
    r = analyze_slot("subject", two_arms(n, clicks_a, clicks_b), "plain", metrics=["click"],
                     value_metric=None, draws=1000, min_lift=0.02)
    assert r.decision.verdict == "keep running", r.decision.reason
    lead = r.comparison("urgent", "click")
    low, high = (end / lead.control_mean for end in lead.sequential.ci)
    assert f"from {low:+.1%} to {high:+.1%}" in r.decision.reason
    assert "95% confidence sequence" in r.decision.reason
    assert "2.0% cannot be ruled out" not in r.decision.reason


def test_the_range_narrows_as_data_accumulate() -> None:
    def widths(n: int, a: int, b: int) -> float:
        reason = analyze_slot("s", two_arms(n, a, b), "plain", metrics=["click"], value_metric=None,
                              draws=500).decision.reason
        low, high = (float(x) for x in re.findall(r"([+-]\d+\.\d)%", reason.split("allows")[1]))
        return high - low

    assert widths(40_000, 4_000, 4_090) < widths(5_000, 500, 520) / 2


def test_a_significantly_worse_variant_is_named_when_others_are_undecided() -> None:
    # "big" loses 8% of the clicks (always-valid p ~ 1e-15), "same" is level with control: the reason
    # used to say that no variant differs from control.
    arms = [ArmData(name, 200_000, {"click": x}, SampleStats(200_000, float(x), float(x)), 1 / 3)
            for name, x in (("plain", 20_000), ("big", 18_400), ("same", 20_050))]
    r = analyze_slot("s", arms, "plain", metrics=["click"], value_metric=None)
    big = r.comparison("big", "click")
    assert big.sequential.p_value < 1e-10
    assert r.decision.verdict == "keep running" and r.decision.winner is None
    assert r.decision.reason.startswith(
        f"big (-8.0%, always-valid p = {big.sequential.p_value:.3g}) is worse than plain on click")
    assert "no variant differs" not in r.decision.reason
    assert "no other variant differs from plain yet: the leader same is at +0.2%" in r.decision.reason


def test_the_adaptive_decision_names_a_significantly_worse_variant_too() -> None:
    from analysis.adaptive_comparisons import AdaptiveComparison
    from analysis.adaptive_decision import decide_adaptive

    def comparison(variant: str, lift: float, p: float) -> AdaptiveComparison:
        return AdaptiveComparison(
            variant=variant, control="plain", control_value=0.1, variant_value=0.1 * (1 + lift),
            absolute_lift=0.1 * lift, absolute_ci=(0.0, 0.0), lift=lift, ci=(0.0, 0.0), ci_method="fieller",
            statistic=0.0, p_value=p, prob_beat_control=0.5, effective_n=1000.0, method="ipw",
            always_valid=None, as_allocated_lift=0.0,
        )

    primary = [comparison("big", -0.08, 1e-17), comparison("same", 0.002, 0.9)]
    d = decide_adaptive(primary, [], metric="click", control="plain", alpha=0.05, correction="holm")
    assert d.verdict == "keep running" and "no variant differs" not in d.reason
    assert d.reason.startswith("big (-8.0%, fixed-horizon p = 1e-17) is worse than plain on click")
    assert "the leader same is at +0.2%" in d.reason
