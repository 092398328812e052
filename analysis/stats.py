"""Summary statistics: small frozen, mergeable dataclasses in the style of GrowthBook's gbstats.

Every analysis in this package works on these, never on rows: the store computes them by SQL
aggregation (``COUNT``, ``SUM(x)``, ``SUM(x*x)``, ...) and two of them merge with ``+``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import TYPE_CHECKING, TypeVar

from analysis.errors import AnalysisInputError

if TYPE_CHECKING:
    import numpy as np

Mergeable = TypeVar("Mergeable")


def _check_n(n: int, field: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int | float) or n < 0 or n != int(n):
        raise AnalysisInputError(f"{field}: n must be a non-negative whole number, got {n!r}")


def _check_finite(value: float, field: str) -> None:
    if not math.isfinite(value):
        raise AnalysisInputError(f"{field}: must be finite, got {value!r}")


def merged(parts: Sequence[Mergeable]) -> Mergeable:
    """``parts[0] + parts[1] + ...``, left to right: the total of mergeable summaries (at least one)."""
    return reduce(add, parts)


def flat_pair(first: object, second: object, mismatch: str) -> tuple[np.ndarray, np.ndarray]:
    """Two raw value sequences as flat float arrays of one length; ``mismatch.format(len1, len2)`` else."""
    import numpy as np

    a = np.asarray(first, dtype=float).ravel()
    b = np.asarray(second, dtype=float).ravel()
    if a.shape != b.shape:
        raise AnalysisInputError(mismatch.format(a.size, b.size))
    return a, b


@dataclass(frozen=True)
class SampleStats:
    """Count, sum and sum of squares of a numeric metric (revenue, reward) over units.

    Parameters
    ----------
    n : int
        Number of units (recipients), including those whose value is zero.
    sum : float
        :math:`\\sum_i x_i`.
    sum_squares : float
        :math:`\\sum_i x_i^2`.
    sum_cubes : float or None
        :math:`\\sum_i x_i^3`, optional; when given, :attr:`skewness` is available and the Welch test
        can warn when the data are too skewed for the normal approximation.

    Examples
    --------
    >>> s = SampleStats(n=4, sum=10.0, sum_squares=30.0)
    >>> s.mean, round(s.variance, 6)
    (2.5, 1.666667)
    >>> (s + SampleStats(1, 5.0, 25.0)).n
    5
    """

    n: int
    sum: float
    sum_squares: float
    sum_cubes: float | None = None

    def __post_init__(self) -> None:
        _check_n(self.n, "SampleStats.n")
        _check_finite(self.sum, "SampleStats.sum")
        _check_finite(self.sum_squares, "SampleStats.sum_squares")
        if self.sum_squares < 0:
            raise AnalysisInputError(f"SampleStats.sum_squares: must be >= 0, got {self.sum_squares!r}")
        if self.sum_cubes is not None:
            _check_finite(self.sum_cubes, "SampleStats.sum_cubes")

    @classmethod
    def from_values(cls, values: object, *, with_cubes: bool = True) -> SampleStats:
        """Summarise raw values, shape (n,). For tests and small in-memory data."""
        import numpy as np

        x = np.asarray(values, dtype=float).ravel()
        cubes = float(np.sum(x**3)) if with_cubes else None
        return cls(int(x.size), float(x.sum()), float(np.sum(x**2)), cubes)

    @property
    def mean(self) -> float:
        """Sample mean; 0 when ``n`` is 0."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Unbiased sample variance :math:`(\\sum x^2 - (\\sum x)^2/n)/(n-1)`; 0 when ``n < 2``."""
        if self.n < 2:
            return 0.0
        return max((self.sum_squares - self.sum**2 / self.n) / (self.n - 1), 0.0)

    @property
    def std(self) -> float:
        """Sample standard deviation."""
        return math.sqrt(self.variance)

    @property
    def variance_of_mean(self) -> float:
        """Squared standard error of the mean, ``variance / n``; 0 when ``n`` is 0."""
        return self.variance / self.n if self.n else 0.0

    @property
    def skewness(self) -> float | None:
        """Population skewness :math:`m_3 / m_2^{3/2}` (biased moments), or None without ``sum_cubes``."""
        if self.sum_cubes is None or self.n < 2:
            return None
        mu = self.mean
        m2 = self.sum_squares / self.n - mu**2
        if m2 <= 0:
            return 0.0
        m3 = self.sum_cubes / self.n - 3 * mu * self.sum_squares / self.n + 2 * mu**3
        return m3 / m2**1.5

    def __add__(self, other: SampleStats) -> SampleStats:
        if not isinstance(other, SampleStats):
            return NotImplemented
        cubes = None
        if self.sum_cubes is not None and other.sum_cubes is not None:
            cubes = self.sum_cubes + other.sum_cubes
        return SampleStats(
            self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares, cubes
        )


@dataclass(frozen=True)
class ProportionStats:
    """Units and how many of them had the event (opened, clicked, converted, unsubscribed).

    Examples
    --------
    >>> p = ProportionStats(n=200, successes=30)
    >>> p.mean, round(p.variance, 6)
    (0.15, 0.1275)
    """

    n: int
    successes: int

    def __post_init__(self) -> None:
        _check_n(self.n, "ProportionStats.n")
        _check_n(self.successes, "ProportionStats.successes")
        if self.successes > self.n:
            raise AnalysisInputError(
                f"ProportionStats.successes: {self.successes} is more than n = {self.n}"
            )

    @property
    def mean(self) -> float:
        """The rate ``successes / n``; 0 when ``n`` is 0."""
        return self.successes / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Bernoulli variance :math:`p(1-p)` (the maximum-likelihood form, as in the z-test)."""
        p = self.mean
        return p * (1 - p)

    @property
    def variance_of_mean(self) -> float:
        """:math:`p(1-p)/n`; 0 when ``n`` is 0."""
        return self.variance / self.n if self.n else 0.0

    @property
    def failures(self) -> int:
        return self.n - self.successes

    def __add__(self, other: ProportionStats) -> ProportionStats:
        if not isinstance(other, ProportionStats):
            return NotImplemented
        return ProportionStats(self.n + other.n, self.successes + other.successes)


@dataclass(frozen=True)
class RegressionStats:
    """Joint summary of a metric ``y`` and a pre-period covariate ``x`` for CUPED.

    Parameters
    ----------
    n : int
    sum_x, sum_y : float
    sum_x_squares, sum_y_squares : float
    sum_xy : float
        The cross-product sum :math:`\\sum_i x_i y_i`.
    """

    n: int
    sum_x: float
    sum_y: float
    sum_x_squares: float
    sum_y_squares: float
    sum_xy: float

    def __post_init__(self) -> None:
        _check_n(self.n, "RegressionStats.n")
        for name in ("sum_x", "sum_y", "sum_x_squares", "sum_y_squares", "sum_xy"):
            _check_finite(getattr(self, name), f"RegressionStats.{name}")

    @classmethod
    def from_values(cls, x: object, y: object) -> RegressionStats:
        """Summarise paired raw values, shapes (n,) and (n,). For tests and small in-memory data."""
        xa, ya = flat_pair(x, y, "RegressionStats.from_values: x has {} values, y has {}")
        return cls(int(xa.size), float(xa.sum()), float(ya.sum()), float(xa @ xa), float(ya @ ya),
                   float(xa @ ya))

    @property
    def x(self) -> SampleStats:
        return SampleStats(self.n, self.sum_x, self.sum_x_squares)

    @property
    def y(self) -> SampleStats:
        return SampleStats(self.n, self.sum_y, self.sum_y_squares)

    @property
    def covariance(self) -> float:
        """Unbiased sample covariance of x and y; 0 when ``n < 2``."""
        if self.n < 2:
            return 0.0
        return (self.sum_xy - self.sum_x * self.sum_y / self.n) / (self.n - 1)

    def __add__(self, other: RegressionStats) -> RegressionStats:
        if not isinstance(other, RegressionStats):
            return NotImplemented
        return RegressionStats(
            self.n + other.n, self.sum_x + other.sum_x, self.sum_y + other.sum_y,
            self.sum_x_squares + other.sum_x_squares, self.sum_y_squares + other.sum_y_squares,
            self.sum_xy + other.sum_xy,
        )
