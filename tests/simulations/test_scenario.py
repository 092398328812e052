"""Scenario validation: every bad document is refused with the field and the problem."""

from __future__ import annotations

import copy

import pytest

from simulations.data import SimulationInputError
from simulations.scenario import load_scenario, scenario_from_mapping

BASE = {
    "name": "t",
    "variants": ["a", "b"],
    "segments": [
        {
            "name": "s1",
            "share": 0.5,
            "features": {
                "device": {"distribution": "categorical", "values": {"ios": 0.5, "web": 0.5}},
                "recency": {"distribution": "exponential", "scale": 3},
            },
            "rates": {"a": 0.1, "b": 0.2},
        },
        {"name": "s2", "share": 0.5, "rates": {"a": 0.3, "b": 0.1}},
    ],
    "effects": [{"variant": "b", "feature": "device", "equals": "ios", "log_odds": 0.5}],
    "waves": {"count": 3, "recipients": 100, "delay": 1},
}


def _with(path: str, value: object) -> dict:
    doc = copy.deepcopy(BASE)
    target = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is ...:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


def test_the_base_document_is_valid():
    scenario = scenario_from_mapping(BASE)
    assert scenario.variants == ["a", "b"] and scenario.waves.delay == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_with("segments.0.share", 0.7), "segments: shares must sum to 1, got 1.2"),
        (_with("segments.1.rates", {"a": 0.3}), r"segments\[1\] \(s2\).rates: missing variants \['b'\]"),
        (_with("segments.1.rates", {"a": 0.3, "b": 0.1, "c": 0.2}), r"unknown variants \['c'\]"),
        (_with("segments.1.rates", {"a": 1.3, "b": 0.1}), r"segments.1: rates: must be in \[0, 1\]"),
        (_with("variants", ["a", "a"]), "variants: duplicate ids"),
        (_with("variants", ["a"]), "variants: List should have at least 2 items"),
        (_with("effects.0.variant", "z"), r"effects\[0\].variant: unknown variant 'z'"),
        (_with("effects.0.feature", "age"), r"effects\[0\].feature: no segment has a feature 'age'"),
        (_with("effects.0", {"variant": "b", "feature": "device", "per_unit": 0.1}),
         r"effects\[0\]: feature 'device' is not numeric"),
        (_with("effects.0", {"variant": "b", "feature": "device", "equals": "ios"}),
         "a categorical effect needs both equals and log_odds"),
        (_with("segments.0.features.device.values", {"ios": 0.5}), "probabilities must sum to 1, got 0.5"),
        (_with("segments.0.features.recency", {"distribution": "uniform", "low": 2, "high": 1}),
         r"low \(2.0\) must be below high \(1.0\)"),
        (_with("segments.0.features.recency", {"distribution": "zipf"}),
         "does not match any of the expected tags"),
        (_with("segments.0.features.recency", {"distribution": "exponential"}),
         "recency.exponential.scale: Field"),
        (_with("waves.count", 0), "waves.count: Input should be greater than or equal to 1"),
        (_with("waves", ...), "waves: Field required"),
        (_with("waves", {"count": 2}), "waves: count and recipients go together"),
        (_with("waves", {"count": 2, "recipients": 5, "sizes": [5, 5]}), "give either count and recipients"),
        (_with("waves", {"sizes": [10, 0]}), "waves.sizes.1: Input should be greater than or equal to 1"),
        (_with("colour", "red"), "colour: Extra inputs are not permitted"),
        (_with("segments.0.features.segment", {"distribution": "poisson", "lam": 1}),
         "'segment' is reserved"),
    ],
)
def test_bad_scenarios_name_the_field_and_problem(doc, message):
    with pytest.raises(SimulationInputError, match=message):
        scenario_from_mapping(doc)


def test_scenario_files(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("variants: [a, b]\nsegments: [{name: all, share: 1, rates: {a: 0.1, b: 0.2}}]\n"
                    "waves: {count: 2, recipients: 10}\n")
    assert load_scenario(path).segments[0].name == "all"
    path.write_text("variants: [a, b]\nsegments: [{name: all, share: 1, rates: {a: 0.1, b: 0.2}}]\n"
                    "waves: {sizes: [10, 50, 200], delay: 1}\n")
    assert load_scenario(path).waves.wave_sizes == [10, 50, 200]
    path.write_text("variants: [a, b\n")
    with pytest.raises(SimulationInputError, match="not valid YAML"):
        load_scenario(path)
    with pytest.raises(SimulationInputError, match="does not exist"):
        load_scenario(tmp_path / "missing.yaml")
