"""Merge fields a recipient lacks: the spec's declared fallbacks, and intent to treat when none exists.

An email's templates read recipient fields (``{{ first_name }}``). A recipient without one renders with
the spec's ``merge_defaults`` (``{first_name: "there"}``), beside Liquid's own ``default`` filter in a
template. Where neither exists, hash designs keep the variant the hash drew (intent to treat: moving
such recipients to the control would make the arms differ by who has the field); the decision is logged
in that arm with the reason :data:`CONTENT_FALLBACK` and the content of the slot's default variant.
Bandits may still leave a variant that cannot render out before the policy draws (its propensity then
says the variant was not offered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The reason of a hash-design decision logged in its assigned arm with fallback content.
CONTENT_FALLBACK = "content_fallback"


def with_merge_defaults(defaults: Mapping[str, Any], context: Mapping[str, Any]) -> Mapping[str, Any]:
    """``context`` with each field of ``defaults`` it lacks (absent or null) set to its default.

    Examples
    --------
    >>> with_merge_defaults({"first_name": "there"}, {"first_name": None, "city": "Oslo"})
    {'first_name': 'there', 'city': 'Oslo'}
    >>> with_merge_defaults({"first_name": "there"}, {"first_name": "Ada"})
    {'first_name': 'Ada'}
    """
    if not defaults:
        return context
    missing = [name for name in defaults if context.get(name) is None]
    if not missing:
        return context
    filled = dict(context)
    for name in missing:
        filled[name] = defaults[name]
    return filled
