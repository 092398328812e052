"""Variant content as Liquid templates: checked when a spec is saved, rendered per recipient in a sandbox.

A variant's ``content`` may hold merge tags (``{{ first_name | default: 'there' }}``) and conditional
blocks (``{% if segment == 'vip' %}...{% endif %}``) over the recipient's context, read by the same
attribute names as the targeting rules. Rendering is strict: an output tag over a missing field is an
error, not a blank (the ``default`` filter supplies a value; an ``if`` over a missing field is false,
as a rule's comparison over a missing attribute is). A variant that cannot be rendered for a recipient
is not offered to that recipient, so the slot falls back to another variant, in the end the slot's
default (see :mod:`experiments.assignment`); every step is reported.

The sandbox (:mod:`experiments.sandbox`): no ``include`` or ``render`` tags (no file access), values are
looked up only as keys of the context mapping (which is copied to plain JSON values first, so no Python
attribute is reachable), and every rendering is bounded in loop iterations, steps, filter work, the size
of every value it makes, output length and wall-clock time. The context fields a template reads are
bounded too (:data:`FIELD_LIMIT`, :data:`FIELDS_LIMIT`). A template that reaches a bound does not render
(its variant is not offered); one that reaches a bound on an empty or a typical context is refused when
the spec is saved (:func:`limit_problem`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from liquid import FalsyStrictUndefined
from liquid.exceptions import LiquidError, ResourceLimitError

from experiments.sandbox import (
    DEFAULT_LIMITS,
    RenderDeadlineError,
    RenderLimits,
    SandboxEnvironment,
    render_bounded,
)

#: Loop iterations allowed per rendering (all loops together).
LOOP_LIMIT = DEFAULT_LIMITS.loop_iterations
#: Characters of output allowed per rendering.
OUTPUT_LIMIT = DEFAULT_LIMITS.output
#: Characters of template source allowed per variant.
SOURCE_LIMIT = 20_000
#: Characters (as JSON) of one context field a template reads; a longer field fails the rendering.
FIELD_LIMIT = 10_000
#: Characters (as JSON) of all the context fields one template reads together.
FIELDS_LIMIT = 50_000
#: The value each field a template reads takes in the "typical" context the save-time check renders.
TYPICAL_VALUE = "Sample"
_MARKUP = ("{{", "{%")


class _MissingField(FalsyStrictUndefined):
    """A missing field: false in ``if``, replaced by ``default``, an error when output."""

    force_liquid_default = True


_ENVIRONMENT = SandboxEnvironment(undefined=_MissingField, strict_filters=True)
_LENIENT = SandboxEnvironment(strict_filters=True)  # missing fields render as nothing


class TemplateProblem(ValueError):
    """A template that cannot be parsed or rendered; the message is one line."""


def is_template(source: str) -> bool:
    """Whether ``source`` holds Liquid markup (plain text is used as it is, never parsed).

    Examples
    --------
    >>> is_template("Shop now"), is_template("Hi {{ first_name | default: 'there' }}")
    (False, True)
    """
    return any(mark in source for mark in _MARKUP)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


@lru_cache(maxsize=4096)
def _parse(source: str, lenient: bool = False) -> Any:
    if len(source) > SOURCE_LIMIT:
        raise TemplateProblem(f"template longer than {SOURCE_LIMIT} characters")
    environment = _LENIENT if lenient else _ENVIRONMENT
    try:
        template = environment.from_string(source)
        analysis = template.analyze()
    except LiquidError as exc:
        raise TemplateProblem(_one_line(exc)) from exc
    unknown = sorted(name for name in analysis.filters if name not in environment.filters)
    if unknown:
        raise TemplateProblem(f"unknown filter {unknown[0]!r}")
    return template


def template_problem(source: str) -> str | None:
    """Why ``source`` is not a usable template, or None when it is.

    A template is not usable when it does not parse (syntax, unknown tag or filter) or when it reaches
    a rendering limit on an empty or a typical context (:func:`limit_problem`).

    Examples
    --------
    >>> template_problem("{{ first_name | shout }}")
    "unknown filter 'shout'"
    >>> template_problem("Hi {{ first_name | default: 'there' }}") is None
    True
    >>> template_problem("{% for i in (1..5000) %}x{% endfor %}").split(": ")[:2]
    ['reaches a rendering limit on an empty context', 'loop iteration limit reached']
    """
    if not is_template(source):
        return None
    try:
        _parse(source)
    except TemplateProblem as exc:
        return str(exc)
    return limit_problem(source)


def limit_problem(source: str, limits: RenderLimits = DEFAULT_LIMITS) -> str | None:
    """Whether a template reaches a rendering limit for a recipient with no fields, or one whose every
    field the template reads is :data:`TYPICAL_VALUE`; None when it stays within them both.

    Other failures (a missing field without a default, a filter given the wrong type) are not problems
    of the template alone: they depend on the recipient, and such a variant is simply not offered.
    """
    if not is_template(source):
        return None
    template = _parse(source)
    typical = {name: TYPICAL_VALUE for name in template_fields(source)}
    for label, values in (("an empty", {}), ("a typical", typical)):
        try:
            render_bounded(template, values, limits)
        except ResourceLimitError as exc:
            return f"reaches a rendering limit on {label} context: {_one_line(exc)}"
        except Exception:  # noqa: BLE001, S112 - any other failure depends on the recipient's fields
            continue
    return None


def template_fields(source: str) -> frozenset[str]:
    """The context attributes a template reads (top-level names); empty for plain text."""
    if not is_template(source):
        return frozenset()
    try:
        return frozenset(_parse(source).analyze().globals)
    except (TemplateProblem, LiquidError):
        return frozenset()


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data (dict, list, str, number, bool, None); anything else is dropped."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= 5:
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items() if isinstance(k, str)}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    return None


def sandbox_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context a template sees: plain JSON values only, ``None`` values left out (they are missing)."""
    out = {}
    for name, value in context.items():
        plain = _plain(value)
        if isinstance(name, str) and plain is not None:
            out[name] = plain
    return out


def render_template(source: str, context: Mapping[str, Any]) -> str:
    """Render ``source`` for one recipient, strictly.

    Raises
    ------
    TemplateProblem
        A missing field without a default, a limit reached (of the rendering or of a context field), a
        broken template, or output that is blank although the template is not (a subject line must never
        be empty).
    """
    rendering = try_render(source, context)
    if rendering.text is None:
        raise TemplateProblem(str(rendering.problem))
    return rendering.text


@lru_cache(maxsize=4096)
def _fields(source: str) -> tuple[str, ...]:
    return tuple(sorted(template_fields(source)))


def _field_values(
    source: str, context: Mapping[str, Any]
) -> tuple[tuple[tuple[str, str, Any], ...], str | None]:
    """The values a template reads from ``context`` (its cache key), or why they are too large to
    render with (:data:`FIELD_LIMIT`, :data:`FIELDS_LIMIT`).

    Each value is ``(name, kind, value)``: strings, booleans and integers of at most 64 bits as
    themselves (``kind`` is their type, so ``1`` and ``True`` stay apart), anything else as ``"json"``
    and its JSON text (so ``0.0`` and ``-0.0``, equal in Python, stay apart too).
    """
    out = []
    total = 0
    for name in _fields(source):
        value = context.get(name)
        kind = type(value)
        if kind is str:
            if len(value) > FIELD_LIMIT:
                return (), f"context field {name!r} is longer than {FIELD_LIMIT} characters"
            size, entry = len(value), (name, "str", value)
        elif kind is bool or (kind is int and value.bit_length() <= 64):
            size, entry = 20, (name, kind.__name__, value)
        else:
            plain = _plain(value)
            if plain is None:
                continue
            try:
                text = json.dumps(plain, sort_keys=True)
            except ValueError:  # an integer past Python's digit limit for conversion to text
                return (), f"context field {name!r} is longer than {FIELD_LIMIT} characters"
            if len(text) > FIELD_LIMIT:
                return (), f"context field {name!r} is longer than {FIELD_LIMIT} characters"
            size, entry = len(text), (name, "json", text)
        total += size
        if total > FIELDS_LIMIT:
            return (), f"the context fields the template reads are longer than {FIELDS_LIMIT} characters"
        out.append(entry)
    return tuple(out), None


class _NotCached(Exception):  # noqa: N818 - a signal, not an error
    """A rendering stopped by the clock: reported, never cached (the machine may have been slow)."""


@lru_cache(maxsize=8192)  # at most 8192 x OUTPUT_LIMIT characters; subject lines are far shorter
def _render_cached(source: str, values: tuple[tuple[str, str, Any], ...]) -> Rendering:
    """The rendering of a template for the values of the fields it reads (one shared frozen object)."""
    try:
        template = _parse(source)
        fields = {name: json.loads(v) if kind == "json" else v for name, kind, v in values}
        text = render_bounded(template, fields, DEFAULT_LIMITS)
    except TemplateProblem as exc:
        return Rendering(None, str(exc))
    except RenderDeadlineError as exc:
        raise _NotCached(_one_line(exc)) from exc
    except LiquidError as exc:
        return Rendering(None, _one_line(exc))
    except Exception as exc:  # noqa: BLE001 - a filter's own Python error (an overflow) is the template's
        return Rendering(None, f"{type(exc).__name__}: {_one_line(exc)}")
    if source.strip() and not text.strip():
        return Rendering(None, "renders blank")
    return Rendering(text)


def render_leniently(
    source: str, context: Mapping[str, Any], limits: RenderLimits = DEFAULT_LIMITS
) -> str | None:
    """The last resort of a fallback: ``source`` with missing fields left out and spaces tidied.

    Fields too large to render with (:data:`FIELD_LIMIT`) count as missing. None when even that fails
    or is blank. Used only for a slot's default variant that needs fields the recipient lacks (the
    spec's warnings say so when it is saved; a default that does not render this way even without any
    field is refused when it is saved).

    Examples
    --------
    >>> render_leniently("Hello {{ first_name }}, spring picks", {})
    'Hello, spring picks'
    """
    if not is_template(source):
        return source if source.strip() else None
    values, total = {}, 0
    for name in _fields(source):
        raw = context.get(name)
        if isinstance(raw, str) and len(raw) > FIELD_LIMIT:
            continue
        value = _plain(raw)
        size = len(json.dumps(value)) if value is not None else 0
        if value is None or size > FIELD_LIMIT or total + size > FIELDS_LIMIT:
            continue
        values[name] = value
        total += size
    try:
        text = render_bounded(_parse(source, lenient=True), values, limits)
    except Exception:  # noqa: BLE001 - any failure here means: no lenient rendering
        return None
    tidy = " ".join(text.split())
    for mark in (",", ".", "!", "?", ":", ";"):
        tidy = tidy.replace(f" {mark}", mark)
    tidy = tidy.strip(" ,;:")
    return tidy or None


def default_fallback(source: str) -> str | None:
    """What a default variant shows when nothing else renders: plain text as it is, a template as
    :func:`render_leniently` renders it without any field and without the deadline (only the
    deterministic bounds), so the answer is the same every time. The spec check makes sure it is not
    None for every slot's default.

    Examples
    --------
    >>> default_fallback("{{ first_name }}, we picked these for you")
    'we picked these for you'
    >>> default_fallback("{{ first_name }}") is None
    True
    """
    if not is_template(source):
        return source
    return render_leniently(source, {}, RenderLimits(seconds=None))


@dataclass(frozen=True)
class Rendering:
    """The outcome of rendering one variant for one recipient.

    ``text`` is None when the template cannot be rendered for this recipient; ``problem`` says why.
    """

    text: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


def try_render(source: str, context: Mapping[str, Any]) -> Rendering:
    """:func:`render_template` without raising.

    A template's output depends only on the fields it reads, so renderings are cached by those
    values (recipients who share them, and the several looks assignment and preview take at one
    recipient, render once). A rendering stopped by the wall-clock deadline is not cached.

    Examples
    --------
    >>> try_render("{{ first_name | default: 'there' }}, your spring picks", {}).text
    'there, your spring picks'
    >>> try_render("{{ first_name }}, your spring picks", {}).problem
    "'first_name' is undefined"
    """
    if not is_template(source):
        return Rendering(source)
    return render_markup(source, context)


def render_markup(source: str, context: Mapping[str, Any]) -> Rendering:
    """:func:`try_render` for a ``source`` known to hold markup (:func:`is_template` was checked once,
    when the spec was compiled): the cached rendering for the values of the fields it reads, or why
    they cannot be rendered with."""
    values, problem = _field_values(source, context)
    if problem is not None:
        return Rendering(None, problem)
    try:
        return _render_cached(source, values)
    except _NotCached as exc:
        return Rendering(None, str(exc))


def render_content(template: str, context: Mapping[str, Any]) -> str:
    """The content a recipient sees for ``template``; raises :class:`TemplateProblem` when it cannot.

    Examples
    --------
    >>> render_content("Shop now", {"first_name": "Ada"})
    'Shop now'
    >>> render_content("{{ first_name | default: 'there' }}, your spring picks", {"first_name": "Ada"})
    'Ada, your spring picks'
    """
    return render_template(template, context)
