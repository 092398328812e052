"""Sums that merge exactly, whatever the chunking.

A float sum depends on the order of its terms, so a log summed in chunks of 100,000 rows and the same
log summed at once differ in the last bits. :class:`ExactSum` keeps a sum as a short *expansion*: a few
floats whose exact (real-number) total is the exact total of every term added so far. Merging two
expansions concatenates them, and :attr:`ExactSum.value` is that exact total correctly rounded, so the
result is the same for any chunking and any merge order.

The expansion of an array is built with :func:`math.fsum` (Shewchuk's algorithm, correctly rounded):
the first float is ``fsum(x)``, the next is the correctly rounded remainder ``fsum(x + [-s1])``, and so
on until the remainder is zero (two or three terms in practice).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

_MAX_TERMS = 64


def _expansion(values: Iterable[float], first: float | None = None) -> tuple[float, ...]:
    """Floats whose exact total equals the exact total of ``values`` (which must be finite)."""
    terms: list[float] = []
    total = math.fsum(values) if first is None else first
    while total != 0.0:
        terms.append(total)
        if len(terms) > _MAX_TERMS:  # pragma: no cover - cannot happen for finite input
            raise ArithmeticError("exact sum did not converge")
        total = math.fsum(itertools.chain(values, (-t for t in terms)))
    return tuple(terms)


@dataclass(frozen=True)
class ExactSum:
    """An exactly mergeable sum of floats.

    Attributes
    ----------
    terms : tuple of float
        Non-overlapping floats whose exact total is the sum; empty for zero.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1e16, 1.0, -1e16, 0.5])
    >>> (ExactSum.of(x[:2]) + ExactSum.of(x[2:])).value == ExactSum.of(x).value == 1.5
    True
    """

    terms: tuple[float, ...] = ()

    @classmethod
    def of(cls, values: np.ndarray) -> ExactSum:
        """The exact sum of a finite float array of any shape."""
        flat = np.asarray(values, dtype=float).ravel()
        if flat.size == 0:
            return cls()
        return cls(_expansion(flat))

    @property
    def value(self) -> float:
        """The exact total, correctly rounded to a float."""
        return math.fsum(self.terms)

    def __add__(self, other: ExactSum) -> ExactSum:
        if not isinstance(other, ExactSum):
            return NotImplemented
        merged = self.terms + other.terms
        if len(merged) <= 2:
            return ExactSum(merged)
        return ExactSum(_expansion(merged))
