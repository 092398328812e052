"""Bad input that used to be a 500 is a 422 with its path."""

from __future__ import annotations

import copy

import pytest

from tests.api.conftest import ADMIN, SPEC


def spec_with(**changes):
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    ("changes", "loc", "words"),
    [
        ({"design": {"type": []}}, ["body", "design", "type"], "Input should be"),
        ({"design": {"type": {"x": 1}, "policy": []}}, ["body", "design", "type"], "Input should be"),
        ({"eligibility": {"attr": "x", "op": {}, "value": 1}}, ["body", "eligibility", "op"], "unknown op"),
        ({"eligibility": {"attr": "x", "op": ["lt"], "value": 1}},
         ["body", "eligibility", "op"], "unknown op"),
        ({"rules": [{"when": {"attr": "x", "op": {}, "value": 1}, "force": {"cta": "shop"}}]},
         ["body", "rules", 0, "when", "op"], "unknown operator"),
    ],
)
def test_unhashable_design_types_and_operators_are_422(client, changes, loc, words) -> None:
    response = client.post("/v1/experiments", json=spec_with(**changes), headers=ADMIN)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["loc"] == loc and words in p["msg"] for p in problems), problems
