"""Always-valid inference for teams that look every day: the mixture SPRT and its confidence sequence.

For a difference estimate :math:`\\hat\\theta` with (estimated) variance :math:`V`, the mixture
likelihood ratio against :math:`H_0: \\theta = 0` with a :math:`N(0, \\tau^2)` mixing distribution is

.. math:: \\Lambda = \\sqrt{\\frac{V}{V + \\tau^2}}
          \\exp\\left(\\frac{\\tau^2 \\hat\\theta^2}{2 V (V + \\tau^2)}\\right)

and :math:`p = \\min(1, 1/\\Lambda)` is a p-value that stays valid however often it is looked at; the
matching confidence sequence is

.. math:: \\hat\\theta \\pm \\sqrt{\\frac{V (V + \\tau^2)}{\\tau^2}
          \\left(2\\log\\frac{1}{\\alpha} + \\log\\frac{V + \\tau^2}{V}\\right)}

(Johari, Koomen, Pekelis and Walsh, "Always valid inference", *Operations Research* 70(3), 2022;
Howard, Ramdas, McAuliffe and Sekhon, *Annals of Statistics* 49(2), 2021). The mixing variance is
tuned so the sequence is tightest when the two arms hold ``tuning_n`` units together:
:math:`\\tau^2 = \\rho^2 \\sigma^2` with :math:`\\sigma^2 = V n` and
:math:`\\rho^2 = (2\\log(1/\\alpha) + \\log(1 + 2\\log(1/\\alpha))) / n^*` (Howard et al., sec. 3.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.errors import AnalysisInputError
from analysis.lift import MeanEstimate, check_alpha

#: Default total units (both arms) at which the confidence sequence is tightest.
DEFAULT_TUNING_N = 10_000


def stopping_rule(alpha: float) -> str:
    """The rule, in words, that keeps the error rate of :func:`msprt` at ``alpha``."""
    return (
        f"Look as often as you like. Stop and call a difference as soon as the always-valid p-value is "
        f"below {alpha:g} (the confidence sequence excludes 0); until then keep running. Do not switch to "
        "the fixed-horizon p-value to stop early."
    )


@dataclass(frozen=True)
class SequentialResult:
    """Always-valid result at this look, for the absolute difference ``variant - control``."""

    estimate: float
    p_value: float
    ci: tuple[float, float]
    tau_squared: float
    rejected: bool
    stopping_rule: str


def mixing_variance(unit_variance: float, tuning_n: float, alpha: float) -> float:
    """:math:`\\tau^2 = \\rho^2 \\sigma^2`, tightest at ``tuning_n`` units (see the module docstring)."""
    if not tuning_n > 0:
        raise AnalysisInputError(f"tuning_n: must be > 0, got {tuning_n!r}")
    log_inv = -2 * math.log(alpha)
    return unit_variance * (log_inv + math.log1p(log_inv)) / tuning_n


def msprt_from_moments(
    estimate: np.ndarray, variance: np.ndarray, tau_squared: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised core: always-valid p-values and confidence-sequence half-widths, same shapes as inputs.

    Where ``variance`` is 0 (no spread yet) the p-value is 1 and the half-width infinite.
    """
    estimate, variance, tau_squared = np.broadcast_arrays(
        np.asarray(estimate, float), np.asarray(variance, float), np.asarray(tau_squared, float)
    )
    ok = (variance > 0) & (tau_squared > 0)
    v = np.where(ok, variance, 1.0)
    t2 = np.where(ok, tau_squared, 1.0)
    log_lambda = 0.5 * np.log(v / (v + t2)) + t2 * estimate**2 / (2 * v * (v + t2))
    p = np.where(ok, np.minimum(1.0, np.exp(-log_lambda)), 1.0)
    half = np.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + np.log((v + t2) / v)))
    return p, np.where(ok, half, np.inf)


def msprt(
    control: MeanEstimate,
    variant: MeanEstimate,
    *,
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
    n_total: int,
) -> SequentialResult:
    """Always-valid p-value and confidence sequence for ``variant.mean - control.mean`` at this look.

    ``n_total`` is the number of units in the two arms together (it scales the estimated variance to a
    per-unit variance for :func:`mixing_variance`). The p-value is the one at this look; over a series of
    looks the always-valid p-value is the running minimum (:func:`running_p_values`), so rejecting on the
    current look alone is, if anything, conservative.

    When neither arm has any spread the difference is exact: a nonzero one gets p = 0 and a sequence of
    that one point (the limit as the variance shrinks, the mixing variance shrinking with it), an equal
    one p = 1 and no bound yet.
    """
    check_alpha(alpha)
    if n_total <= 0:
        raise AnalysisInputError(f"n_total: must be > 0, got {n_total!r}")
    estimate = variant.mean - control.mean
    variance = control.variance_of_mean + variant.variance_of_mean
    tau2 = mixing_variance(variance * n_total, tuning_n, alpha)
    if variance == 0 and estimate != 0:  # no spread in either arm: the difference is exact
        return SequentialResult(
            estimate=estimate, p_value=0.0, ci=(estimate, estimate), tau_squared=tau2, rejected=True,
            stopping_rule=stopping_rule(alpha),
        )
    p, half = msprt_from_moments(np.array(estimate), np.array(variance), np.array(tau2), alpha)
    p_value, h = float(p), float(half)
    return SequentialResult(
        estimate=estimate, p_value=p_value, ci=(estimate - h, estimate + h), tau_squared=tau2,
        rejected=bool(p_value < alpha), stopping_rule=stopping_rule(alpha),
    )


def running_p_values(p_values: Sequence[float]) -> np.ndarray:
    """Always-valid p-values over successive looks: the running minimum, shape (looks,)."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)):
        raise AnalysisInputError("p_values: must be a 1-d sequence of numbers in [0, 1]")
    return np.minimum.accumulate(p)
