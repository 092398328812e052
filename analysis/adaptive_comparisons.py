r"""Variants against control under a learning policy, from the adaptive estimates of every arm.

A variant and the control are each a target (:data:`analysis.adaptive.ArmWeights`: one arm, or, for a
slot of a multi-slot design, the combinations holding the variant). Their estimated values
:math:`\hat\theta_v, \hat\theta_c` are jointly normal with variances :math:`v_v, v_c` and covariance
:math:`c_{vc}` (:func:`analysis.adaptive.covariance_of`), so

.. math::

    z = \frac{\hat\theta_v - \hat\theta_c}{\sqrt{v_v + v_c - 2 c_{vc}}}, \qquad
    p = 2\Phi(-|z|), \qquad P(\text{beat control}) = \Phi(z).

The p-value is the Wald test's (the unpooled variance, consistent with the interval; on a fixed split it
differs from the pooled two-proportion z-test by the variance under the null). ``prob_beat_control`` is
the probability that the variant is better under the estimator's normal approximation read as a
posterior with a flat prior (a confidence distribution): no Beta prior is involved, so on a fixed split
it differs slightly from the Bayesian P(beat control) of :mod:`analysis.bayesian`. The relative lift
uses Fieller's interval with the covariance (:func:`analysis.lift.relative_lift`). The naive difference
of the as-allocated means is kept, labelled :data:`analysis.adaptive.AS_ALLOCATED_NOTE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import special

from analysis.adaptive import (
    AS_ALLOCATED_NOTE,
    ArmValueEstimates,
    ArmWeights,
    ValueEstimate,
    covariance_of,
    estimate_value,
    normal_p_value,
)
from analysis.adaptive_log import PolicyBatch
from analysis.confidence_sequences import AlwaysValidResult, confidence_sequence
from analysis.errors import AnalysisInputError
from analysis.lift import absolute_lift, check_alpha, relative_lift
from analysis.sequential import DEFAULT_TUNING_N


@dataclass(frozen=True)
class AdaptiveComparison:
    """A variant against control, "if every eligible recipient got it", under a learning policy.

    ``lift`` and ``ci`` are relative (``0.05`` is +5%); ``absolute_lift`` and ``absolute_ci`` are in the
    metric's units. ``always_valid`` holds the confidence sequence of the absolute difference (None when
    no log was given). ``as_allocated_lift`` is the difference of the arms' sample means: not an
    estimate of anything under a learning policy, kept for reference with ``as_allocated_note``.
    """

    variant: str
    control: str
    control_value: float
    variant_value: float
    absolute_lift: float
    absolute_ci: tuple[float, float]
    lift: float
    ci: tuple[float, float]
    ci_method: str
    statistic: float
    p_value: float
    prob_beat_control: float
    effective_n: float
    method: str
    always_valid: AlwaysValidResult | None
    as_allocated_lift: float
    as_allocated_note: str = AS_ALLOCATED_NOTE


def compare_targets(
    estimates: ArmValueEstimates,
    variant: tuple[str, ArmWeights],
    control: tuple[str, ArmWeights],
    *,
    alpha: float = 0.05,
    log: Sequence[PolicyBatch] | None = None,
    tuning_n: float = DEFAULT_TUNING_N,
) -> AdaptiveComparison:
    """Compare one target with the control target.

    Parameters
    ----------
    estimates : ArmValueEstimates
        From :func:`analysis.adaptive.estimate_arm_values` (or the cross-fitted AIPW of
        :mod:`analysis.adaptive_aipw`).
    variant, control : (str, Mapping[str, float])
        Each a name and its weights over arms (``("B", {"B": 1.0})`` for a single arm).
    alpha : float
        Two-sided level of the intervals and of the always-valid result.
    log : Sequence[PolicyBatch] or None
        The log the estimates came from; when given, the always-valid result of the difference is added.
    tuning_n : float
        Decisions at which the confidence sequence is tightest.
    """
    check_alpha(alpha)
    (v_name, v_weights), (c_name, c_weights) = variant, control
    v = estimate_value(estimates, v_weights, alpha=alpha, label=v_name)
    c = estimate_value(estimates, c_weights, alpha=alpha, label=c_name)
    cov = covariance_of(estimates, v_weights, c_weights)
    absolute = absolute_lift(c, v, alpha, covariance=cov)
    relative = relative_lift(c, v, alpha, covariance=cov)
    se = math.sqrt(max(c.variance_of_mean + v.variance_of_mean - 2 * cov, 0.0))
    diff = v.estimate - c.estimate
    if se > 0 and math.isfinite(se):
        z = diff / se
    else:
        z = 0.0 if diff == 0 else math.nan
    always_valid = None
    if log is not None:
        contrast = dict(v_weights)
        for arm, weight in c_weights.items():
            contrast[arm] = contrast.get(arm, 0.0) - weight
        always_valid = confidence_sequence(log, contrast, alpha=alpha, tuning_n=tuning_n)
    return AdaptiveComparison(
        variant=v_name, control=c_name, control_value=c.estimate, variant_value=v.estimate,
        absolute_lift=absolute.estimate, absolute_ci=absolute.ci, lift=relative.estimate, ci=relative.ci,
        ci_method=relative.method, statistic=z, p_value=normal_p_value(z),
        prob_beat_control=float(special.ndtr(z)) if z == z else math.nan,
        effective_n=min(v.effective_n, c.effective_n), method=estimates.method, always_valid=always_valid,
        as_allocated_lift=_as_allocated_difference(v, c),
    )


def compare_to_control(
    estimates: ArmValueEstimates,
    control: str,
    *,
    targets: Mapping[str, ArmWeights] | None = None,
    alpha: float = 0.05,
    log: Sequence[PolicyBatch] | None = None,
    tuning_n: float = DEFAULT_TUNING_N,
) -> list[AdaptiveComparison]:
    """Every target against ``control``, in the order of ``targets`` (default: each arm on its own).

    Parameters
    ----------
    targets : Mapping[str, Mapping[str, float]] or None
        Name to weights over arms (see :func:`analysis.adaptive.slot_targets` for the variants of one
        slot of a multi-slot design); None compares the arms themselves.
    control : str
        The name of the control among the targets.
    """
    named = dict(targets) if targets is not None else {arm: {arm: 1.0} for arm in estimates.arms}
    if control not in named:
        raise AnalysisInputError(f"control: {control!r} is not one of {list(named)}")
    return [
        compare_targets(estimates, (name, weights), (control, named[control]), alpha=alpha, log=log,
                        tuning_n=tuning_n)
        for name, weights in named.items() if name != control
    ]


def _as_allocated_difference(variant: ValueEstimate, control: ValueEstimate) -> float:
    return variant.as_allocated_mean - control.as_allocated_mean
