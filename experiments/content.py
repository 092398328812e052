"""Rendering a variant's content for a recipient.

Content is a plain string for now; every rendering goes through :func:`render_content` so that merge
tags (issue 8) can be added here without touching the callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_content(template: str, context: Mapping[str, Any]) -> str:
    """The content a recipient sees for ``template`` (today: the template itself, unchanged).

    Examples
    --------
    >>> render_content("Shop now", {"first_name": "Ada"})
    'Shop now'
    """
    return template
