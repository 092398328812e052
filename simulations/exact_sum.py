"""Sums that merge exactly, in any order.

A chunk's total is taken once, by numpy's pairwise summation (its error is below about
:math:`\\varepsilon \\log_2 n \\sum |x_i|`) or, for sums of products, one inner product (numpy's
``einsum`` loop, accumulated in several partial sums, without a BLAS thread pool), and from then on it
is held exactly: an
:class:`ExactSum` is an integer times a power of two, merging adds integers, and
:attr:`ExactSum.value` rounds the exact total once. So merged chunk totals do not depend on the order
in which chunks arrive or partitions finish, and summing a log in one chunk or in many differs only by
those per-chunk roundings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class NonFiniteSum(ValueError):
    """A total that is not a finite float: a value was infinite or NaN, or the sum overflowed."""


@dataclass(frozen=True)
class ExactSum:
    """An exactly mergeable total: ``numerator * 2**exponent``.

    Attributes
    ----------
    numerator : int
    exponent : int

    Examples
    --------
    >>> (ExactSum.of_float(1e16) + ExactSum.of_float(1.0) + ExactSum.of_float(-1e16)).value
    1.0
    """

    numerator: int = 0
    exponent: int = 0

    @classmethod
    def of_float(cls, value: float) -> ExactSum:
        """A single finite float, held exactly."""
        if not math.isfinite(value):
            raise NonFiniteSum("ExactSum: values must be finite")
        mantissa, exponent = math.frexp(value)
        return cls(int(mantissa * 2**53), exponent - 53)

    @classmethod
    def of(cls, values: np.ndarray) -> ExactSum:
        """The total of a chunk of finite floats (any shape), summed pairwise and then held exactly
        (:class:`NonFiniteSum` when the total overflows)."""
        with np.errstate(over="ignore"):
            return cls.of_float(float(np.sum(values, dtype=np.float64)))

    @classmethod
    def of_dot(cls, a: np.ndarray, b: np.ndarray) -> ExactSum:
        """:math:`\\sum_i a_i b_i` of a chunk (shape (n,) each), by one inner product, held exactly."""
        return cls.of_float(float(np.einsum("i,i->", a, b)))

    @property
    def value(self) -> float:
        """The exact total, correctly rounded to a float (:class:`NonFiniteSum` beyond a float's range)."""
        try:
            if self.exponent >= 0:
                return float(self.numerator << self.exponent)
            return self.numerator / (1 << -self.exponent)  # int / int is correctly rounded
        except OverflowError:
            raise NonFiniteSum("ExactSum: the total exceeds a float's range") from None

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
