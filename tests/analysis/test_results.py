"""analyze_slot: every number equals an independent computation; decisions; JSON; bad inputs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from analysis.cuped import cuped_compare, cuped_theta
from analysis.errors import AnalysisInputError
from analysis.lift import rate_difference_score
from analysis.multiplicity import adjust_p_values
from analysis.results import ArmData, analyze_slot
from analysis.significance import two_proportion_ztest
from analysis.stats import ProportionStats, RegressionStats, SampleStats

VALUES = {"plain": SampleStats(10_000, 2_500.0, 40_000.0), "urgent": SampleStats(10_200, 2_900.0, 47_000.0),
          "emoji": SampleStats(9_900, 2_400.0, 39_000.0)}
ARMS = [
    ArmData("urgent", 10_200, {"open": 2_300, "click": 390, "unsubscribe": 21}, VALUES["urgent"], 1 / 3),
    ArmData("plain", 10_000, {"open": 2_100, "click": 330, "unsubscribe": 20}, VALUES["plain"], 1 / 3),
    ArmData("emoji", 9_900, {"open": 2_050, "click": 335, "unsubscribe": 25}, VALUES["emoji"], 1 / 3),
]


def _analyze(arms=ARMS, **kw):
    options = {"metrics": ["open", "click"], "guardrails": ["unsubscribe"], "seed": 1, "draws": 4000} | kw
    return analyze_slot("subject", arms, "plain", **options)


def test_rate_comparisons_match_statsmodels() -> None:
    r = _analyze()
    ctrl = next(a for a in ARMS if a.variant == "plain")
    for arm in (a for a in ARMS if a.variant != "plain"):
        for metric in ("open", "click"):
            c = r.comparison(arm.variant, metric)
            x, xc = arm.event_counts[metric], ctrl.event_counts[metric]
            z, p = proportions_ztest([x, xc], [arm.n, ctrl.n])
            assert (c.statistic, c.p_value) == pytest.approx((z, p), abs=1e-9)
            # score intervals (checked against their defining equation in test_lift.py); at these sizes
            # the difference's is within 1% of its width of the Wald interval
            a, b = ProportionStats(ctrl.n, xc), ProportionStats(arm.n, x)
            assert c.absolute_ci == rate_difference_score(a, b).ci
            low, high = confint_proportions_2indep(x, arm.n, xc, ctrl.n, method="wald", compare="diff")
            assert c.absolute_ci == pytest.approx((low, high), abs=0.01 * (high - low))
            assert c.lift == pytest.approx((x / arm.n) / (xc / ctrl.n) - 1, abs=1e-12)
            low, high = confint_proportions_2indep(x, arm.n, xc, ctrl.n, method="score", compare="ratio",
                                                   correction=False)
            assert c.ci == pytest.approx((low - 1, high - 1), abs=1e-7) and c.ci_method == "score"
            # P(variant beats control) under Beta(1 + x, 1 + n - x) posteriors: int f_B(t) F_A(t) dt
            fb, fa = sps.beta(1 + x, 1 + arm.n - x), sps.beta(1 + xc, 1 + ctrl.n - xc)
            ref = integrate.quad(lambda t, fa=fa, fb=fb: fb.pdf(t) * fa.cdf(t), 0, 1, points=[x / arm.n],
                                 epsabs=1e-12, limit=200)[0]
            assert c.prob_beat_control == pytest.approx(ref, abs=1e-7)


def test_value_comparisons_match_scipy_welch() -> None:
    r = _analyze()
    a, b = VALUES["plain"], VALUES["urgent"]
    ref = sps.ttest_ind_from_stats(b.mean, b.std, b.n, a.mean, a.std, a.n, equal_var=False)
    c = r.comparison("urgent", "reward")
    assert (c.statistic, c.p_value) == pytest.approx((ref.statistic, ref.pvalue), abs=1e-9)
    assert c.kind == "value" and c.test == "Welch t-test"


def test_holm_across_variants_and_metrics() -> None:
    r = _analyze()
    assert len(r.comparisons) == 6  # 2 variants x (open, click, reward)
    ref = multipletests([c.p_value for c in r.comparisons], method="holm")[1]
    assert [c.p_value_adjusted for c in r.comparisons] == pytest.approx(ref, abs=1e-12)
    assert all(c.significant == (c.p_value_adjusted < 0.05) for c in r.comparisons)
    bh = _analyze(correction="bh")
    ref_bh = multipletests([c.p_value for c in bh.comparisons], method="fdr_bh")[1]
    assert [c.p_value_adjusted for c in bh.comparisons] == pytest.approx(ref_bh, abs=1e-12)


def test_arm_results_srm_guardrails_and_omnibus() -> None:
    r = _analyze()
    for metric in ("open", "click", "reward"):
        arms = [a for a in r.arms if a.metric == metric]
        assert [a.variant for a in arms] == ["plain", "urgent", "emoji"]
        assert sum(a.prob_best for a in arms) == pytest.approx(1.0, abs=1e-7)
        assert all(a.expected_loss >= 0 for a in arms)
    ref = sps.chisquare([10_000, 10_200, 9_900])
    assert r.srm.p_value == pytest.approx(ref.pvalue, abs=1e-12) and not r.srm.flagged
    pairs = [(g.variant, g.metric) for g in r.guardrails]
    assert pairs == [("urgent", "unsubscribe"), ("emoji", "unsubscribe")]
    table = [[a.event_counts["click"], a.n - a.event_counts["click"]] for a in ARMS]
    assert r.omnibus["click"].p_value == pytest.approx(sps.chi2_contingency(table, correction=False).pvalue)


def test_to_dict_is_json_ready_and_seeded() -> None:
    r = _analyze()
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["comparisons"][0].keys() >= {
        "slot", "variant", "control", "metric", "lift", "ci", "p_value", "p_value_adjusted",
        "prob_beat_control", "significant", "absolute_lift", "absolute_ci"}
    assert isinstance(d["comparisons"][0]["ci"], list) and d["srm"].keys() >= {"p_value", "flagged"}
    assert d["decision"]["verdict"] and d["seed"] == 1
    assert _analyze().to_dict() == d  # the same seed gives the same Monte Carlo summaries
    assert _analyze(seed=2).to_dict() != d


def _two(n_a, x_a, n_b, x_b, unsub=(0.01, 0.01), share=(0.5, 0.5)):
    def arm(name, n, x, u, s):
        counts = {"click": x, "unsubscribe": int(round(u * n))}
        return ArmData(name, n, counts, SampleStats(n, float(x), float(x)), s)
    return [arm("plain", n_a, x_a, unsub[0], share[0]), arm("urgent", n_b, x_b, unsub[1], share[1])]


@pytest.mark.parametrize(
    ("arms", "verdict"),
    [
        (_two(200_000, 20_000, 200_000, 21_400), "a winner: urgent"),
        (_two(200_000, 20_000, 200_000, 18_600), "a winner: plain"),
        (_two(2_000_000, 200_000, 2_000_000, 200_300), "no detectable difference"),
        (_two(5_000, 500, 5_000, 520), "keep running"),
        (_two(204_000, 20_400, 196_000, 19_600), "investigate: sample ratio mismatch"),
        (_two(200_000, 20_000, 200_000, 21_400, unsub=(0.01, 0.013)), "keep running"),
    ],
)
def test_decisions(arms, verdict: str) -> None:
    r = analyze_slot("subject", arms, "plain", metrics=["click"], value_metric=None,
                     guardrails=["unsubscribe"], draws=1000, min_lift=0.02)
    assert r.decision.verdict == verdict, r.decision.reason
    assert r.decision.reason


def test_reversed_direction_reverses_the_winner() -> None:
    up = analyze_slot("s", _two(200_000, 20_000, 200_000, 21_400), "plain", metrics=["click"],
                      value_metric=None, draws=1000)
    down = analyze_slot("s", _two(200_000, 21_400, 200_000, 20_000), "plain", metrics=["click"],
                        value_metric=None, draws=1000)
    assert up.decision.winner == "urgent" and down.decision.winner == "plain"
    assert up.comparisons[0].p_value == pytest.approx(down.comparisons[0].p_value)
    assert up.comparisons[0].prob_beat_control == pytest.approx(1 - down.comparisons[0].prob_beat_control)


def test_no_revenue_yet_is_analysed_not_rejected() -> None:
    # Early in a test every reward may still be zero: the value comparison is flat, nothing crashes.
    zero = SampleStats(3000, 0.0, 0.0)
    arms = [ArmData(v, 3000, {"click": x}, zero, 0.5) for v, x in (("plain", 90), ("b", 99))]
    r = analyze_slot("s", arms, "plain", metrics=["click"], draws=500)
    c = r.comparison("b", "reward")
    assert c.p_value == 1.0 and c.absolute_lift == 0.0 and c.ci_method == "undefined"
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["comparisons"][1]["lift"] is None
    assert sum(a.prob_best for a in r.arms if a.metric == "reward") == pytest.approx(1.0)
    assert r.decision.verdict == "keep running"


def test_small_counts_use_fisher_and_say_so() -> None:
    arms = _two(60, 1, 60, 7)
    r = analyze_slot("s", arms, "plain", metrics=["click"], value_metric=None, draws=1000)
    assert r.comparisons[0].test == "Fisher exact test"
    assert any("Fisher" in w for w in r.warnings)


def test_rate_intervals_stay_in_range_with_zero_and_tiny_counts() -> None:
    # 2/1000 against 0/1000 (Fisher p = 0.50): the relative lift's interval was [-100%, -100%] (the
    # delta method, its variance 0 when the variant has no events); it is the score interval of the
    # ratio, [-100%, +91.8%] (statsmodels confint_proportions_2indep, compare="ratio", method="score",
    # correction=False: [0, 1.9182] for the ratio). 3/1 against 2/2 (Fisher p = 0.40): the Wald
    # difference [0.133, 1.200] left [-1, 1] and excluded 0.
    def click(nc: int, xc: int, nb: int, xb: int):
        arms = [ArmData("c", nc, {"click": xc}, SampleStats(nc, float(xc), float(xc)), 0.5),
                ArmData("t", nb, {"click": xb}, SampleStats(nb, float(xb), float(xb)), 0.5)]
        return analyze_slot("s", arms, "c", metrics=["click"]).comparison("t", "click")

    zero = click(1000, 2, 1000, 0)
    assert zero.p_value == pytest.approx(0.4997, abs=1e-4) and zero.ci_method == "score"
    assert zero.ci == pytest.approx((-1.0, 0.9182054), abs=1e-6)
    assert zero.absolute_ci[0] < 0 < zero.absolute_ci[1]
    few = click(1000, 1, 1000, 5)
    low, high = confint_proportions_2indep(5, 1000, 1, 1000, compare="ratio", method="score",
                                           correction=False)
    assert few.ci == pytest.approx((low - 1, high - 1), abs=1e-7) and few.ci[0] > -1
    tiny = click(3, 1, 2, 2)
    assert tiny.p_value == pytest.approx(0.4) and -1 <= tiny.absolute_ci[0] < 0 < tiny.absolute_ci[1] <= 1
    assert tiny.ci[0] < 0 < tiny.ci[1]


def test_a_rate_arm_without_events_keeps_a_beta_posterior_of_positive_width() -> None:
    # The rate of an arm with 0 clicks of 1,911 has the posterior Beta(1, 1912): its 95% credible
    # interval is (1 - 0.025^(1/1912), 1 - 0.975^(1/1912)), not a point.
    arms = [ArmData("c", 1911, {"click": 4}, SampleStats(1911, 4.0, 4.0), 0.5),
            ArmData("t", 1911, {"click": 0}, SampleStats(1911, 0.0, 0.0), 0.5)]
    r = analyze_slot("s", arms, "c", metrics=["click"])
    arm = next(a for a in r.arms if a.variant == "t" and a.metric == "click")
    assert arm.posterior.family == "beta" and (arm.posterior.a, arm.posterior.b) == (1, 1912)
    assert arm.credible_interval == pytest.approx((1 - 0.975 ** (1 / 1912), 1 - 0.025 ** (1 / 1912)),
                                                  rel=1e-9)
    low, high = r.comparison("t", "click").credible_interval  # (-99.5%, +9.0%): 0 clicks is not -100%
    assert -1 < low < -0.99 and high > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda arms: {"arms": arms[:1]}, "needs at least 2 arms"),
        (lambda arms: {"control": "nope"}, "control: 'nope'"),
        (lambda arms: {"arms": [arms[0], arms[0]]}, "duplicate variants"),
        (lambda arms: {"metrics": ["bounce"]}, "'bounce'"),
        (lambda arms: {"metrics": "click"}, "not one string"),
        (lambda arms: {"arms": [replace(arms[0], event_counts={"click": 10**6}), arms[1]]},
         r"arms\[0\].event_counts\['click'\]"),
        (lambda arms: {"arms": [replace(arms[0], value=SampleStats(3, 1.0, 1.0)), arms[1]]},
         r"arms\[0\].value.n"),
        (lambda arms: {"arms": [replace(arms[0], intended_share=0.0), arms[1]]}, r"arms\[0\].intended_share"),
        (lambda arms: {"alpha": 0.0}, "alpha"),
        (lambda arms: {"correction": "bonferroni"}, "correction"),
    ],
)
def test_bad_inputs(change, message: str) -> None:
    arms = _two(1000, 100, 1000, 110)
    kwargs = {"arms": arms, "control": "plain", "metrics": ["click"]} | change(arms)
    with pytest.raises(AnalysisInputError, match=message):
        analyze_slot("s", kwargs.pop("arms"), kwargs.pop("control"), draws=500, **kwargs)


def test_holm_keeps_the_family_wise_error_rate_over_many_arms_and_metrics() -> None:
    # 2,000 A/A/A/A/A experiments with two metrics (8 comparisons each); any false positive is a failure.
    rng = np.random.default_rng(12)
    n, runs = 4000, 2000
    counts = rng.binomial(n, [0.2, 0.05], (runs, 5, 2))
    raw_any, holm_any = [], []
    for run in counts:
        arm = [[ProportionStats(n, int(run[v, m])) for m in range(2)] for v in range(5)]
        p = [two_proportion_ztest(arm[0][m], arm[v][m]).p_value for v in range(1, 5) for m in range(2)]
        raw_any.append(min(p) < 0.05)
        holm_any.append(adjust_p_values(p, "holm").min() < 0.05)
    assert np.mean(holm_any) <= 0.065
    assert np.mean(raw_any) > 0.2


def test_cuped_covariates_adjust_the_value_metric() -> None:
    # The value comparison on CUPED-adjusted arms equals cuped_compare with theta pooled over all arms.
    rng = np.random.default_rng(21)
    x = rng.poisson(3.0, (3, 4000)).astype(float)
    y = 2.0 * x + rng.normal(0, 2, (3, 4000)) + np.array([0.0, 0.2, 0.0])[:, None]
    names = ["plain", "urgent", "emoji"]
    cov = {v: RegressionStats.from_values(x[k], y[k]) for k, v in enumerate(names)}
    arms = [ArmData(v, 4000, {"click": 100 + k}, SampleStats.from_values(y[k], with_cubes=False), 1 / 3)
            for k, v in enumerate(names)]
    r = analyze_slot("s", arms, "plain", metrics=["click"], covariates=cov, draws=500)
    theta = cuped_theta(list(cov.values()))
    ref = cuped_compare(cov["plain"], cov["urgent"], theta=theta)
    ref_p = sps.ttest_ind(y[1] - theta * (x[1] - x.mean()), y[0] - theta * (x[0] - x.mean()),
                          equal_var=False).pvalue
    c = r.comparison("urgent", "reward")
    assert c.p_value == pytest.approx(ref.test.p_value, abs=1e-12)
    assert c.p_value == pytest.approx(ref_p, abs=1e-9)
    assert c.variance_reduction == pytest.approx(ref.variance_reduction, abs=1e-12)
    assert c.variance_reduction > 0.5
    plain = analyze_slot("s", arms, "plain", metrics=["click"], draws=500).comparison("urgent", "reward")
    assert plain.variance_reduction is None and plain.p_value > c.p_value
    with pytest.raises(AnalysisInputError, match=r"covariates\['urgent'\].sum_y"):
        bad = dict(cov, urgent=RegressionStats.from_values(x[1], y[1] + 1))
        analyze_slot("s", arms, "plain", metrics=["click"], covariates=bad, draws=500)


arm_counts = st.integers(50, 5000).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n), st.floats(0, 50, allow_subnormal=False),
                        st.floats(0.1, 1)))


@settings(max_examples=25, deadline=None)
@given(st.lists(arm_counts, min_size=2, max_size=4))
def test_every_probability_and_p_value_is_in_range(spec) -> None:
    arms = [ArmData(f"v{i}", n, {"click": x}, SampleStats(n, mean * x, mean * mean * x * 2 + 1.0), share)
            for i, (n, x, mean, share) in enumerate(spec)]
    r = analyze_slot("s", arms, "v0", metrics=["click"], draws=200)
    for c in r.comparisons:
        for p in (c.p_value, c.p_value_adjusted, c.prob_beat_control, c.sequential.p_value):
            assert 0.0 <= p <= 1.0
        assert c.p_value_adjusted >= c.p_value - 1e-12 and c.expected_loss >= 0
    for metric in ("click", "reward"):
        assert sum(a.prob_best for a in r.arms if a.metric == metric) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 <= r.srm.p_value <= 1.0
    json.dumps(r.to_dict(), allow_nan=False)


def test_adaptive_allocation_reports_the_sample_ratio_check_as_not_applicable() -> None:
    # The same 204k/196k split that is a mismatch for a fixed 50/50 design is what a bandit is meant to do.
    arms = _two(204_000, 20_400, 196_000, 19_600)
    fixed = analyze_slot("subject", arms, "plain", metrics=["click"], value_metric=None)
    adaptive = analyze_slot("subject", arms, "plain", metrics=["click"], value_metric=None, adaptive=True)
    assert fixed.srm.applicable and fixed.srm.flagged
    assert not adaptive.srm.applicable and not adaptive.srm.flagged
    assert "not applicable" in adaptive.srm.message and adaptive.srm.observed == [204_000, 196_000]
    assert adaptive.decision.verdict != "investigate: sample ratio mismatch"
    # The comparisons themselves do not depend on the allocation being fixed or adaptive.
    assert [c.p_value for c in adaptive.comparisons] == [c.p_value for c in fixed.comparisons]
