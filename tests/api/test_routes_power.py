"""``/v1/power/rate`` and ``/mean`` against independent references."""

from __future__ import annotations

import math

import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from tests.api.conftest import ADMIN


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
