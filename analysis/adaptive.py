r"""Each arm's value "if every eligible recipient got this arm", from a log a learning policy wrote.

Under a bandit the arms' sample means are not comparable: the policy sends more traffic to an arm after
it did well, so an arm it starves keeps an unlucky low mean (and a contextual policy sends each arm to
different recipients). Inverse-propensity weights undo the allocation, and the adaptively weighted
estimator of Hadad, Hirshberg, Zhan, Wager & Athey (2021) keeps its normal approximation although the
weights change from batch to batch.

The estimator
-------------
Let batch :math:`b` (one policy version) hold :math:`n_b` decisions, and row :math:`i` of it the chosen
arm :math:`A_i`, its logged propensity :math:`p_i` and reward :math:`r_i`. For arm :math:`a`,

.. math::

    h_{b} = \Big(\frac{1}{n_b}\sum_{i \in b,\, A_i = a} p_i^{-2}\Big)^{-1/2}, \qquad
    \hat Q_a = \frac{\sum_b h_b \sum_{i \in b,\, A_i = a} r_i / p_i}
                    {\sum_b h_b \sum_{i \in b,\, A_i = a} 1 / p_i},

.. math::

    \hat V_a = \frac{\sum_b h_b^2 \sum_{i \in b,\, A_i = a} (r_i - \hat Q_a)^2 / p_i^2}
                    {\big(\sum_b h_b \sum_{i \in b,\, A_i = a} 1/p_i\big)^2}
               \cdot \frac{n^{\mathrm{eff}}_a}{n^{\mathrm{eff}}_a - \mathrm{ddof}}, \qquad
    n^{\mathrm{eff}}_a = \frac{\big(\sum_b h_b \sum_{A_i = a} 1/p_i\big)^2}
                              {\sum_b h_b^2 \sum_{A_i = a} 1/p_i^2}

(the sandwich variance of the estimator). When the propensity of the arm is the same for every decision
of each batch, the allocation did not depend on the recipient, so the arm's rewards have the same
variance in every batch and it is pooled over all :math:`n_a` of them instead:
:math:`\hat V_a = \hat\sigma_a^2 / n^{\mathrm{eff}}_a` with
:math:`\hat\sigma_a^2 = \sum_{A_i = a} (r_i - \hat Q_a)^2 / (n_a - \mathrm{ddof})`. Both estimate the
same variance; the pooled one does not lean on the few decisions of a batch that sent the arm at its
floor, which keeps its coverage closer to nominal in the calibration simulations.

:math:`\hat Q_a` is the adaptively weighted AIPW estimator of Hadad et al. (eq. 6) in its
self-normalised (Hájek) form: the augmentation is the constant :math:`\hat Q_a` itself, so rows of
other arms drop out and only the logged propensity of the chosen arm is needed. :math:`h_b^2` estimates
:math:`1/E_x[1/e_b(x, a)]`, the inverse of the batch's importance-weight variance: the
variance-stabilising ("StableVar") weights of Zhan, Hadad, Hirshberg & Athey (2021), which for a
non-contextual policy are Hadad et al.'s :math:`\sqrt{e_b(a)}`. They make every batch contribute the
same conditional variance per decision (:math:`\sum_{i \in b} h_b^2 p_i^{-2} [A_i = a] = n_b`),
which is what keeps :math:`(\hat Q_a - Q_a)/\sqrt{\hat V_a}` standard normal when the allocation
depends on earlier outcomes. For a non-contextual bandit :math:`\hat Q_a` is the average of the
batches' arm means weighted by :math:`\sqrt{n_b\, n_{b,a}}`: the batched OLS estimator of Zhang, Janson &
Murphy (2020), with the reward variance pooled over batches instead of estimated batch by batch (so a
batch whose rewards of the arm happen to be all equal cannot take all the weight).

Rows of different arms are disjoint, so the arms' estimates are uncorrelated (their linearised
influence functions never share a row): the covariance matrix is diagonal. On a fixed split (one batch,
constant propensities) :math:`\hat Q_a` is the arm's sample mean and :math:`\hat V_a` its squared
standard error (``ddof = 0``: :math:`\hat p(1-\hat p)/n` of the two-proportion z-test; ``ddof = 1``:
:math:`s^2/n` of Welch's test), so the fixed-split analysis is the special case.

Assumptions
-----------
The logged propensity is the probability with which the arm was drawn; within a batch the policy does
not change; recipients of all batches come from one population whose arm values do not drift (the
estimand is a single number per arm); every arm keeps a minimum share (bandit ``min_share``) so that
:math:`1/p` stays bounded; batches are not tiny. An arm forbidden for some recipients (a rule) is
estimated over the recipients allowed it.

References
----------
Hadad, Hirshberg, Zhan, Wager & Athey (2021), "Confidence intervals for policy evaluation in adaptive
experiments", PNAS 118(15).
Zhan, Hadad, Hirshberg & Athey (2021), "Off-policy evaluation via adaptive weighting with data from
contextual bandits", KDD.
Zhang, Janson & Murphy (2020), "Inference for batched bandits", NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from analysis.adaptive_log import LogArrays, PolicyBatch, log_arrays, weight_vector
from analysis.errors import AnalysisInputError
from analysis.lift import check_alpha, critical_value

#: How the per-arm sample means are labelled wherever they are shown beside the adaptive estimates.
AS_ALLOCATED_NOTE = "as allocated: not comparable under a learning policy"

#: The estimator of :func:`estimate_arm_values`, in words.
METHOD = "adaptively weighted IPW (Hadad et al. 2021), self-normalised, batch weights by policy version"

#: Linear weights over arms: a target policy (non-negative, summing to 1) or a contrast.
ArmWeights = Mapping[str, float]


@dataclass(frozen=True)
class ArmValueEstimates:
    """Every arm's value if every eligible recipient got it, estimated jointly.

    Attributes
    ----------
    arms : tuple of str
        The arms, length k.
    estimates : tuple of float
        :math:`\\hat Q_a`, length k; NaN for an arm with no decision.
    covariance : tuple of tuple of float
        The k x k covariance matrix of the estimates.
    effective_n : tuple of float
        Kish's effective sample size of the weights each estimate puts on its rows,
        :math:`(\\sum \\omega)^2 / \\sum \\omega^2`: the number of equally weighted decisions it is worth.
    decisions : tuple of int
        Decisions each arm got (as allocated).
    as_allocated : tuple of float
        Each arm's mean reward over the decisions it got: :data:`AS_ALLOCATED_NOTE`.
    method : str
        The estimator, in words.
    """

    arms: tuple[str, ...]
    estimates: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    effective_n: tuple[float, ...]
    decisions: tuple[int, ...]
    as_allocated: tuple[float, ...]
    method: str

    def weight_vector(self, weights: ArmWeights, field: str = "weights") -> np.ndarray:
        """``weights`` as an array in the order of :attr:`arms` (missing arms weigh 0)."""
        return weight_vector(self.arms, weights, field)


@dataclass(frozen=True)
class ValueEstimate:
    """The value of one arm or one target policy, with its normal-approximation interval.

    ``mean`` and ``variance_of_mean`` make it a :class:`analysis.lift.MeanEstimate`, so the lift
    intervals of :mod:`analysis.lift` apply to it.
    """

    label: str
    estimate: float
    std_error: float
    ci: tuple[float, float]
    effective_n: float
    decisions: int
    as_allocated_mean: float
    as_allocated_note: str = AS_ALLOCATED_NOTE

    @property
    def mean(self) -> float:
        return self.estimate

    @property
    def variance_of_mean(self) -> float:
        return self.std_error**2


def estimate_arm_values(
    log: Sequence[PolicyBatch], *, arms: Sequence[str] | None = None, ddof: Literal[0, 1] = 1
) -> ArmValueEstimates:
    """Adaptively weighted, self-normalised IPW estimates of every arm's value (module docstring).

    Parameters
    ----------
    log : Sequence[PolicyBatch]
        The batches (policy versions) in the order they ran, fallbacks excluded.
    arms : Sequence[str] or None
        The arms and their order; by default the arms the log names.
    ddof : {0, 1}
        0 for a rate (the variance :math:`\\hat p(1-\\hat p)/n` of the z-test on a fixed split), 1 for a
        value metric (:math:`s^2/n`, Welch's).

    Returns
    -------
    ArmValueEstimates
    """
    if ddof not in (0, 1):
        raise AnalysisInputError(f"ddof: must be 0 or 1, got {ddof!r}")
    data = log_arrays(log, arms)
    weights, denominator = _batch_weights(data)
    constant = constant_propensity(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = (weights * data.w_reward_sum).sum(axis=0) / denominator
        q = np.nan_to_num(estimate)
        effective = denominator**2 / (weights**2 * data.w2_sum).sum(axis=0)
        effective = np.where(denominator > 0, effective, 0.0)
        squares = data.w2_reward_squares_sum - 2 * q * data.w2_reward_sum + q**2 * data.w2_sum
        sandwich = np.maximum((weights**2 * squares).sum(axis=0), 0.0) / denominator**2
        sandwich = np.where(effective > ddof, sandwich * effective / (effective - ddof), np.nan)
        n = data.n.sum(axis=0)
        residual = data.reward_sum_squares.sum(axis=0) - 2 * q * data.reward_sum.sum(axis=0) + q**2 * n
        pooled = np.where(n > ddof, np.maximum(residual, 0.0) / (n - ddof) / effective, np.nan)
        variance = np.where(constant, pooled, sandwich)
        as_allocated = data.reward_sum.sum(axis=0) / n
    return ArmValueEstimates(
        arms=data.arms,
        estimates=tuple(float(x) for x in estimate),
        covariance=tuple(tuple(float(x) for x in row) for row in np.diag(variance)),
        effective_n=tuple(float(x) for x in effective),
        decisions=tuple(int(x) for x in data.n.sum(axis=0)),
        as_allocated=tuple(float(x) for x in as_allocated),
        method=METHOD,
    )


def constant_propensity(data: LogArrays, rel_tol: float = 1e-7) -> np.ndarray:
    """Per arm, shape (arms,): True when its propensity was the same for every decision of each batch.

    By Cauchy-Schwarz :math:`n \\sum w^2 \\ge (\\sum w)^2`, with equality exactly when all the
    :math:`w = 1/p` of the batch's decisions of the arm are equal; ``rel_tol`` absorbs the rounding of
    sums over many rows (a policy whose propensities vary at all spreads them far more).
    """
    spread = data.n * data.w2_sum - data.w_sum**2
    return np.all(spread <= rel_tol * np.maximum(data.w_sum**2, 1.0), axis=0)


def batch_weights(log: Sequence[PolicyBatch], arms: Sequence[str] | None = None) -> np.ndarray:
    """The variance-stabilising weights :math:`h_b` of every (batch, arm), shape (batches, arms);
    0 where the arm had no decision in the batch."""
    return _batch_weights(log_arrays(log, arms))[0]


def _batch_weights(data: LogArrays) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.where(data.w2_sum > 0, np.sqrt(data.batch_n[:, None] / data.w2_sum), 0.0)
    return h, (h * data.w_sum).sum(axis=0)


def estimate_value(
    estimates: ArmValueEstimates, weights: ArmWeights, *, alpha: float = 0.05, label: str | None = None
) -> ValueEstimate:
    """The value of a linear combination of arms, :math:`\\sum_a c_a \\hat Q_a`, with its interval.

    For a target policy that sends arm ``a`` with probability :math:`c_a` to everyone (a single arm,
    the defaults, a uniform split) this is its value. The effective sample size is Kish's over the
    combined row weights, :math:`(\\sum_a c_a)^2 / \\sum_a c_a^2 / n^{\\mathrm{eff}}_a`.
    """
    check_alpha(alpha)
    c = estimates.weight_vector(weights)
    q = np.asarray(estimates.estimates)
    cov = np.asarray(estimates.covariance)
    used = c != 0
    effective_n = np.asarray(estimates.effective_n)
    if np.any(effective_n[used] <= 0):
        value, se = math.nan, math.nan
    else:
        value = float(c[used] @ q[used])
        se = math.sqrt(max(float(c[used] @ cov[np.ix_(used, used)] @ c[used]), 0.0))
    half = critical_value(alpha) * se
    ess = 0.0 if math.isnan(value) else float(c.sum() ** 2 / np.sum(c[used] ** 2 / effective_n[used]))
    n = np.asarray(estimates.decisions)[used]
    reward_sums = np.nan_to_num(np.asarray(estimates.as_allocated)[used]) * n
    return ValueEstimate(
        label=label if label is not None else _describe(weights),
        estimate=value, std_error=se, ci=(value - half, value + half), effective_n=ess,
        decisions=int(n.sum()), as_allocated_mean=float(reward_sums.sum() / n.sum()) if n.sum() else math.nan,
    )


def arm_values(estimates: ArmValueEstimates, *, alpha: float = 0.05) -> list[ValueEstimate]:
    """Each arm's value with its interval, in the order of ``estimates.arms``."""
    return [estimate_value(estimates, {arm: 1.0}, alpha=alpha, label=arm) for arm in estimates.arms]


def covariance_of(estimates: ArmValueEstimates, first: ArmWeights, second: ArmWeights) -> float:
    """Covariance of two linear combinations of the arms' estimates, :math:`c_1^T \\Sigma c_2`."""
    c1 = estimates.weight_vector(first, "first")
    c2 = estimates.weight_vector(second, "second")
    return float(c1 @ np.nan_to_num(np.asarray(estimates.covariance)) @ c2)


def normal_p_value(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return float(2 * special.ndtr(-abs(z))) if z == z else math.nan


def uniform_split(arms: Sequence[str]) -> dict[str, float]:
    """The target policy that sends every arm to an equal share of recipients."""
    if not arms:
        raise AnalysisInputError("arms: a uniform split needs at least one arm")
    return {arm: 1.0 / len(arms) for arm in arms}


def slot_targets(
    combination_to_variants: Mapping[str, Mapping[str, str]], slot: str
) -> dict[str, dict[str, float]]:
    """For each variant of ``slot``, the target "everyone gets this variant, the other slots split
    evenly": equal weights on every combination holding it.

    Parameters
    ----------
    combination_to_variants : Mapping[str, Mapping[str, str]]
        Per combination (arm) id, its variant of each slot.
    slot : str

    Examples
    --------
    >>> combos = {"a|x": {"s": "a", "t": "x"}, "a|y": {"s": "a", "t": "y"}, "b|x": {"s": "b", "t": "x"}}
    >>> slot_targets(combos, "s")
    {'a': {'a|x': 0.5, 'a|y': 0.5}, 'b': {'b|x': 1.0}}
    """
    variant_to_arms: dict[str, list[str]] = {}
    for arm, variants in combination_to_variants.items():
        if slot not in variants:
            raise AnalysisInputError(f"combination_to_variants[{arm!r}]: has no variant for slot {slot!r}")
        variant_to_arms.setdefault(variants[slot], []).append(arm)
    return {variant: uniform_split(arms) for variant, arms in variant_to_arms.items()}


def _describe(weights: ArmWeights) -> str:
    return " + ".join(f"{w:g}*{arm}" for arm, w in weights.items() if w)
