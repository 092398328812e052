"""Jinja2 rendering of the pages: one environment (built on first use), the filters the templates use."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from analysis.factorial import format_odds_ratio

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _pct(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}%}"


def _signed_pct(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}%}"


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _pvalue(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "< 0.0001" if x < 1e-4 else f"{x:.4f}"


def _sentence(text: str) -> str:
    """``text`` with its first letter in upper case (Jinja's ``capitalize`` lowers all the others)."""
    return text[:1].upper() + text[1:]


def _count(x: int | None) -> str:
    return "n/a" if x is None else f"{x:,}"


@cache
def environment() -> Environment:
    """The templates of ``api/ui/templates`` with autoescaping and the number filters."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, signed_pct=_signed_pct, num=_num, pvalue=_pvalue, count=_count,
                       odds=format_odds_ratio, sentence=_sentence)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` with ``context``."""
    return environment().get_template(template).render(**context)
