"""The colour of each variant on every chart: one colour-blind-safe palette, assigned by the variant's
position in the spec so a variant looks the same on every chart, page and report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

# Okabe and Ito, "Color Universal Design" (2008): distinguishable under the common colour-vision
# deficiencies. Black is left out (it draws the "explored" line), yellow comes last (low contrast on white).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
EXPLORED_COLOUR = "#333333"
UNKNOWN_COLOUR = "#999999"  # a variant the spec does not name: drawn, in grey, never hidden


def variant_to_colour(variants: Sequence[str]) -> dict[str, str]:
    """Each variant's colour, from its position in ``variants`` (the spec's order), cycling after seven.

    >>> variant_to_colour(["plain", "urgent"])
    {'plain': '#0072B2', 'urgent': '#E69F00'}
    """
    return {v: OKABE_ITO[k % len(OKABE_ITO)] for k, v in enumerate(dict.fromkeys(variants))}


def in_spec_order(variant_to_colour: Mapping[str, str], present: Iterable[str]) -> list[tuple[str, str]]:
    """The ``present`` variants as ``(variant, colour)`` pairs: the spec's variants first in its order,
    then any others (in grey) in the order met.

    >>> in_spec_order({"a": "#0072B2", "b": "#E69F00"}, ["x", "b", "a"])
    [('a', '#0072B2'), ('b', '#E69F00'), ('x', '#999999')]
    """
    seen = list(dict.fromkeys(present))
    known = [v for v in variant_to_colour if v in seen]
    others = [v for v in seen if v not in variant_to_colour]
    return [(v, variant_to_colour.get(v, UNKNOWN_COLOUR)) for v in known + others]
