"""Arm rates over time: cumulative rates with Wilson intervals from daily counts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Self

from scipy import special

from analysis.errors import AnalysisInputError
from analysis.lift import check_alpha


@dataclass(frozen=True)
class DailyPoint:
    """Units sent and events counted on one day for one variant of one slot."""

    day: date
    slot: str
    variant: str
    n: int
    event_counts: Mapping[str, int]


@dataclass(frozen=True)
class ObservedRate:
    """``successes`` out of ``n`` units: their rate (0 when ``n`` is 0) and its Wilson interval."""

    n: int
    successes: int
    rate: float
    ci: tuple[float, float]

    @classmethod
    def of(cls, successes: int, n: int, alpha: float = 0.05, **labels: Any) -> Self:
        """The rate and the ``1 - alpha`` Wilson interval of ``successes`` out of ``n`` (``labels``: the
        fields a subclass adds)."""
        return cls(n=n, successes=successes, rate=successes / n if n else 0.0,
                   ci=wilson_interval(successes, n, alpha), **labels)


@dataclass(frozen=True)
class RatePoint(ObservedRate):
    """Cumulative rate of ``metric`` up to and including ``day``, with its Wilson interval."""

    day: date
    slot: str
    variant: str
    metric: str


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion (Wilson 1927); ``(0, 1)`` when ``n`` is 0.

    .. math:: \\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}
    """
    check_alpha(alpha)
    if n == 0:
        return (0.0, 1.0)
    z = float(-special.ndtri(alpha / 2))
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return (max((centre - half) / scale, 0.0), min((centre + half) / scale, 1.0))


def cumulative_rates(daily: Sequence[DailyPoint], metric: str, alpha: float = 0.05) -> list[RatePoint]:
    """Running totals per (slot, variant) in day order; one :class:`RatePoint` per input day."""
    check_alpha(alpha)
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    out = []
    for i, point in enumerate(sorted(daily, key=lambda p: (p.slot, p.variant, p.day))):
        count = int(point.event_counts.get(metric, 0))
        if point.n < 0 or not 0 <= count <= point.n:
            raise AnalysisInputError(
                f"daily[{i}]: need n >= 0 and 0 <= event_counts[{metric!r}] <= n, got n={point.n}, {count}"
            )
        n0, x0 = totals.get((point.slot, point.variant), (0, 0))
        n, x = n0 + point.n, x0 + count
        totals[(point.slot, point.variant)] = (n, x)
        out.append(RatePoint.of(x, n, alpha, day=point.day, slot=point.slot, variant=point.variant,
                                metric=metric))
    return out
