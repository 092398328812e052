"""Variant content as Liquid templates: strict rendering, the sandbox, and the checks at spec time."""

from __future__ import annotations

import time
from typing import Any

import pytest

from experiments.content import (
    LOOP_LIMIT,
    OUTPUT_LIMIT,
    TemplateProblem,
    render_content,
    render_leniently,
    template_fields,
    template_problem,
    try_render,
)
from experiments.errors import SpecError
from experiments.spec import content_warnings, parse_spec

GREETING = "{{ first_name | default: 'there' }}, your spring picks"


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"first_name": "Ada"}, "Ada, your spring picks"),
        ({}, "there, your spring picks"),
        ({"first_name": None}, "there, your spring picks"),  # null is missing, as in the rules
        ({"first_name": ""}, "there, your spring picks"),  # Liquid's default also replaces empty strings
    ],
)
def test_default_filter_fills_a_missing_field(context: dict[str, Any], expected: str) -> None:
    assert render_content(GREETING, context) == expected


def test_plain_text_is_returned_as_is_even_with_liquid_like_characters() -> None:
    assert render_content("50% off {not a tag}", {}) == "50% off {not a tag}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name }}, your spring picks",  # output of a missing field: an error, never a blank
        "Hi {{ profile.city }}",  # nested lookup of a missing mapping
        "{{ first_name }}",  # would render blank
    ],
)
def test_missing_field_without_default_does_not_render(source: str) -> None:
    with pytest.raises(TemplateProblem, match="undefined"):
        render_content(source, {"segment": "vip"})
    assert try_render(source, {}).text is None


def test_blank_output_is_refused() -> None:
    with pytest.raises(TemplateProblem, match="blank"):
        render_content("{% if vip %}VIP offer{% endif %}", {"vip": False})


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"segment": "vip"}, "Early access for you"),
        ({"segment": "new"}, "Welcome: 20% off"),
        ({}, "Welcome: 20% off"),  # a condition over a missing field is false, as a rule's comparison is
        ({"recency_days": 40}, "We miss you: 20% off"),
    ],
)
def test_conditional_blocks(context: dict[str, Any], expected: str) -> None:
    source = (
        "{% if segment == 'vip' %}Early access for you{% elsif recency_days > 30 %}We miss you: 20% off"
        "{% else %}Welcome: 20% off{% endif %}"
    )
    assert render_content(source, context) == expected


def test_values_are_read_as_keys_only() -> None:
    # Python attributes of the values are not reachable: a dict's methods, a string's class
    for source in ("{{ offer.items }}", "{{ name.__class__ }}", "{{ offer.__class__.__mro__ }}"):
        result = try_render(source, {"offer": {"pct": 20}, "name": "Ada"})
        assert result.text is None and "undefined" in str(result.problem)
    assert render_content("{{ offer.pct }}% off", {"offer": {"pct": 20}}) == "20% off"


def test_objects_in_the_context_are_not_exposed() -> None:
    class Secret:
        def __getitem__(self, key: str) -> str:
            return "leaked"

        def __str__(self) -> str:
            return "leaked"

    assert try_render("{{ thing.password }}", {"thing": Secret()}).text is None
    assert try_render("{{ thing }}", {"thing": Secret()}).text is None


@pytest.mark.parametrize("source", ["{% include 'secrets.txt' %}", "{% render '/etc/passwd' %}"])
def test_file_access_tags_do_not_exist(source: str) -> None:
    problem = template_problem(source)
    assert problem is not None and "unexpected tag" in problem


def test_huge_loop_is_refused_quickly() -> None:
    start = time.perf_counter()
    result = try_render("{% for i in (1..100000000) %}x{% endfor %}", {})
    assert result.text is None and "loop iteration limit" in str(result.problem)
    nested = try_render("{% for i in (1..5000) %}{% for j in (1..5000) %}x{% endfor %}{% endfor %}", {})
    assert nested.text is None
    assert time.perf_counter() - start < 5.0  # bounded work, not a benchmark: the limits stop the loops


def test_loop_under_the_limit_renders() -> None:
    assert render_content(f"{{% for i in (1..{LOOP_LIMIT}) %}}x{{% endfor %}}", {}) == "x" * LOOP_LIMIT


def test_huge_output_is_refused() -> None:
    result = try_render("{{ big }}{{ big }}", {"big": "y" * (OUTPUT_LIMIT // 2 + 10)})
    assert result.text is None and "limit" in str(result.problem)
    doubling = "{% assign s = 'xxxxxxxxxx' %}" + "{% assign s = s | append: s %}" * 40 + "{{ s }}"
    assert try_render(doubling, {}).text is None  # 10 * 2**40 characters: stopped by a limit


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ first_name | shout }}", "unknown filter 'shout'"),
        ("{% if vip %}VIP", "expected tag endif"),
        ("{{ first_name ", "expected"),
        ("{% frobnicate %}", "unexpected tag 'frobnicate'"),
    ],
)
def test_template_problems(source: str, problem: str) -> None:
    found = template_problem(source)
    assert found is not None and problem in found


def test_template_fields() -> None:
    source = "{{ first_name | default: 'x' }} {% if segment == 'vip' %}{{ offer.pct }}{% endif %}"
    assert template_fields(source) == {"first_name", "segment", "offer"}
    assert template_fields("Shop now") == frozenset()


def _spec(subject_variants: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "key": "tpl",
        "slots": {"subject": {"variants": subject_variants}},
        "design": {"type": "ab"},
        **extra,
    }


def test_spec_reports_template_problems_with_their_paths() -> None:
    raw = _spec(
        [
            {"id": "plain", "content": "Spring sale"},
            {"id": "loud", "content": "{{ first_name | shout }}, spring sale"},
            {"id": "broken", "content": "{% if vip %}VIP"},
        ]
    )
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    text = str(info.value)
    assert "slots.subject.variants[1].content: unknown filter 'shout'" in text
    assert "slots.subject.variants[2].content: expected tag endif" in text


def test_a_default_that_needs_fields_is_warned_about() -> None:
    raw = _spec(
        [{"id": "hi", "content": "{{ first_name }}, spring sale"}, {"id": "plain", "content": "Spring sale"}]
    )
    (warning,) = content_warnings(parse_spec(raw))
    assert warning.startswith("slots.subject.variants[0].content: the default variant is the fallback")
    assert "'first_name' is undefined" in warning
    assert content_warnings(parse_spec({**raw, "default": {"subject": "plain"}})) == []
    assert content_warnings(parse_spec(_spec([{"id": "hi", "content": GREETING}]))) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hello {{ first_name }}", "Hello"),
        ("Hello {{ first_name }}, spring picks", "Hello, spring picks"),
        ("{{ first_name }}", None),  # blank: no text to fall back to
        ("Spring sale", "Spring sale"),
    ],
)
def test_lenient_rendering_leaves_missing_fields_out(source: str, expected: str | None) -> None:
    assert render_leniently(source, {}) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "n=1"),
        (True, "n=true"),
        (1.0, "n=1.0"),
        (-0.0, "n=-0.0"),
        (0.0, "n=0.0"),
        ("1", "n=1"),
        ("é \"quoted\"", "n=é \"quoted\""),
        ([1, "a"], "n=1a"),
        (float("nan"), None),  # not a JSON value: missing
        (None, None),
    ],
)
def test_renderings_are_cached_by_the_value_and_its_type(value: Any, expected: str | None) -> None:
    """1, True and 1.0 are equal (and hash alike) in Python but render differently: each gets its own
    cache entry, in any order."""
    for first in (1, True, 1.0, 0.0, -0.0, value):
        try_render("n={{ n }}", {"n": first})
    assert try_render("n={{ n }}", {"n": value}).text == expected
    assert try_render("n={{ n }}", {"n": value}) is try_render("n={{ n }}", {"n": value})  # one shared object
