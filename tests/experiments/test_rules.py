"""Conditions and targeting rules: every operator, missing attributes, overlap warnings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.rules import (
    AllOf,
    AnyOf,
    Compare,
    NotOf,
    apply_rules,
    compile_rules,
    evaluate,
    find_conflicts,
    find_example,
    holds,
    parse_condition,
)
from experiments.spec import Rule


def cond(raw: dict[str, Any]) -> Any:
    parsed, problems = parse_condition(raw, "when")
    assert not problems, problems
    return parsed


CASES = [
    ({"attr": "location", "op": "eq", "value": "CA"}, {"location": "CA"}, True),
    ({"attr": "location", "op": "eq", "value": "CA"}, {"location": "NY"}, False),
    ({"attr": "location", "op": "ne", "value": "CA"}, {"location": "NY"}, True),
    ({"attr": "location", "op": "ne", "value": "CA"}, {}, False),  # missing: false, even for ne
    ({"attr": "segment", "op": "in", "value": ["vip", "new"]}, {"segment": "vip"}, True),
    ({"attr": "segment", "op": "in", "value": ["vip", "new"]}, {"segment": "old"}, False),
    ({"attr": "segment", "op": "not_in", "value": ["vip"]}, {"segment": "old"}, True),
    ({"attr": "segment", "op": "not_in", "value": ["vip"]}, {}, False),
    ({"attr": "recency_days", "op": "lt", "value": 7}, {"recency_days": 6}, True),
    ({"attr": "recency_days", "op": "lt", "value": 7}, {"recency_days": 7}, False),
    ({"attr": "recency_days", "op": "lte", "value": 7}, {"recency_days": 7}, True),
    ({"attr": "recency_days", "op": "gt", "value": 7}, {"recency_days": 7.5}, True),
    ({"attr": "recency_days", "op": "gte", "value": 7}, {"recency_days": 6.9}, False),
    ({"attr": "recency_days", "op": "gt", "value": 7}, {"recency_days": "9"}, False),  # a string is no number
    ({"attr": "recency_days", "op": "gt", "value": 0}, {"recency_days": True}, False),  # nor is a bool
    ({"attr": "device", "op": "exists"}, {"device": "ios"}, True),
    ({"attr": "device", "op": "exists"}, {"device": None}, False),
    ({"attr": "device", "op": "exists", "value": False}, {}, True),
    ({"attr": "tags", "op": "contains", "value": "outdoor"}, {"tags": ["outdoor", "garden"]}, True),
    ({"attr": "tags", "op": "contains", "value": "outdoor"}, {"tags": ["garden"]}, False),
    ({"attr": "email", "op": "contains", "value": "@corp"}, {"email": "a@corp.com"}, True),
    ({"attr": "consent", "op": "eq", "value": True}, {"consent": 1}, False),  # bool is not int
    ({"attr": "count", "op": "eq", "value": 1}, {"count": 1.0}, True),
    (
        {"all": [{"attr": "a", "op": "eq", "value": 1}, {"attr": "b", "op": "eq", "value": 2}]},
        {"a": 1, "b": 2},
        True,
    ),
    (
        {"all": [{"attr": "a", "op": "eq", "value": 1}, {"attr": "b", "op": "eq", "value": 2}]},
        {"a": 1},
        False,
    ),
    ({"any": [{"attr": "a", "op": "eq", "value": 1}, {"attr": "b", "op": "eq", "value": 2}]}, {"b": 2}, True),
    ({"not": {"attr": "a", "op": "eq", "value": 1}}, {"a": 2}, True),
    ({"not": {"attr": "a", "op": "eq", "value": 1}}, {}, True),  # not(false because missing)
]


@pytest.mark.parametrize(("raw", "context", "expected"), CASES)
def test_operators(raw: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    c = cond(raw)
    assert holds(c, context) is expected
    assert evaluate(c, context)[0] is expected


def test_missing_attribute_is_false_and_the_explanation_says_so() -> None:
    c = cond(
        {
            "all": [
                {"attr": "location", "op": "eq", "value": "CA"},
                {"attr": "last_category", "op": "eq", "value": "outdoor"},
            ]
        }
    )
    result, lines = evaluate(c, {"location": "CA"})
    assert result is False
    assert lines == [
        "location eq 'CA': true (location='CA')",
        "last_category eq 'outdoor': false (last_category is missing)",
    ]


def test_parsed_structure() -> None:
    c = cond({"any": [{"not": {"attr": "a", "op": "exists"}}, {"attr": "b", "op": "in", "value": [1]}]})
    assert c == AnyOf((NotOf(Compare("a", "exists", True)), Compare("b", "in", [1])))
    assert isinstance(cond({"all": [{"attr": "a", "op": "eq", "value": 1}]}), AllOf)


def _rules(*raw: dict[str, Any]) -> list[Any]:
    return compile_rules([Rule.model_validate(r) for r in raw])


SLOTS = {"cta": ["shop", "see", "buy"], "subject": ["plain", "urgent"]}


def test_overlapping_rules_that_disagree_are_reported_with_an_example() -> None:
    rules = _rules(
        {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"cta": ["shop"]}},
        {"when": {"attr": "recency_days", "op": "lt", "value": 7}, "force": {"cta": "see"}},
    )
    warnings = find_conflicts(rules)
    assert len(warnings) == 1
    assert warnings[0].startswith("rules[0] and rules[1] overlap and disagree (cta: ['shop'] vs ['see'])")
    example = find_example([rules[0].when, rules[1].when])
    assert example is not None and f"{example}" in warnings[0]
    assert holds(rules[0].when, example) and holds(rules[1].when, example)


def test_exclusive_or_agreeing_rules_are_not_reported() -> None:
    exclusive = _rules(
        {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"cta": ["shop"]}},
        {"when": {"attr": "location", "op": "in", "value": ["NY", "TX"]}, "restrict": {"cta": ["see"]}},
    )
    assert find_conflicts(exclusive) == []
    agreeing = _rules(
        {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"cta": ["shop"]}},
        {"when": {"attr": "device", "op": "eq", "value": "ios"}, "restrict": {"cta": ["shop"]}},
    )
    assert find_conflicts(agreeing) == []
    different_slots = _rules(
        {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"cta": ["shop"]}},
        {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"subject": ["plain"]}},
    )
    assert find_conflicts(different_slots) == []
    contradiction = _rules(
        {
            "when": {
                "all": [{"attr": "age", "op": "gt", "value": 30}, {"attr": "age", "op": "lt", "value": 20}]
            },
            "restrict": {"cta": ["shop"]},
        },
        {"when": {"attr": "age", "op": "exists"}, "restrict": {"cta": ["see"]}},
    )
    assert find_conflicts(contradiction) == []


def test_rules_intersect_and_an_emptying_rule_is_ignored_for_that_slot() -> None:
    rules = _rules(
        {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"cta": ["shop", "see"]}},
        {"when": {"attr": "device", "op": "eq", "value": "ios"}, "restrict": {"cta": ["see", "buy"]}},
        {"when": {"attr": "vip", "op": "eq", "value": True}, "force": {"cta": "buy"}},
    )
    allowed, _ = apply_rules(rules, SLOTS, {"location": "CA", "device": "ios"})
    assert allowed == {"cta": frozenset({"see"}), "subject": frozenset({"plain", "urgent"})}
    allowed, lines = apply_rules(rules, SLOTS, {"location": "CA", "device": "ios", "vip": True}, explain=True)
    assert allowed["cta"] == frozenset({"see"})
    assert "rules[2]: ignored for slot 'cta' (it would leave no variant)" in lines
    allowed, lines = apply_rules(rules, SLOTS, {}, explain=True)
    assert allowed["cta"] == frozenset(SLOTS["cta"])
    assert lines[0] == "rules[0]: does not apply (location eq 'CA': false (location is missing))"


atoms = st.builds(
    lambda attr, op, value: {"attr": attr, "op": op, "value": value},
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["eq", "ne", "lt", "gte"]),
    st.integers(-3, 3),
) | st.builds(
    lambda attr, values, op: {"attr": attr, "op": op, "value": values},
    st.sampled_from(["a", "b"]),
    st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=2),
    st.sampled_from(["in", "not_in"]),
)
conditions = st.recursive(
    atoms,
    lambda inner: (
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda x: {"not": x}, inner)
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None)
@given(conditions, conditions)
def test_a_found_example_satisfies_both_conditions(raw_a: dict[str, Any], raw_b: dict[str, Any]) -> None:
    a, b = cond(raw_a), cond(raw_b)
    example = find_example([a, b])
    if example is not None:
        assert holds(a, example) and holds(b, example)


GRID = [None, *range(-4, 5), "x", "y", "z", "w"]


@settings(max_examples=40, deadline=None)
@given(conditions, conditions)
def test_an_example_is_found_whenever_a_brute_force_grid_has_one(
    raw_a: dict[str, Any], raw_b: dict[str, Any]
) -> None:
    import itertools

    a, b = cond(raw_a), cond(raw_b)
    exists = any(
        holds(a, ctx) and holds(b, ctx)
        for ctx in (
            {k: v for k, v in zip("abc", combo, strict=True) if v is not None}
            for combo in itertools.product(GRID, repeat=3)
        )
    )
    assert (find_example([a, b]) is not None) == exists
