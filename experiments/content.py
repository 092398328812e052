"""Variant content as Liquid templates: checked when a spec is saved, rendered per recipient in a sandbox.

A variant's ``content`` may hold merge tags (``{{ first_name | default: 'there' }}``) and conditional
blocks (``{% if segment == 'vip' %}...{% endif %}``) over the recipient's context, read by the same
attribute names as the targeting rules. Rendering is strict: an output tag over a missing field is an
error, not a blank (the ``default`` filter supplies a value; an ``if`` over a missing field is false,
as a rule's comparison over a missing attribute is). A variant that cannot be rendered for a recipient
is not offered to that recipient, so the slot falls back to another variant, in the end the slot's
default (see :mod:`experiments.assignment`); every step is reported.

The sandbox: no ``include`` or ``render`` tags (no file access), values are looked up only as keys of
the context mapping (which is copied to plain JSON values first, so no Python attribute is reachable),
loops stop after :data:`LOOP_LIMIT` iterations and output after :data:`OUTPUT_LIMIT` characters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from liquid import Environment, FalsyStrictUndefined
from liquid.exceptions import LiquidError

#: Loop iterations allowed per rendering (all loops together).
LOOP_LIMIT = 1_000
#: Characters of output allowed per rendering.
OUTPUT_LIMIT = 10_000
#: Characters of template source allowed per variant.
SOURCE_LIMIT = 20_000
_MARKUP = ("{{", "{%")


class _MissingField(FalsyStrictUndefined):
    """A missing field: false in ``if``, replaced by ``default``, an error when output."""

    force_liquid_default = True


class _SandboxEnvironment(Environment):
    loop_iteration_limit = LOOP_LIMIT
    output_stream_limit = OUTPUT_LIMIT
    local_namespace_limit = 100_000
    context_depth_limit = 10
    block_nesting_limit = 20

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        for name in ("include", "render"):  # they read other templates (files, loaders)
            self.tags.pop(name, None)


_ENVIRONMENT = _SandboxEnvironment(undefined=_MissingField, strict_filters=True)
_LENIENT = _SandboxEnvironment(strict_filters=True)  # missing fields render as nothing


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
def _parse(source: str) -> Any:
    if len(source) > SOURCE_LIMIT:
        raise TemplateProblem(f"template longer than {SOURCE_LIMIT} characters")
    try:
        template = _ENVIRONMENT.from_string(source)
        analysis = template.analyze()
    except LiquidError as exc:
        raise TemplateProblem(_one_line(exc)) from exc
    unknown = sorted(name for name in analysis.filters if name not in _ENVIRONMENT.filters)
    if unknown:
        raise TemplateProblem(f"unknown filter {unknown[0]!r}")
    return template


def template_problem(source: str) -> str | None:
    """Why ``source`` is not a usable template (syntax, unknown tag or filter), or None when it is.

    Examples
    --------
    >>> template_problem("{{ first_name | shout }}")
    "unknown filter 'shout'"
    >>> template_problem("Hi {{ first_name | default: 'there' }}") is None
    True
    """
    if not is_template(source):
        return None
    try:
        _parse(source)
    except TemplateProblem as exc:
        return str(exc)
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
        A missing field without a default, a resource limit reached, a broken template, or output that
        is blank although the template is not (a subject line must never be empty).
    """
    rendering = try_render(source, context)
    if rendering.text is None:
        raise TemplateProblem(str(rendering.problem))
    return rendering.text


@lru_cache(maxsize=4096)
def _fields(source: str) -> tuple[str, ...]:
    return tuple(sorted(template_fields(source)))


def _field_values(source: str, context: Mapping[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    """The values a template reads from ``context``: its cache key.

    Each is ``(name, kind, value)``: strings, integers and booleans as themselves (``kind`` is their
    type, so ``1`` and ``True`` stay apart), anything else as ``"json"`` and its JSON text (so ``0.0``
    and ``-0.0``, equal in Python, stay apart too).
    """
    out = []
    for name in _fields(source):
        value = context.get(name)
        kind = type(value)
        if kind is str or kind is int or kind is bool:
            out.append((name, kind.__name__, value))
            continue
        value = _plain(value)
        if value is not None:
            out.append((name, "json", json.dumps(value, sort_keys=True)))
    return tuple(out)


@lru_cache(maxsize=8192)  # at most 8192 x OUTPUT_LIMIT characters; subject lines are far shorter
def _render_cached(source: str, values: tuple[tuple[str, str, Any], ...]) -> Rendering:
    """The rendering of a template for the values of the fields it reads (one shared frozen object)."""
    try:
        template = _parse(source)
        fields = {name: json.loads(v) if kind == "json" else v for name, kind, v in values}
        text = str(template.render(**fields))
    except TemplateProblem as exc:
        return Rendering(None, str(exc))
    except LiquidError as exc:
        return Rendering(None, _one_line(exc))
    if source.strip() and not text.strip():
        return Rendering(None, "renders blank")
    return Rendering(text)


def render_leniently(source: str, context: Mapping[str, Any]) -> str | None:
    """The last resort of a fallback: ``source`` with missing fields left out and spaces tidied.

    None when even that fails or is blank. Used only for a slot's default variant that needs fields
    the recipient lacks (the spec's warnings say so when it is saved).

    Examples
    --------
    >>> render_leniently("Hello {{ first_name }}, spring picks", {})
    'Hello, spring picks'
    """
    if not is_template(source):
        return source if source.strip() else None
    try:
        text = str(_LENIENT.from_string(source).render(**sandbox_context(context)))
    except LiquidError:
        return None
    tidy = " ".join(text.split())
    for mark in (",", ".", "!", "?", ":", ";"):
        tidy = tidy.replace(f" {mark}", mark)
    tidy = tidy.strip(" ,;:")
    return tidy or None


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
    recipient, render once).

    Examples
    --------
    >>> try_render("{{ first_name | default: 'there' }}, your spring picks", {}).text
    'there, your spring picks'
    >>> try_render("{{ first_name }}, your spring picks", {}).problem
    "'first_name' is undefined"
    """
    if not is_template(source):
        return Rendering(source)
    return _render_cached(source, _field_values(source, context))


def render_markup(source: str, context: Mapping[str, Any]) -> Rendering:
    """:func:`try_render` for a ``source`` known to hold markup (:func:`is_template` was checked once,
    when the spec was compiled): the cached rendering for the values of the fields it reads."""
    return _render_cached(source, _field_values(source, context))


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
