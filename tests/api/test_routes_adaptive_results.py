"""``/results`` of bandit and contextual designs: comparisons from the adaptive estimates, the as-allocated
rates labelled, the policy value block, always-valid results and warnings; fixed splits unchanged."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from analysis.adaptive import AS_ALLOCATED_NOTE
from analysis.lift import absolute_lift, relative_lift
from analysis.stats import ProportionStats
from api.results import analyze_summary
from experiments.adaptive_block import analyze_adaptive_data, estimate_log, result_metrics
from tests.api.adaptive_flow import TRUE_CONTEXTUAL_LIFT, run_bandit, run_contextual
from tests.api.conftest import ADMIN, SEND

BANDIT_RATES = {"plain": 0.05, "urgent": 0.30, "third": 0.06}


def _results(client, key: str) -> dict:
    answer = client.get(f"/v1/experiments/{key}/results?detail=false", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_bandit_results_carry_the_adaptive_blocks(client):
    n = run_bandit(client, "tb", BANDIT_RATES)
    body = _results(client, "tb")
    assert body["arms_note"] == AS_ALLOCATED_NOTE
    assert [a["variant"] for a in body["arms"]] == list(BANDIT_RATES)  # the rates as allocated stay
    assert {c["metric"] for c in body["comparisons"]} == {"reward", "click"}
    reward = {c["variant"]: c for c in body["comparisons"] if c["metric"] == "reward"}
    assert set(reward) == {"urgent", "third"}
    for c in reward.values():
        assert "Hadad" in c["method"] and c["control"] == "plain"
        assert c["always_valid"]["ci"][0] <= c["absolute_lift"] <= c["always_valid"]["ci"][1]
        assert 0 <= c["p_value"] <= 1 and 0 <= c["prob_beat_control"] <= 1
    # urgent's true lift over plain is +0.25 in clicks per decision
    urgent = reward["urgent"]
    assert urgent["absolute_ci"][0] < 0.25 < urgent["absolute_ci"][1]
    assert body["decisions"]["subject"]["winner"] == "urgent"
    assert "as if everyone got it" in body["decisions"]["subject"]["reason"]
    # the as-allocated comparisons are kept, labelled
    assert body["as_allocated_comparisons"]
    assert all(c["note"] == AS_ALLOCATED_NOTE for c in body["as_allocated_comparisons"])

    value = body["policy_value"]
    assert value["as_run"]["decisions"] == n
    assert [a["policy"] for a in value["arms"]] == list(BANDIT_RATES)
    assert value["defaults"]["estimate"] == value["arms"][0]["estimate"]  # the default is plain
    assert math.isclose(value["uniform"]["estimate"], sum(a["estimate"] for a in value["arms"]) / 3)
    # the policy sent most traffic to urgent: it beats the uniform split, and urgent alone beats it
    assert value["as_run"]["estimate"] > value["uniform"]["estimate"]
    for block in [value["as_run"], value["uniform"], value["defaults"], *value["arms"]]:
        assert block["ci"][0] < block["estimate"] < block["ci"][1] and block["effective_n"] > 0
    urgent_value = next(a for a in value["arms"] if a["policy"] == "urgent")
    assert urgent_value["estimate"] == urgent["variant_value"]

    adaptive = body["adaptive"]
    assert adaptive["design"] == "bandit" and adaptive["decisions"] == n
    kinds = {(w["kind"], w["arm"]) for w in adaptive["warnings"]}
    assert ("propensity_floor", "plain") in kinds  # the policy sent plain at its 1% floor
    starved = next(v for v in adaptive["values"] if v["variant"] == "plain" and v["metric"] == "reward")
    assert starved["effective_n"] < starved["decisions"]


def test_contextual_results_report_the_sign_the_as_allocated_difference_reverses(client):
    run_contextual(client, "tc")
    body = _results(client, "tc")
    arms = {a["variant"]: a["reward_mean"] for a in body["arms"]}
    naive = arms["urgent"] - arms["plain"]
    assert naive < 0 < TRUE_CONTEXTUAL_LIFT  # the policy's targeting reverses the sign as allocated
    c = next(c for c in body["comparisons"] if c["metric"] == "reward")
    assert c["as_allocated_lift"] == naive
    assert c["absolute_lift"] > 0
    half = (c["absolute_ci"][1] - c["absolute_ci"][0]) / 2
    assert abs(c["absolute_lift"] - TRUE_CONTEXTUAL_LIFT) < 1.5 * half  # 3 standard errors
    assert "AIPW" in c["method"] and "cross-fitted" in body["adaptive"]["estimator_note"]
    assert body["arms_note"] == AS_ALLOCATED_NOTE
    naive_rows = [x for x in body["as_allocated_comparisons"] if x["metric"] == "reward"]
    assert naive_rows and all(x["lift"] < 0 and x["note"] == AS_ALLOCATED_NOTE for x in naive_rows)


def test_fixed_split_results_are_unchanged(client):
    spec = {"key": "fs", "slots": {"subject": {"variants": [{"id": "plain", "content": "a"},
                                                            {"id": "urgent", "content": "b"}]}},
            "design": {"type": "ab"}, "reward": {"events": {"click": 1.0}}, "consent": {"missing": "allow"}}
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    decisions = client.post("/v1/experiments/fs/assign/batch", headers=SEND,
                            json={"recipients": [{"recipient_id": f"r{i}"} for i in range(400)]}).json()
    events = [{"event_id": f"e{i}", "decision_id": d["decision_id"], "type": "click"}
              for i, d in enumerate(decisions["decisions"]) if i % 7 == 0]
    client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    body = _results(client, "fs")
    assert body.get("policy_value") is None and body.get("adaptive") is None
    assert body.get("as_allocated_comparisons") is None and body.get("arms_note") is None
    assert all(c["method"] is None for c in body["comparisons"])


def test_on_a_fixed_split_the_adaptive_estimates_equal_the_fixed_split_analysis(client):
    # constant propensities, one batch: the adaptive estimator is each arm's sample mean with its usual
    # standard error, so lifts are those of the fixed-split analysis, and so are the reward's intervals;
    # a rate's are the normal ones (Wald, Fieller) of its counts, the fixed split's the score ones
    spec = {"key": "eq", "slots": {"subject": {"variants": [{"id": "plain", "content": "a"},
                                                            {"id": "urgent", "content": "b"}]}},
            "design": {"type": "ab"}, "reward": {"events": {"click": 1.0, "conversion": 3.0}},
            "consent": {"missing": "allow"}}
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    decisions = client.post("/v1/experiments/eq/assign/batch", headers=SEND, json={
        "recipients": [{"recipient_id": f"r{i}"} for i in range(3000)]}).json()["decisions"]
    rng = np.random.default_rng(5)
    events = []
    for d in decisions:
        if rng.random() < (0.10 if d["variants"]["subject"]["id"] == "plain" else 0.13):
            events.append({"event_id": f"c{len(events)}", "decision_id": d["decision_id"], "type": "click"})
            if rng.random() < 0.3:
                events.append({"event_id": f"v{len(events)}", "decision_id": d["decision_id"],
                               "type": "conversion"})
    client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    service = client.app.state.service
    summary = service.summarize("eq")
    fixed = analyze_summary(summary).analyses[0]
    metrics, guardrails = result_metrics(summary)
    adaptive = analyze_adaptive_data(estimate_log(service.read_adaptive("eq")), controls=summary.control,
                                     metrics=metrics, guardrails=guardrails).slots[0]
    means = {a.variant: a.reward_mean for a in summary.arms}
    for variant, value in zip(["plain", "urgent"], adaptive.metric_to_analysis["reward"].values,
                              strict=True):
        assert math.isclose(value.estimate, means[variant], rel_tol=1e-12)
    for comparison in fixed.comparisons:
        a = adaptive.metric_to_analysis[comparison.metric].comparison(comparison.variant)
        assert math.isclose(a.lift, comparison.lift, rel_tol=1e-9)
        assert math.isclose(a.absolute_lift, comparison.absolute_lift, rel_tol=1e-9)
        if comparison.metric == "reward":
            assert np.allclose(a.ci, comparison.ci, rtol=1e-9)
        else:
            arms = {x.variant: x for x in summary.arms}
            counts = [ProportionStats(arms[v].decisions, arms[v].event_counts[comparison.metric])
                      for v in ("plain", "urgent")]
            assert np.allclose(a.absolute_ci, absolute_lift(*counts).ci, rtol=1e-9)
            assert np.allclose(a.ci, relative_lift(*counts).ci, rtol=1e-9)
            assert comparison.ci_method == "score"
            for normal, score in ((a.absolute_ci, comparison.absolute_ci), (a.ci, comparison.ci)):
                # they part as counts shrink: 3.3% of the width for conversion's ~50 events per arm
                assert np.allclose(normal, score, rtol=0, atol=0.05 * (score[1] - score[0]))
            # the Wald p-value with the unpooled variance (the fixed-split z-test pools it)
            p = [arms[v].event_counts[comparison.metric] / arms[v].decisions for v in ("plain", "urgent")]
            n = [arms[v].decisions for v in ("plain", "urgent")]
            se = math.sqrt(sum(pi * (1 - pi) / ni for pi, ni in zip(p, n, strict=True)))
            assert math.isclose(a.p_value, 2 * stats.norm.sf(abs(p[1] - p[0]) / se), rel_tol=1e-9)


def test_a_bandit_before_and_after_its_first_decision_answers_and_names_the_arms_without_support(client):
    from tests.api.adaptive_flow import spec

    assert client.post("/v1/experiments", json=spec("t1", {"type": "bandit", "policy": "ucb"}),
                       headers=ADMIN).status_code == 201
    empty = _results(client, "t1")
    assert empty["policy_value"] is None and empty["adaptive"]["decisions"] == 0
    assert empty["adaptive"]["skipped"] == {"*": "no decision of the policy yet"}
    one = client.post("/v1/experiments/t1/assign", json={"recipient_id": "r"}, headers=SEND).json()
    body = _results(client, "t1")
    chosen = one["variants"]["subject"]["id"]
    other = ({"plain", "urgent"} - {chosen}).pop()
    assert body["adaptive"]["decisions"] == 1
    assert {(w["kind"], w["arm"]) for w in body["adaptive"]["warnings"]} >= {("no_support", other)}
    unsupported = next(a for a in body["policy_value"]["arms"] if a["policy"] == other)
    assert unsupported["estimate"] is None and unsupported["decisions"] == 0
    assert client.get("/v1/experiments/t1/report", headers=ADMIN).status_code in (200, 409)
