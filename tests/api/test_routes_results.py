"""``/v1/experiments/{key}/results`` over a simulated send with a known difference."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.proportion import proportions_ztest

from tests.api.conftest import ADMIN, ADMIN_KEY, SEND
from tests.ui.login import post_key


def test_results_follow_the_contract_and_count_what_was_sent(client, experiment, sent):
    decisions, clicked = sent
    response = client.get(f"/v1/experiments/{experiment}/results", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    arms = {(a["slot"], a["variant"]): a for a in body["arms"]}
    for variant in ("plain", "urgent"):
        mine = [c for d, c in zip(decisions, clicked, strict=True)
                if d["variants"]["subject"]["id"] == variant]
        assert arms[("subject", variant)]["decisions"] == len(mine)
        assert arms[("subject", variant)]["events"]["click"] == sum(mine)
        assert arms[("subject", variant)]["reward_mean"] == pytest.approx(sum(mine) / len(mine))
    assert set(body["srm"]) >= {"p_value", "flagged"}
    assert not body["srm"]["flagged"]


def test_click_comparison_matches_an_independent_z_test(client, experiment, sent):
    body = client.get(f"/v1/experiments/{experiment}/results", headers=ADMIN).json()
    arms = {(a["slot"], a["variant"]): a for a in body["arms"]}
    (comparison,) = [c for c in body["comparisons"]
                     if c["slot"] == "subject" and c["metric"] == "click" and c["variant"] == "urgent"]
    assert comparison["control"] == "plain"
    treat, ctrl = arms[("subject", "urgent")], arms[("subject", "plain")]
    # Reference: statsmodels' pooled two-proportion z-test.
    _, p = proportions_ztest([treat["events"]["click"], ctrl["events"]["click"]],
                             [treat["decisions"], ctrl["decisions"]])
    assert comparison["p_value"] == pytest.approx(p, rel=1e-6)
    rate_t = treat["events"]["click"] / treat["decisions"]
    rate_c = ctrl["events"]["click"] / ctrl["decisions"]
    assert comparison["lift"] == pytest.approx(rate_t / rate_c - 1, rel=1e-9)
    assert comparison["ci"][0] < comparison["lift"] < comparison["ci"][1]
    assert 0.5 < comparison["prob_beat_control"] <= 1
    assert body["decisions"]["subject"]["verdict"]


def test_results_before_any_data_say_what_is_missing(client, experiment):
    body = client.get(f"/v1/experiments/{experiment}/results", headers=ADMIN).json()
    assert body["comparisons"] == []
    assert {"subject", "cta"} <= set(body["skipped"])
    assert "not enough data" in body["skipped"]["subject"]


def test_bad_query_parameters_are_422(client, experiment):
    response = client.get(f"/v1/experiments/{experiment}/results?alpha=2&correction=magic", headers=ADMIN)
    assert response.status_code == 422
    locs = [p["loc"] for p in response.json()["detail"]]
    assert ["query", "alpha"] in locs and ["query", "correction"] in locs


@pytest.mark.parametrize("route", ["results", "report"])
def test_an_alpha_too_small_to_analyse_is_422_at_alpha(client, experiment, sent, route):
    # Below about 1.1e-16, 1 - alpha rounds to 1: the analysis used to be skipped with the internal
    # text "level: must be between 0 and 1, got 1.0" (a 200); the smallest alpha taken is 1e-12.
    response = client.get(f"/v1/experiments/{experiment}/{route}?alpha=1e-17", headers=ADMIN)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["query", "alpha"]
    assert problem["msg"] == "Input should be greater than or equal to 0.000000000001"
    smallest = client.get(f"/v1/experiments/{experiment}/{route}?alpha=1e-12", headers=ADMIN)
    assert smallest.status_code == 200
    if route == "results":
        assert smallest.json()["skipped"] == {} and smallest.json()["comparisons"]


def test_the_experiment_page_refuses_an_alpha_too_small_to_analyse(client, experiment, sent):
    assert post_key(client, ADMIN_KEY, follow_redirects=False).status_code == 303  # the pages' session
    page = client.get(f"/ui/experiments/{experiment}?alpha=1e-17")
    assert page.status_code == 422
    assert "level: must be between 0 and 1" not in page.text
    assert client.get(f"/ui/experiments/{experiment}?alpha=1e-12").status_code == 200


def test_perfectly_separated_arms_are_analysed_as_an_exact_difference(client, experiment):
    recipients = [{"recipient_id": f"z-{i}"} for i in range(60)]
    decisions = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    # every 'urgent' recipient clicks, no 'plain' one does: both rewards have zero spread
    events = [{"event_id": f"z-{i}", "decision_id": d["decision_id"], "type": "click"}
              for i, d in enumerate(decisions) if d["variants"]["subject"]["id"] == "urgent"]
    client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    response = client.get(f"/v1/experiments/{experiment}/results", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "subject" not in body["skipped"]
    by_metric = {c["metric"]: c for c in body["comparisons"] if c["slot"] == "subject"}
    n_urgent = len(events)
    n_plain = len(decisions) - n_urgent
    # clicks: the z-test against statsmodels
    _, p = proportions_ztest([n_urgent, 0], [n_urgent, n_plain])
    assert by_metric["click"]["p_value"] == pytest.approx(p, rel=1e-6)
    # the reward is 1 for every urgent recipient and 0 for every plain one: the difference is exact,
    # so Welch's t is infinite (p = 0), in agreement with P(beat control) = 1
    reward = by_metric["reward"]
    assert reward["prob_beat_control"] == 1.0
    assert reward["p_value"] == 0.0 and reward["significant"] is True
    decision = body["decisions"]["subject"]
    assert "no variant differs" not in decision["reason"]
    assert "urgent" in decision["reason"] and "beat" in decision["reason"]


def test_html_report_once_there_is_data(client, experiment):
    early = client.get(f"/v1/experiments/{experiment}/report", headers=ADMIN)
    assert early.status_code == 409 and "not enough data" in early.json()["detail"]
    recipients = [{"recipient_id": f"h-{i}"} for i in range(200)]
    decisions = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    events = [{"event_id": f"h-{i}", "decision_id": d["decision_id"], "type": "click"}
              for i, d in enumerate(decisions) if i % 7 == 0 or i % 11 == 0]
    client.post("/v1/outcomes", json={"events": events}, headers=SEND)
    page = client.get(f"/v1/experiments/{experiment}/report", headers=ADMIN)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SendLab results: hello" in page.text


def test_multivariate_results_carry_the_factorial_model(client, experiment, sent):
    decisions, clicked = sent
    body = client.get(f"/v1/experiments/{experiment}/results", headers=ADMIN).json()
    (factorial,) = [f for f in body["factorials"] if f["metric"] == "click"]
    # Reference: a row-level logistic regression on the same sends (statsmodels Logit); the service
    # fits counts per combination, which gives the same maximum-likelihood estimates.
    frame = pd.DataFrame({
        "subject": [d["variants"]["subject"]["id"] for d in decisions],
        "cta": [d["variants"]["cta"]["id"] for d in decisions],
        "click": np.array(clicked, dtype=float),
    })
    fit = smf.logit("click ~ C(subject, Treatment('plain')) * C(cta, Treatment('shop'))", frame).fit(disp=0)
    rows = {r["term"]: r for r in factorial["rows"]}
    assert rows["subject=urgent"]["estimate"] == pytest.approx(
        fit.params["C(subject, Treatment('plain'))[T.urgent]"], abs=1e-6)
    assert rows["cta=see"]["p_value"] == pytest.approx(
        fit.pvalues["C(cta, Treatment('shop'))[T.see]"], rel=1e-4)


def test_multivariate_page_shows_the_factorial_table_with_its_interaction(client, experiment, sent):
    body = client.get(f"/v1/experiments/{experiment}/results", headers=ADMIN).json()
    (factorial,) = [f for f in body["factorials"] if f["metric"] == "click"]
    login = post_key(client, ADMIN_KEY, follow_redirects=False)  # the pages' session
    assert login.status_code == 303
    page = client.get(f"/ui/experiments/{experiment}")
    assert page.status_code == 200, page.text
    section = page.text.split('id="factorial-click"', 1)[1].split("</section>", 1)[0]
    row = r'<tr class="([\w-]+)[^"]*"><td>([^<]+)</td><td>[^<]+</td>\s*<td class="r">([\d.]+)</td>'
    rows = re.findall(row, section)
    shown = {html.unescape(term): float(odds) for _, term, odds in rows}
    assert "subject=urgent x cta=see" in shown  # the interaction row
    assert [kind for kind, *_ in rows].count("interaction") == 1
    for r in factorial["rows"]:
        assert shown[r["term"]] == pytest.approx(math.exp(r["estimate"]), abs=5e-4)
