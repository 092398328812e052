"""Power curves: the power of a planned test against its sample size, or against the effect.

A :class:`PowerCurve` holds the points and the settings that produced them; the chart is drawn by
:func:`analysis.power.plots.plot_power_curve` and the table by :meth:`PowerCurve.to_markdown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from analysis.power.answer import Answer
from analysis.power.inputs import (
    MAX_N_PER_ARM,
    Alternative,
    Correction,
    PowerInputError,
    check_choice,
    check_count,
    check_power,
)
from analysis.power.means import solve_mean
from analysis.power.rates import solve_rate
from analysis.stats import SampleStats

Metric = Literal["rate", "mean"]
#: Most points a curve holds.
MAX_POINTS = 1000
Over = Literal["n", "effect"]


@dataclass(frozen=True)
class PowerCurve(Answer):
    """Points of power against the control-arm size or against the absolute effect.

    Attributes
    ----------
    metric : {"rate", "mean"}
        A conversion rate or a mean value per recipient.
    over : {"n", "effect"}
        What varies along the x axis: the control-arm size, or the absolute effect.
    x : tuple of float, length m
        Control-arm sizes (``over="n"``) or absolute effects (``over="effect"``), increasing.
    power : tuple of float, length m
        Power of each treatment-versus-control comparison at each ``x``.
    fixed_n_per_arm : int or None
        The control-arm size held fixed when ``over="effect"``.
    fixed_effect : float or None
        The absolute effect held fixed when ``over="n"``.
    baseline : float or None
        The control rate (rates) or mean (means, when known).
    target_power : float
        The power the plan aims for; ``x_at_target`` is where the curve reaches it.
    x_at_target : float
        Control-arm size (exact, before rounding) or absolute effect that reaches ``target_power``.
    method : str
        The sentence of the convention used (as in the plans).
    points : tuple of dict, length m
        ``{x name: x, "power": power}`` for each point, the x name ``n_per_arm`` or ``effect``.
    """

    metric: Metric
    over: Over
    x: tuple[float, ...]
    power: tuple[float, ...]
    fixed_n_per_arm: int | None
    fixed_effect: float | None
    baseline: float | None
    target_power: float
    x_at_target: float
    alpha: float
    method: str
    points: tuple[dict[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.points:  # derived from x and power unless given (a copy of a curve)
            name = "n_per_arm" if self.over == "n" else "effect"
            points = tuple({name: x, "power": p} for x, p in zip(self.x, self.power, strict=True))
            object.__setattr__(self, "points", points)

    def rows(self) -> list[dict[str, float]]:
        """One ``{x_name: x, "power": power}`` mapping per point."""
        return [dict(point) for point in self.points]

    def to_markdown(self) -> str:
        """The points as a markdown table."""
        if self.over == "n":
            lines = ["| n per arm | power |", "|---:|---:|"]
            lines += [f"| {x:,.0f} | {p:.3f} |" for x, p in zip(self.x, self.power, strict=True)]
        else:
            lines = ["| effect | power |", "|---:|---:|"]
            lines += [f"| {x:.6g} | {p:.3f} |" for x, p in zip(self.x, self.power, strict=True)]
        return "\n".join(lines)


def power_curve(
    metric: Metric,
    *,
    over: Over = "n",
    baseline: float | None = None,
    sd: float | None = None,
    mde: float | None = None,
    n_per_arm: int | None = None,
    relative: bool = False,
    values: Sequence[float] | None = None,
    sample: Sequence[float] | SampleStats | None = None,
    points: int = 25,
    target_power: float = 0.8,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    arms: int = 2,
    ratio: float = 1.0,
    method: str = "statsmodels",
    correction: Correction = "bonferroni",
) -> PowerCurve:
    """Power against the control-arm size (``over="n"``) or against the effect (``over="effect"``).

    Parameters
    ----------
    metric : {"rate", "mean"}
        ``"rate"`` needs ``baseline``; ``"mean"`` needs ``sd`` or ``sample`` (and ``baseline`` as the
        baseline mean for a relative ``mde`` without a sample).
    over : {"n", "effect"}
        ``"n"`` holds ``mde`` fixed; ``"effect"`` holds ``n_per_arm`` fixed.
    values : sequence of float, optional
        The x values. By default ``points`` values: sizes spaced geometrically from a tenth to three
        times the size that reaches ``target_power``, or effects spaced evenly from a tenth to twice
        the effect that reaches it. At most 1,000.
    sample : sequence of float, or SampleStats, optional
        Past values of a mean metric instead of ``sd``, as in
        :func:`analysis.power.means.solve_mean`.
    target_power : float, default 0.8
        The power marked on the curve.
    Other parameters
        As in :func:`analysis.power.rates.solve_rate` and
        :func:`analysis.power.means.solve_mean`; ``method`` is the convention of the metric.

    Returns
    -------
    PowerCurve

    Examples
    --------
    >>> curve = power_curve("rate", baseline=0.1, mde=0.02, points=5)
    >>> [round(p, 2) for p in curve.power]
    [0.14, 0.27, 0.55, 0.89, 1.0]
    """
    check_choice("metric", metric, ("rate", "mean"))
    check_choice("over", over, ("n", "effect"))
    check_power(target_power)
    points = check_count("points", points, 2, MAX_POINTS)
    options = {"alpha": alpha, "alternative": alternative, "arms": arms, "ratio": ratio, "method": method,
               "correction": correction}
    if metric == "rate" and baseline is None:
        raise PowerInputError("baseline is missing; a rate curve needs the control rate.")
    if metric == "mean" and sd is None and sample is None:
        raise PowerInputError("sd is missing; a mean curve needs the standard deviation.")
    if metric == "rate":
        def solve(**question: Any) -> Any:
            return solve_rate(baseline, **question, **options)  # type: ignore[arg-type]
    else:
        def solve(**question: Any) -> Any:
            return solve_mean(sd, sample=sample, baseline_mean=baseline, **question, **options)
    if over == "n":
        if mde is None:
            raise PowerInputError("mde is missing; a curve over n holds the effect fixed.")
        plan = solve(mde=mde, relative=relative, power=target_power)
        n_exact = plan.sizes.n_exact
        top = min(3 * n_exact, MAX_N_PER_ARM)
        xs = _xs(values, np.geomspace(max(2.0, n_exact / 10), top, points), minimum=2.0)
        powers = [solve(mde=mde, relative=relative, n_per_arm=x, power=None).power for x in xs]
        return PowerCurve(metric, over, xs, tuple(powers), None, plan.mde_absolute, baseline,
                          float(target_power), n_exact, plan.alpha, plan.method)
    if n_per_arm is None:
        raise PowerInputError("n_per_arm is missing; a curve over the effect holds the size fixed.")
    found = solve(n_per_arm=n_per_arm, power=target_power)
    top = 2 * found.mde_absolute
    if metric == "rate":
        top = min(top, (1 - baseline) * (1 - 1e-9))
    xs = _xs(values, np.linspace(found.mde_absolute / 10, top, points), minimum=-np.inf)
    powers = [solve(mde=x, n_per_arm=n_per_arm, power=None).power for x in xs]
    return PowerCurve(metric, over, xs, tuple(powers), int(n_per_arm), None, baseline, float(target_power),
                      found.mde_absolute, found.alpha, found.method)


def _xs(values: Sequence[float] | None, default: np.ndarray, minimum: float) -> tuple[float, ...]:
    if values is None:
        return tuple(float(v) for v in default)
    try:
        xs = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise PowerInputError("values must be a flat sequence of numbers.") from None
    if xs.ndim != 1 or xs.size < 2 or not np.all(np.isfinite(xs)):
        raise PowerInputError("values must be a flat sequence of at least 2 finite numbers.")
    if xs.size > MAX_POINTS:
        raise PowerInputError(f"values must hold at most {MAX_POINTS:,} points; got {xs.size:,}.")
    if np.any(np.diff(xs) <= 0):
        raise PowerInputError("values must be strictly increasing.")
    if xs[0] < minimum:
        raise PowerInputError(f"values must all be at least {minimum:g}; got {xs[0]:g}.")
    return tuple(float(v) for v in xs)
