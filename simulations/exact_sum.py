"""Sums that merge exactly, whatever the chunking.

A float sum depends on the order of its terms, so a log summed in chunks of 100,000 rows and the same
log summed at once differ in the last bits. :class:`ExactSum` holds the exact (rational) total of the
floats added so far as an integer times a power of two; merging adds integers, and
:attr:`ExactSum.value` rounds the exact total once, correctly, so the result is the same for any
chunking and any merge order.

The exact total of an array is computed in numpy without Python loops over rows: each float is split
by :func:`numpy.frexp` into a 53-bit integer mantissa and a binary exponent; the mantissa is split into
a high and a low part of at most 27 bits, and each part is summed per exponent with
:func:`numpy.bincount`. With at most ``2**25`` rows per call every such float64 sum is an exact
integer, and the per-exponent totals are combined with Python integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MANTISSA_BITS = 53
_SPLIT = 2.0**27
_MAX_ROWS = 2**25
_EXPONENT_OFFSET = 1100  # frexp exponents of finite float64 lie in [-1073, 1024]


def _exact_integer_sum(values: np.ndarray) -> tuple[int, int]:
    """``(numerator, exponent)`` with ``sum(values) == numerator * 2**exponent`` exactly."""
    mantissas, exponents = np.frexp(values)
    integers = mantissas * 2.0**_MANTISSA_BITS  # exact: |integers| < 2**53
    high = np.floor(integers / _SPLIT)
    low = integers - high * _SPLIT  # exact, in [0, 2**27)
    bins = exponents.astype(np.int64) + _EXPONENT_OFFSET
    high_sums = np.bincount(bins, weights=high)
    low_sums = np.bincount(bins, weights=low)
    used = np.flatnonzero((high_sums != 0) | (low_sums != 0))
    if used.size == 0:
        return 0, 0
    base = int(used[0])
    numerator = 0
    for b in used.tolist():
        part = int(high_sums[b]) * (1 << 27) + int(low_sums[b])
        numerator += part << (b - base)
    return numerator, base - _EXPONENT_OFFSET - _MANTISSA_BITS


@dataclass(frozen=True)
class ExactSum:
    """An exactly mergeable sum of floats: ``numerator * 2**exponent``.

    Attributes
    ----------
    numerator : int
    exponent : int

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1e16, 1.0, -1e16, 0.5])
    >>> (ExactSum.of(x[:2]) + ExactSum.of(x[2:])).value == ExactSum.of(x).value == 1.5
    True
    """

    numerator: int = 0
    exponent: int = 0

    @classmethod
    def of(cls, values: np.ndarray) -> ExactSum:
        """The exact sum of a float array of any shape; every value must be finite."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(flat)):
            raise ValueError("ExactSum.of: values must be finite")
        total = cls()
        for start in range(0, flat.size, _MAX_ROWS):
            total = total + cls(*_exact_integer_sum(flat[start : start + _MAX_ROWS]))
        return total

    @property
    def value(self) -> float:
        """The exact total, correctly rounded to a float."""
        if self.exponent >= 0:
            return float(self.numerator << self.exponent)
        return self.numerator / (1 << -self.exponent)  # int / int is correctly rounded

    def __add__(self, other: ExactSum) -> ExactSum:
        if not isinstance(other, ExactSum):
            return NotImplemented
        if other.numerator == 0:
            return self
        if self.numerator == 0:
            return other
        low = min(self.exponent, other.exponent)
        numerator = (self.numerator << (self.exponent - low)) + (other.numerator << (other.exponent - low))
        return ExactSum(numerator, low)
