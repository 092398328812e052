r"""Always-valid results under adaptive allocation: off-policy asymptotic confidence sequences.

For a target :math:`\theta = \sum_a c_a Q_a` (an arm's value: :math:`c = e_a`; a difference of two
arms: :math:`c = e_a - e_b`; a target policy), every decision :math:`i` gives the doubly robust
pseudo-outcome

.. math::

    \varphi_i = \sum_a c_a \hat m_{b(i), a} + c_{A_i} \frac{r_i - \hat m_{b(i), A_i}}{p_i},

where :math:`\hat m_{b,a}` is arm :math:`a`'s self-normalised IPW mean over the batches *before*
:math:`b` (0 in the first batch): a reward model fitted on the past only, so
:math:`E[\varphi_i \mid \text{past}] = \theta` whatever the logging policy did (Waudby-Smith, Wu, Ramdas,
Karampatziakis & Mineiro, 2022, sec. 3). The pseudo-outcomes of batch :math:`b` are weighted by the
variance-stabilising weight of :mod:`analysis.adaptive`,
:math:`h_b = (\sum_a c_a^2 \hat E_b[1/e_b(a)])^{-1/2}` with
:math:`\hat E_b[1/e_b(a)] = \frac{1}{n_b}\sum_{i \in b, A_i = a} p_i^{-2}`, so that every batch adds about
the same variance per decision (Hadad et al., 2021): without them the few decisions an arm gets at the
propensity floor, each weighted :math:`1/p`, dominate the sum and its normal approximation fails.
The weighted sum :math:`\sum_i h_{b(i)} (\varphi_i - \theta)` is a martingale. After :math:`t`
decisions, with :math:`H_t = \sum_i h_{b(i)}`, :math:`\hat\theta_t = \sum_i h_{b(i)} \varphi_i / H_t` and
:math:`\hat V_t = \sum_i h_{b(i)}^2 (\varphi_i - \hat\theta_t)^2`, the asymptotic confidence sequence is

.. math::

    \hat\theta_t \pm \frac{1}{H_t}\sqrt{\hat V_t\, \frac{t\rho^2 + 1}{t \rho^2}
    \log\frac{t\rho^2 + 1}{\alpha^2}}, \qquad
    \rho^2 = \frac{2\log(1/\alpha) + \log(1 + 2\log(1/\alpha))}{n^*}

(Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, 2024, Theorem 2.2 and its martingale form: Robbins'
Gaussian-mixture boundary on the intrinsic time :math:`\hat V_t`, whose mixing variance is scaled by
:math:`\hat V_t / t` so the sequence is tightest near :math:`t = n^*` decisions). The always-valid
p-value of :math:`\theta = \theta_0` is :math:`\min(1, 1/M_t)` with the mixture martingale

.. math:: M_t = (t\rho^2+1)^{-1/2} \exp\Big(\frac{t\rho^2\, H_t^2 (\hat\theta_t - \theta_0)^2}
          {2 \hat V_t (t\rho^2 + 1)}\Big),

below :math:`\alpha` exactly when :math:`\theta_0` is outside the sequence. Looking after every batch,
or at any data-dependent time, keeps the error rate at :math:`\alpha` asymptotically.

Every sum above is a sum of the per-(batch, arm) sums of :mod:`analysis.adaptive_log`, so the sequence
is computed without rows. It is asymptotic: the normal approximation needs each batch to give an arm at
the propensity floor some tens of decisions (with a 1% floor, batches of a few thousand). A
nonasymptotic (betting) sequence would need the decisions one by one, in order; none is given.

References
----------
Waudby-Smith, Wu, Ramdas, Karampatziakis & Mineiro (2022), "Anytime-valid off-policy inference for
contextual bandits", arXiv:2210.10768 (ACM/IMS Journal of Data Science, 2024).
Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2024), "Time-uniform central limit theory and asymptotic
confidence sequences", Annals of Statistics 52(6).
Hadad, Hirshberg, Zhan, Wager & Athey (2021), "Confidence intervals for policy evaluation in adaptive
experiments", PNAS 118(15).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.adaptive import ArmWeights
from analysis.adaptive_log import LogArrays, PolicyBatch, log_arrays, weight_vector
from analysis.errors import AnalysisInputError
from analysis.lift import check_alpha
from analysis.sequential import DEFAULT_TUNING_N


@dataclass(frozen=True)
class AlwaysValidResult:
    """The confidence sequence and always-valid p-value after one look (the end of a batch).

    ``estimate`` is the mean of the pseudo-outcomes (not the adaptively weighted point estimate);
    ``p_value`` tests ``estimate == null``; ``rejected`` is ``p_value < alpha``; ``decisions`` is the
    number of decisions seen so far.
    """

    version: int | None
    decisions: int
    estimate: float
    ci: tuple[float, float]
    p_value: float
    rejected: bool
    null: float
    method: str = "off-policy asymptotic confidence sequence (Waudby-Smith et al. 2022)"


def mixing_rho_squared(alpha: float, tuning_n: float) -> float:
    """:math:`\\rho^2` of the module docstring: the boundary is tightest near ``tuning_n`` decisions."""
    check_alpha(alpha)
    if not (isinstance(tuning_n, int | float) and math.isfinite(tuning_n) and tuning_n > 0):
        raise AnalysisInputError(f"tuning_n: must be a positive number, got {tuning_n!r}")
    log_inv = -2 * math.log(alpha)
    return (log_inv + math.log1p(log_inv)) / tuning_n


def confidence_sequence_path(
    log: Sequence[PolicyBatch],
    weights: ArmWeights,
    *,
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
    null: float = 0.0,
) -> tuple[AlwaysValidResult, ...]:
    """The always-valid result after every batch of ``log``, oldest first.

    Parameters
    ----------
    log : Sequence[PolicyBatch]
        The batches in the order they ran.
    weights : Mapping[str, float]
        The target :math:`c`: ``{arm: 1}`` for an arm's value, ``{variant: 1, control: -1}`` for a
        difference, a target policy's probabilities for its value.
    alpha : float
        Error rate over all looks together.
    tuning_n : float
        Decisions at which the sequence is tightest.
    null : float
        The value tested by ``p_value`` (0 for a difference).
    """
    return _path(log, weights, alpha, tuning_n, null, last_only=False)


def _path(
    log: Sequence[PolicyBatch], weights: ArmWeights, alpha: float, tuning_n: float, null: float,
    *, last_only: bool,
) -> tuple[AlwaysValidResult, ...]:
    """The results after every batch, or after the last one alone (the same arithmetic for it)."""
    rho2 = mixing_rho_squared(alpha, tuning_n)
    if not math.isfinite(null):
        raise AnalysisInputError(f"null: must be finite, got {null!r}")
    data = log_arrays(log)
    c = weight_vector(data.arms, weights)
    t, total_h, estimate, spread = _weighted_scores(data, c)
    results = []
    for b in range(len(t) - 1, len(t)) if last_only else range(len(t)):
        if total_h[b] <= 0:
            results.append(AlwaysValidResult(
                data.versions[b], int(t[b]), math.nan, (-math.inf, math.inf), 1.0, False, null))
            continue
        half, p = _boundary(estimate[b] - null, spread[b], total_h[b], t[b], rho2, alpha)
        results.append(AlwaysValidResult(
            version=data.versions[b], decisions=int(t[b]), estimate=float(estimate[b]),
            ci=(estimate[b] - half, estimate[b] + half), p_value=p, rejected=p < alpha, null=null,
        ))
    return tuple(results)


def confidence_sequence(
    log: Sequence[PolicyBatch],
    weights: ArmWeights,
    *,
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
    null: float = 0.0,
) -> AlwaysValidResult:
    """The always-valid result now (after the last batch); see :func:`confidence_sequence_path` (only
    the last batch's boundary is computed)."""
    return _path(log, weights, alpha, tuning_n, null, last_only=True)[-1]


def _weighted_scores(
    data: LogArrays, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """After each batch: decisions :math:`t`, :math:`H_t`, :math:`\\hat\\theta_t` and :math:`\\hat V_t`."""
    past_w = np.cumsum(data.w_sum, axis=0) - data.w_sum
    past_wr = np.cumsum(data.w_reward_sum, axis=0) - data.w_reward_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(past_w > 0, past_wr / past_w, 0.0)  # (batches, arms): fitted on earlier batches only
        inverse_e = data.w2_sum / data.batch_n[:, None]
        design = inverse_e @ (c**2)
        h = np.where(design > 0, 1 / np.sqrt(design), 0.0)
    n_b = data.batch_n
    baseline = m @ c
    residual = data.w_reward_sum - m * data.w_sum  # per arm: sum of (r - m) / p over its decisions
    residual_sq = data.w2_reward_squares_sum - 2 * m * data.w2_reward_sum + m**2 * data.w2_sum
    first = n_b * baseline + residual @ c  # sum of phi over the batch
    second = n_b * baseline**2 + 2 * baseline * (residual @ c) + residual_sq @ (c**2)  # sum of phi^2
    total_h = np.cumsum(h * n_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.cumsum(h * first) / total_h
    spread = (np.cumsum(h**2 * second) - 2 * estimate * np.cumsum(h**2 * first)
              + estimate**2 * np.cumsum(h**2 * n_b))
    return np.cumsum(n_b), total_h, estimate, np.maximum(spread, 0.0)


def _boundary(
    deviation: float, spread: float, total_h: float, t: float, rho2: float, alpha: float
) -> tuple[float, float]:
    """Half-width of the sequence and the always-valid p-value of a deviation from the null."""
    if spread <= 0:
        return math.inf, 1.0
    scale = t * rho2 + 1
    half = math.sqrt(spread * scale / (t * rho2) * math.log(scale / alpha**2)) / total_h
    log_m = -0.5 * math.log(scale) + t * rho2 * total_h**2 * deviation**2 / (2 * spread * scale)
    return half, float(min(1.0, math.exp(-log_m)))
