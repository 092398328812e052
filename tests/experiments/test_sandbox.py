"""Templates are bounded in work and time, not only in loop iterations and output length.

Each malicious template below is asserted on the limit that stops it (never on a timing): before these
bounds, the first two ran for 21.8 s and 40.7 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from experiments.assignment import compile_experiment, slot_content
from experiments.content import (
    FIELD_LIMIT,
    default_fallback,
    limit_problem,
    render_content,
    template_problem,
    try_render,
)
from experiments.errors import SpecError
from experiments.sandbox import (
    DEFAULT_LIMITS,
    RenderDeadlineError,
    RenderLimitError,
    RenderLimits,
    SandboxEnvironment,
    render_bounded,
    value_size,
)
from experiments.spec import content_warnings, parse_spec

SORT_LOOP = "{% for i in (1..1000) %}{% assign t = s | split:'' | sort | join:'' %}{% endfor %}{{ t | size }}"
# (a) of the audit: a 40,960-character string, then split, sorted and joined 1,000 times
DOUBLED = "{% assign s='abcdefghij' %}" + "{% assign s = s | append: s %}" * 12 + SORT_LOOP


def _problem(source: str, context: dict[str, Any] | None = None) -> str:
    rendering = try_render(source, context or {})
    assert rendering.text is None, rendering.text
    return str(rendering.problem)


def test_string_doubled_then_sorted_in_a_loop_is_stopped_by_the_value_size_limit() -> None:
    assert _problem(DOUBLED) == "value size limit reached: filter 'append' was given over 10000 characters"
    # and it is refused when the spec is saved, with the variant's path
    assert template_problem(DOUBLED) == (
        "reaches a rendering limit on an empty context: value size limit reached: filter 'append' was "
        "given over 10000 characters"
    )
    variants = [{"id": "a", "content": "Hi"}, {"id": "b", "content": DOUBLED}]
    raw = {"key": "k", "slots": {"s": {"variants": variants}}, "design": {"type": "ab"}}
    with pytest.raises(SpecError, match=r"slots\.s\.variants\[1\]\.content: reaches a rendering limit"):
        parse_spec(raw)


def test_a_huge_context_field_is_not_rendered_with() -> None:
    # (b) of the audit: the same loop over a 50,000-character context field
    too_long = f"context field 's' is longer than {FIELD_LIMIT} characters"
    assert _problem(SORT_LOOP, {"s": "x" * 50_000}) == too_long
    assert _problem("{{ s | size }}", {"s": ["ab"] * 10_000}).startswith("context field 's' is longer")
    # fields the template does not read are not its concern
    assert render_content("{{ s | size }}", {"s": "x" * 100, "other": "y" * 50_000}) == "100"


@pytest.mark.parametrize(
    ("length", "limit"),
    [
        (9_000, "value size limit reached: filter 'split' made over"),  # 9,000 one-character items
        (3_000, "filter work limit reached"),  # small enough per call; too much all together
    ],
)
def test_the_sort_loop_over_a_field_within_bounds_is_stopped_by_work(length: int, limit: str) -> None:
    assert _problem(SORT_LOOP, {"s": "qwertyuiop" * (length // 10)}).startswith(limit)


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        # nested loops multiply; sequential loops add up
        ("{% for i in (1..100) %}{% for j in (1..100) %}x{% endfor %}{% endfor %}", "loop iteration limit"),
        ("{% for i in (1..600) %}x{% endfor %}{% for i in (1..600) %}y{% endfor %}", "loop iteration limit"),
        # huge ranges: in a loop, and as a filter's input (never materialised)
        ("{% for i in (1..100000000) %}x{% endfor %}", "loop iteration limit"),
        ("{{ (1..100000000) | join: ',' }}", "value size limit reached: filter 'join' was given over"),
        # string doubling by append, prepend, replace; a long separator; capture in a loop
        ("{% assign s='ab' %}" + "{% assign s = s | append: s %}" * 20 + "{{ s | size }}",
         "value size limit reached: filter 'append' was given over"),
        ("{% assign s='ab' %}" + "{% assign s = s | prepend: s %}" * 20 + "{{ s | size }}",
         "value size limit reached: filter 'prepend' was given over"),
        ("{% assign s='ab' %}" + "{% assign s = s | replace: 'a', 'aa' | replace: 'b', 'bb' %}" * 20,
         "value size limit reached: filter 'replace' would make over"),
        ("{% assign s='" + "x" * 200 + "' %}{{ s | replace: '', s | size }}",
         "value size limit reached: filter 'replace' would make over"),
        ("{{ (1..1000) | join: '" + "-" * 100 + "' }}",
         "value size limit reached: filter 'join' would make over"),
        ("{% assign s='ab' %}{% for i in (1..20) %}{% capture s %}{{ s }}{{ s }}{% endcapture %}{% endfor %}",
         "output stream limit reached"),
        # numbers that grow without bound
        ("{% assign n = 10 %}{% for i in (1..30) %}{% assign n = n | times: n %}{% endfor %}{{ n }}",
         "value size limit reached: filter 'times' made a number over 64 bits"),
        # many cheap filters, and many tags without any filter
        ("{% for i in (1..1000) %}{% assign t = 'ab'" + " | upcase | downcase" * 50 + " %}{% endfor %}x",
         "step limit reached"),
        ("{% for i in (1..1000) %}" + "{% if i == 2 %}{% endif %}" * 50 + "{% endfor %}x",
         "step limit reached"),
    ],
)
def test_malicious_templates_are_stopped_by_a_named_limit(source: str, limit: str) -> None:
    assert limit in _problem(source)
    assert limit_problem(source) is not None  # each one is also refused when a spec is saved


def test_the_wall_clock_deadline_is_checked_while_rendering() -> None:
    source = "{% for i in (1..1000) %}{% if i == 2 %}{% endif %}{% endfor %}x"
    template = SandboxEnvironment().from_string(source)
    unlimited = RenderLimits(steps=10**9, seconds=None)
    assert render_bounded(template, {}, unlimited) == "x"
    with pytest.raises(RenderDeadlineError, match="time limit reached: over 0 s"):
        render_bounded(template, {}, RenderLimits(steps=10**9, seconds=0.0))
    assert issubclass(RenderDeadlineError, RenderLimitError)


def test_a_legit_personal_template_still_renders() -> None:
    source = (
        "{{ first_name | default: 'there' | capitalize }}, "
        "{% if segment == 'vip' %}early access{% else %}spring picks{% endif %}: "
        "{% for item in picks limit: 3 %}{{ item.name | upcase }}"
        "{% unless forloop.last %}, {% endunless %}{% endfor %}"
        " ({{ picks | size }} picks, {{ discount | times: 100 | round }}% off)"
    )
    context = {"first_name": "ada", "segment": "vip", "discount": 0.2,
               "picks": [{"name": "boots"}, {"name": "tent"}, {"name": "stove"}, {"name": "map"}]}
    assert render_content(source, context) == "Ada, early access: BOOTS, TENT, STOVE (4 picks, 20% off)"
    assert template_problem(source) is None
    body = "{% for i in (1..50) %}{{ i | plus: 1 }} {{ name | default: 'x' | append: '!' }} {% endfor %}"
    assert try_render(body, {"name": "Bo"}).ok  # a 50-row block stays well inside every bound


def test_value_size_counts_nested_items_and_stops_at_the_cap() -> None:
    assert value_size({"a": ["xy", "z"]}, 100) == 1 + 1 + 2 + 2 + 1  # key, its list, the list's items
    assert value_size(range(10**12), DEFAULT_LIMITS.value_size) > DEFAULT_LIMITS.value_size


def test_a_default_variant_must_render_without_any_field() -> None:
    blank = {"key": "k", "design": {"type": "ab"}, "slots": {"subject": {"variants": [
        {"id": "personal", "content": "{{ first_name }}"}, {"id": "plain", "content": "Spring sale"}]}}}
    path = r"slots\.subject\.variants\[0\]\.content"
    with pytest.raises(SpecError, match=path + ": the slot's default variant must render"):
        parse_spec(blank)
    # the same variant is fine when it is not the default
    parse_spec({**blank, "default": {"subject": "plain"}})


def test_a_default_that_needs_fields_shows_its_lenient_rendering_never_its_id() -> None:
    raw = {"key": "k", "design": {"type": "ab"}, "slots": {"subject": {"variants": [
        {"id": "personal", "content": "{{ first_name }}, we picked these for you"},
        {"id": "other", "content": "{{ last_name }} picks"}]}}}
    spec = parse_spec(raw)
    (warning,) = content_warnings(spec)
    assert "without them it shows 'we picked these for you'" in warning
    compiled = compile_experiment(spec, 1)
    for context in ({}, {"first_name": "x" * 50_000}, {"last_name": "Lovelace"}):
        text, note = slot_content(compiled, "subject", 0, context)
        assert text == "we picked these for you" and "personal" != text
        assert note is not None and "fell back to 'personal'" in note
    text, note = slot_content(compiled, "subject", 0, {"first_name": "Ada"})
    assert (text, note) == ("Ada, we picked these for you", None)
    assert default_fallback("Plain text") == "Plain text"
