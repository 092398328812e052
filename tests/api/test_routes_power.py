"""``/v1/power/...`` against the analysis functions and independent references."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.power import (
    PowerInputError,
    plan_bandit,
    plan_test_then_send,
    power_curve,
    sequential_inflation,
    solve_mean,
    solve_rate,
)
from analysis.stats import SampleStats
from api.convert import finite_answer
from api.errors import describe_error, reported_as
from tests.api.conftest import ADMIN, answer_without


def test_rate_matches_statsmodels_and_gives_days(client):
    body = {"baseline": 0.03, "mde": 0.10, "relative": True, "daily": 200_000}
    response = client.post("/v1/power/rate", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    plan = response.json()
    # Reference: statsmodels NormalIndPower on Cohen's h for 0.033 vs 0.03, alpha 0.05, power 0.8.
    h = proportion_effectsize(0.033, 0.03)
    n = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8, ratio=1.0)
    assert plan["per_arm"] == math.ceil(n)
    assert plan["total"] == 2 * math.ceil(n)
    assert plan["days"] == math.ceil(plan["total"] / 200_000)
    assert plan["method"]


def test_rate_unpooled_matches_the_closed_form(client):
    body = {"baseline": 0.10, "mde": 0.02, "method": "unpooled"}
    plan = client.post("/v1/power/rate", json=body, headers=ADMIN).json()
    # n = (z_{1-a/2} + z_{1-b})^2 (p0 q0 + p1 q1) / (p1 - p0)^2  (Chow, Shao & Wang 2008, 4.2)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    n = z**2 * (0.10 * 0.90 + 0.12 * 0.88) / 0.02**2
    assert plan["per_arm"] == math.ceil(n)
    assert plan["days"] is None


def test_mean_matches_statsmodels_t_test(client):
    plan = client.post("/v1/power/mean", json={"sd": 10.0, "mde": 1.0}, headers=ADMIN).json()
    n = TTestIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, ratio=1.0)  # Cohen's d = 1 / 10
    assert plan["per_arm"] == math.ceil(n)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"baseline": 1.5, "mde": 0.1}, "baseline"),
        ({"baseline": 0.03, "mde": 0.0}, "mde"),
        ({"baseline": 0.03, "mde": 0.1, "alpha": 2}, "alpha"),
        ({"baseline": 0.03, "mde": 0.1, "arms": 1}, "arms"),
        ({"baseline": 0.03, "mde": 0.1, "daily": 0}, "daily"),
        ({"baseline": 0.03, "mde": 0.1, "alternative": "sideways"}, "alternative"),
        ({"baseline": "high", "mde": 0.1}, "baseline"),
        ({"mde": 0.1}, "baseline"),
        ({"baseline": 0.03, "mde": 0.1, "bogus": 1}, "bogus"),
    ],
)
def test_bad_rate_inputs_are_422_naming_the_field(client, body, field):
    response = client.post("/v1/power/rate", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert problem["msg"]


# ---- the inverse questions, values, curves and campaign plans ----------------------------------------

PAST = [0.0, 0.0, 12.5, 0.0, 40.0, 3.0, 0.0, 0.0, 7.25, 0.0, 19.9, 0.0]


def post(client, path: str, body: dict) -> dict:
    response = client.post(path, json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_rate_mde_matches_statsmodels(client):
    data = post(client, "/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 20_000})
    assert data == answer_without(solve_rate(0.03, n_per_arm=20_000))
    # Reference: statsmodels solves Cohen's h for 20,000 per arm (loose solver tolerance: rel 1e-4).
    h = NormalIndPower().solve_power(effect_size=None, nobs1=20_000, alpha=0.05, power=0.8)
    assert data["effect_size"] == pytest.approx(h, rel=1e-4)
    down = post(client, "/v1/power/rate/mde",
                {"baseline": 0.03, "n_per_arm": 20_000, "direction": "decrease"})
    assert down["mde_absolute"] < 0 < data["mde_absolute"]


def test_rate_power_matches_statsmodels(client):
    body = {"baseline": 0.03, "mde": 0.10, "relative": True, "n_per_arm": 20_000, "alternative": "one-sided"}
    data = post(client, "/v1/power/rate/power", body)
    assert data == answer_without(solve_rate(0.03, mde=0.10, n_per_arm=20_000, power=None, relative=True,
            alternative="one-sided"))
    h = proportion_effectsize(0.033, 0.03)
    reference = NormalIndPower().power(h, nobs1=20_000, alpha=0.05, alternative="larger")
    assert data["power"] == pytest.approx(reference, rel=1e-12)


def test_mean_from_values_and_from_summary_statistics(client):
    body = {"mde": 0.10, "relative": True}
    from_values = post(client, "/v1/power/mean", {**body, "values": PAST})
    values = np.asarray(PAST)
    summary = {"n": values.size, "sum": float(values.sum()), "sum_squares": float((values**2).sum())}
    from_summary = post(client, "/v1/power/mean", {**body, "summary": summary})
    plan = solve_mean(None, mde=0.10, sample=PAST, relative=True)
    assert from_values["per_arm"] == from_summary["per_arm"] == plan.n_per_arm
    # Reference: numpy's sd (ddof=1) and mean, statsmodels TTestIndPower on d = 0.1 mean / sd.
    sd, mean = np.std(values, ddof=1), values.mean()
    assert from_summary["details"]["sd"] == pytest.approx(sd, rel=1e-9)
    assert from_values["per_arm"] == math.ceil(
        TTestIndPower().solve_power(effect_size=0.1 * mean / sd, alpha=0.05, power=0.8))
    given = post(client, "/v1/power/mean", {"sd": 10.0, "mde": 1.0})  # the old body still answers
    assert given["details"]["sd_source"] == "given"


def test_mean_mde_and_power_match_statsmodels(client):
    mde = post(client, "/v1/power/mean/mde", {"sd": 12.0, "n_per_arm": 20_000})
    assert mde == answer_without(solve_mean(12.0, n_per_arm=20_000), "sd_source")
    d = TTestIndPower().solve_power(effect_size=None, nobs1=20_000, alpha=0.05, power=0.8)
    assert mde["mde_absolute"] == pytest.approx(12 * d, rel=1e-4)
    power = post(client, "/v1/power/mean/power", {"values": PAST, "mde": 2.0, "n_per_arm": 5_000})
    assert power == answer_without(solve_mean(None, mde=2.0, n_per_arm=5_000, power=None, sample=PAST))
    reference = TTestIndPower().power(2.0 / np.std(PAST, ddof=1), nobs1=5_000, alpha=0.05)
    assert power["power"] == pytest.approx(reference, rel=1e-12)


def test_curves_as_json_points(client):
    over_n = post(client, "/v1/power/rate/curve",
                  {"baseline": 0.03, "mde": 0.1, "relative": True, "points": 5})
    curve = power_curve("rate", baseline=0.03, mde=0.1, relative=True, points=5)
    assert over_n["over"] == "n" and over_n["points"] == curve.rows()
    h = proportion_effectsize(0.033, 0.03)
    for point in over_n["points"]:
        reference = NormalIndPower().power(h, nobs1=point["n_per_arm"], alpha=0.05)
        assert point["power"] == pytest.approx(reference, rel=1e-12)
    over_effect = post(client, "/v1/power/mean/curve",
                       {"sd": 12.0, "n_per_arm": 20_000, "x": [0.1, 0.3, 0.5]})
    assert over_effect["over"] == "effect"
    assert [p["effect"] for p in over_effect["points"]] == [0.1, 0.3, 0.5]
    for point in over_effect["points"]:
        reference = TTestIndPower().power(point["effect"] / 12, nobs1=20_000, alpha=0.05)
        assert point["power"] == pytest.approx(reference, rel=1e-12)


def test_test_then_send_closed_forms(client):
    data = post(client, "/v1/power/test-then-send", {"list_size": 200_000, "baseline": 0.03, "lift": 0.15})
    assert data == json.loads(json.dumps(plan_test_then_send(200_000, 0.03, lift=0.15).to_dict()))
    n, p0, p1 = data["per_arm"], 0.03, 0.0345
    assert data["prob_correct_winner"] == pytest.approx(
        stats.norm.cdf((p1 - p0) / math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n)), rel=1e-9)
    assert data["power"] == pytest.approx(
        NormalIndPower().power(proportion_effectsize(p1, p0), nobs1=n, alpha=0.05), rel=1e-9)
    # Feit & Berman (2019): n* = sqrt(N r / 4 + (3 r / 4)^2) - 3 r / 4 with r = mu (1 - mu) / sigma^2
    prior = post(client, "/v1/power/test-then-send",
                 {"list_size": 100_000, "baseline": 0.1, "prior_sd": 0.02})
    r = 0.1 * 0.9 / 0.02**2
    assert prior["per_arm"] in (math.floor(math.sqrt(100_000 * r / 4 + (0.75 * r) ** 2) - 0.75 * r),
                                math.ceil(math.sqrt(100_000 * r / 4 + (0.75 * r) ** 2) - 0.75 * r))


def test_sequential_is_seeded_and_matches_jennison_turnbull(client):
    data = post(client, "/v1/power/sequential", {"design": "obrien_fleming", "looks": 5, "seed": 4})
    assert data == {**sequential_inflation("obrien_fleming", looks=5, rng=np.random.default_rng(4)).to_dict(),
                    "seed": 4}
    # Jennison & Turnbull (2000), tables 2.3 and 2.4: O'Brien-Fleming, K = 5, alpha 0.05, power 0.8:
    # C_B = 2.040, R_B = 1.028.
    assert data["critical_value"] == pytest.approx(2.040, abs=1e-3)
    assert data["inflation"] == pytest.approx(1.028, abs=1e-3)
    msprt = post(client, "/v1/power/sequential", {"fixed_n": 1000, "replications": 2_000, "seed": 9})
    expected = sequential_inflation("msprt", fixed_n=1000, replications=2_000, rng=np.random.default_rng(9))
    assert msprt == {**expected.to_dict(), "seed": 9}


def test_bandit_is_the_seeded_simulation(client):
    body = {"rates": [0.04, 0.05], "horizon": 4_000, "batches": 5, "replications": 6, "seed": 11}
    data = post(client, "/v1/power/bandit", body)
    plan = plan_bandit([0.04, 0.05], 4_000, rng=np.random.default_rng(11), batches=5, replications=6)
    assert data == {**json.loads(json.dumps(plan.to_dict())), "seed": 11}
    assert data["losing_share_fixed"] == 0.5
    assert post(client, "/v1/power/bandit", body) == data


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 1}, "n_per_arm"),
        ("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 10**30}, "n_per_arm"),
        ("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 100, "power": 1.0}, "power"),
        ("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 100, "power": 0.01}, "power"),
        ("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 100, "direction": "up"}, "direction"),
        ("/v1/power/rate/mde", {"baseline": 0.03}, "n_per_arm"),
        ("/v1/power/rate/power", {"baseline": 0.03, "mde": 0.0, "n_per_arm": 100}, "mde"),
        ("/v1/power/rate/power", {"baseline": 0.03, "mde": 0.1, "n_per_arm": 1e300}, "n_per_arm"),
        ("/v1/power/rate/power", {"baseline": 0.03, "mde": 0.1, "n_per_arm": 100, "arms": 10**6}, "arms"),
        ("/v1/power/rate/power", {"baseline": 0.03, "mde": 1e-300, "n_per_arm": 100}, "mde"),
        ("/v1/power/rate", {"baseline": 0.03, "mde": 0.1, "ratio": 1e300}, "ratio"),
        ("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 100, "ratio": 1e-300}, "ratio"),
        ("/v1/power/mean", {"sd": 1.0, "mde": 0.1, "ratio": 1e300}, "ratio"),
        ("/v1/power/mean/curve", {"sd": 1.0, "mde": 0.1, "ratio": 1e300}, "ratio"),
        ("/v1/power/mean", {"mde": 1.0}, "sd"),
        ("/v1/power/mean", {"sd": 1e308, "mde": 1e-308}, "mde"),
        ("/v1/power/mean", {"values": [1.0, 1.0, 1.0], "mde": 1.0}, "values"),
        ("/v1/power/mean", {"values": [1.0], "mde": 1.0}, "values"),
        ("/v1/power/mean", {"summary": {"n": 3, "sum": 3.0, "sum_squares": 3.0}, "mde": 1.0}, "summary"),
        ("/v1/power/mean/mde", {"values": [2.0, 2.0], "n_per_arm": 100}, "values"),
        ("/v1/power/mean/curve", {"values": [2.0, 2.0], "mde": 1.0}, "values"),
        ("/v1/power/mean", {"sd": 1.0, "values": [1.0, 2.0], "mde": 1.0}, "sd"),
        ("/v1/power/mean", {"summary": {"n": 1, "sum": 1.0, "sum_squares": 1.0}, "mde": 1.0}, "summary"),
        ("/v1/power/mean/mde", {"sd": 1.0, "n_per_arm": 10**18}, "n_per_arm"),
        ("/v1/power/mean/power", {"sd": 1e-300, "mde": 1e300, "n_per_arm": 100}, "mde"),
        ("/v1/power/rate/curve", {"baseline": 0.03, "mde": 0.1, "points": 5000}, "points"),
        ("/v1/power/rate/curve", {"baseline": 0.03, "mde": 0.1, "x": [10.0, 5.0]}, "x"),
        ("/v1/power/rate/curve", {"baseline": 0.03, "mde": 0.1, "power": 1.0}, "power"),
        ("/v1/power/mean/curve", {"sd": 1.0, "over": "n"}, "mde"),
        ("/v1/power/test-then-send", {"list_size": 1000, "rates": [0.1, 0.1]}, "rates"),
        ("/v1/power/test-then-send", {"list_size": 1000, "baseline": 0.1, "prior_sd": 0.9}, "prior_sd"),
        ("/v1/power/test-then-send", {"list_size": 10**20, "rates": [0.1, 0.2]}, "list_size"),
        ("/v1/power/sequential", {"design": "pocock", "looks": 11}, "looks"),
        ("/v1/power/sequential", {"design": "pocock", "alpha": 1e-9}, "alpha"),
        ("/v1/power/sequential", {"replications": 10**7}, "replications"),
        ("/v1/power/sequential", {"seed": -1}, "seed"),
        ("/v1/power/bandit", {"rates": [0.1, 0.2], "horizon": 10**9}, "replications"),
        ("/v1/power/bandit", {"rates": [0.1, 0.1], "horizon": 100}, "rates"),
        ("/v1/power/bandit", {"rates": [0.1, 0.2], "horizon": 100, "replications": 1}, "replications"),
    ],
)
def test_bad_planning_inputs_are_422_naming_the_field(client, path, body, field):
    response = client.post(path, json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert len(problems) == 1 and problems[0]["msg"]
    assert problems[0]["loc"][:2] == ["body", field], problems


SIZED_ROUTES = [  # every route taking a number of recipients, with that field
    ("/v1/power/rate/power", {"baseline": 0.03, "mde": 0.1}, "n_per_arm"),
    ("/v1/power/mean/power", {"sd": 1.0, "mde": 0.1}, "n_per_arm"),
    ("/v1/power/rate/mde", {"baseline": 0.03}, "n_per_arm"),
    ("/v1/power/mean/mde", {"sd": 1.0}, "n_per_arm"),
    ("/v1/power/rate/curve", {"baseline": 0.03, "points": 3}, "n_per_arm"),
    ("/v1/power/mean/curve", {"sd": 1.0, "points": 3}, "n_per_arm"),
    ("/v1/power/rate", {"baseline": 0.03, "mde": 0.1}, "daily"),
    ("/v1/power/mean", {"sd": 1.0, "mde": 0.1}, "daily"),
    ("/v1/power/test-then-send", {"baseline": 0.03, "lift": 0.15}, "list_size"),
    ("/v1/power/sequential", {"design": "pocock"}, "fixed_n"),
    ("/v1/power/bandit", {"rates": [0.03, 0.036], "replications": 2, "n_draws": 100}, "horizon"),
]


@pytest.mark.parametrize(("path", "body", "field"), SIZED_ROUTES)
def test_a_size_is_a_whole_number_of_recipients(client, path, body, field):
    response = client.post(path, json={**body, field: 2000.5}, headers=ADMIN)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", field] and "integer" in problem["msg"]
    # an integral number written as a float (1000.0, 2e3) is that whole number
    assert post(client, path, {**body, field: 2e3}) == post(client, path, {**body, field: 2000})


def test_the_largest_size_answers_in_any_notation(client):
    body = {"baseline": 0.03, "mde": 1e-6}
    as_float = post(client, "/v1/power/rate/power", {**body, "n_per_arm": 1e15})
    assert as_float == post(client, "/v1/power/rate/power", {**body, "n_per_arm": 10**15})
    assert as_float == answer_without(solve_rate(0.03, mde=1e-6, n_per_arm=10**15, power=None))


IMPOSSIBLE_SUMS = {"n": 10, "sum": 10.0, "sum_squares": 5.0}  # sum_squares < sum^2/n = 10


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/power/mean", {"mde": 0.1}),
     ("/v1/power/mean/mde", {"n_per_arm": 1000}),
     ("/v1/power/mean/power", {"mde": 0.1, "n_per_arm": 1000}),
     ("/v1/power/mean/curve", {"mde": 0.1})],
)
def test_mean_routes_name_the_spread_fields_the_request_used(client, path, body):
    def problem(extra: dict) -> dict:
        response = client.post(path, json={**body, **extra}, headers=ADMIN)
        assert response.status_code == 422, response.text
        (found,) = response.json()["detail"]
        return found

    # sums no real values have: said so, on the field, rather than "no spread (all values equal)"
    assert problem({"summary": IMPOSSIBLE_SUMS}) == {
        "loc": ["body", "summary", "sum_squares"],
        "msg": "summary.sum_squares is less than sum^2/n (5 < 10): not the sums of real values."}
    # sd with past values: the request's own fields, never the Python argument "sample"
    assert problem({"sd": 1.0, "values": [1.0, 2.0, 3.0]}) == {
        "loc": ["body", "sd"], "msg": "values and sd were both given; give one of them."}
    assert problem({"sd": 1.0, "summary": {"n": 3, "sum": 6.0, "sum_squares": 14.0}}) == {
        "loc": ["body", "sd"], "msg": "summary and sd were both given; give one of them."}


def test_an_error_on_a_part_of_a_field_is_one_line_without_repeating_it():
    with pytest.raises(PowerInputError) as caught, reported_as(sample="summary"):
        solve_mean(None, mde=0.1, sample=SampleStats(10, 10.0, 5.0))
    answer = describe_error(caught.value)
    assert answer.problems[0][0] == ("body", "summary", "sum_squares")
    assert answer.one_line() == ("summary.sum_squares is less than sum^2/n (5 < 10): not the sums of real "
                                 "values.")


def test_combination_problems_are_422_on_the_body(client):
    for path, body in [("/v1/power/test-then-send", {"list_size": 1000}),
                       ("/v1/power/mean", {"values": [1.0, 2.0], "summary": {"n": 2, "sum": 3.0,
                                                                              "sum_squares": 5.0},
                                           "mde": 1.0})]:
        response = client.post(path, json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        (problem,) = response.json()["detail"]
        assert problem["loc"] == ["body"] and "give" in problem["msg"]


def test_a_non_finite_answer_is_a_bad_input_not_invalid_json():
    with pytest.raises(PowerInputError, match="^power is not a finite number for these inputs"):
        finite_answer({"power": math.nan, "x": [1.0]})
    with pytest.raises(PowerInputError, match="^x is not a finite number"):
        finite_answer({"power": 0.5, "x": [1.0, math.inf]})
    assert finite_answer({"power": 0.5, "x": [1.0]}) == {"power": 0.5, "x": [1.0]}
