r"""Off-policy estimators of a target policy's value from logged sends.

Each estimator is a small type that holds only its hyperparameters (the clipping threshold) and one
per-round *kernel* ``(u_i, d_i)``; its estimate is the ratio of two sums over rounds,

.. math::

    \hat V = \frac{\sum_i u_i}{\sum_i d_i}, \qquad
    w_i = \frac{\pi(a_i \mid x_i)}{\mu_i},

where :math:`\pi` is the target policy, :math:`a_i` the logged action, :math:`\mu_i` its logged
propensity, :math:`r_i` the reward and :math:`\hat q(x, a)` a reward model's prediction.

=============== ============================================================ ===========
estimator       :math:`u_i`                                                  :math:`d_i`
=============== ============================================================ ===========
``ips``         :math:`w_i r_i`                                              1
``clipped_ips`` :math:`\min(w_i, M)\, r_i`                                   1
``snips``       :math:`w_i r_i`                                              :math:`w_i`
``dm``          :math:`\sum_a \pi(a \mid x_i)\, \hat q(x_i, a)`              1
``dr``          :math:`\mathrm{dm}_i + w_i (r_i - \hat q(x_i, a_i))`         1
``clipped_dr``  :math:`\mathrm{dm}_i + \min(w_i, M)(r_i - \hat q(x_i, a_i))` 1
``replay``      :math:`\mathbb 1[\pi(x_i) = a_i]\, r_i`                      :math:`\mathbb 1[\pi(x_i) = a_i]`
=============== ============================================================ ===========

Replay (rejection sampling) needs a deterministic target and is unbiased when the logging policy
was uniform; with other logging policies use SNIPS (the same ratio, weighted by :math:`1/\mu_i`).

There is one path from kernel to estimate: the kernel's sums over a chunk of rounds make an
:class:`~simulations.estimates.EstimatorState`; states of chunks merge exactly, and the estimate of
a log held in memory is the one-chunk case. Inputs are checked where they are read: the target's
probability of the logged action (finite, in [0, 1]) and its row sums; estimators that read every
action (``dm``, ``dr``) check the whole row.

References
----------
Dudík, Langford, Li (2011), "Doubly robust policy evaluation and learning", ICML.
Li, Chu, Langford, Wang (2011), "Unbiased offline evaluation of contextual-bandit-based news article
recommendation algorithms", WSDM.
Swaminathan, Joachims (2015), "The self-normalized estimator for counterfactual learning", NeurIPS.
Saito et al. (2021), "Open Bandit Dataset and Pipeline", NeurIPS Datasets and Benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Literal, get_args

import numpy as np

from simulations.data import LoggedData, SimulationInputError
from simulations.estimates import EstimatorState, PolicyEstimate, WarningThresholds
from simulations.exact_sum import ExactSum

__all__ = [
    "ESTIMATORS", "DM", "DR", "IPS", "SNIPS", "ClippedDR", "ClippedIPS", "Estimator", "EstimatorName",
    "EstimatorState", "Kernel", "PolicyEstimate", "Replay", "Rounds", "WarningThresholds",
    "bootstrap_values", "check_target_probabilities", "estimate_policy_value", "estimator_state",
    "estimator_states", "kernel", "kernel_and_state", "make_estimator", "target_weights",
]

EstimatorName = Literal["replay", "ips", "snips", "dm", "dr", "clipped_ips", "clipped_dr"]
ESTIMATORS: tuple[str, ...] = get_args(EstimatorName)


@dataclass(frozen=True)
class Rounds:
    """The logged rounds as an estimator reads them.

    Attributes
    ----------
    rewards, propensities : ndarray of float, shape (n,)
        :math:`r_i` and :math:`\\mu_i`.
    chosen : ndarray of float, shape (n,)
        :math:`\\pi(a_i \\mid x_i)`, the target's probability of the logged action.
    target : ndarray of float, shape (n, k)
        :math:`\\pi(\\cdot \\mid x_i)` (read whole by ``dm`` and ``dr`` only).
    predictions : ndarray of float, shape (n, k), or None
        :math:`\\hat q(x_i, \\cdot)`, for the estimators that use a reward model.
    actions : ndarray of int, shape (n,)
    """

    rewards: np.ndarray
    propensities: np.ndarray
    chosen: np.ndarray
    target: np.ndarray
    predictions: np.ndarray | None
    actions: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """:math:`w_i = \\pi(a_i \\mid x_i) / \\mu_i`, shape (n,)."""
        return self.chosen / self.propensities


@dataclass(frozen=True)
class Kernel:
    """One estimator's per-round terms.

    Attributes
    ----------
    u : ndarray of shape (n,)
    d : ndarray of shape (n,), or None for all ones
    weights : ndarray of shape (n,)
        The importance weights the estimator uses (clipped where it clips).
    raw_weights : ndarray of shape (n,)
        :math:`w_i` before clipping (support diagnostics).
    """

    u: np.ndarray
    d: np.ndarray | None
    weights: np.ndarray
    raw_weights: np.ndarray


class Estimator:
    """An estimator: its name, its hyperparameters, and :meth:`kernel`."""

    name: ClassVar[str]
    needs_model: ClassVar[bool] = False

    def kernel(self, rounds: Rounds) -> Kernel:
        """The per-round terms ``(u, d)`` of the estimator (see the module's table)."""
        raise NotImplementedError

    @property
    def clip(self) -> float | None:
        """The clipping threshold :math:`M`, None for estimators that do not clip."""
        return None


@dataclass(frozen=True)
class IPS(Estimator):
    """Inverse propensity scoring: :math:`u_i = w_i r_i`, :math:`d_i = 1`."""

    name: ClassVar[str] = "ips"

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        return Kernel(w * rounds.rewards, None, w, w)


@dataclass(frozen=True)
class SNIPS(Estimator):
    """Self-normalised IPS: :math:`u_i = w_i r_i`, :math:`d_i = w_i`."""

    name: ClassVar[str] = "snips"

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        return Kernel(w * rounds.rewards, w, w, w)


@dataclass(frozen=True)
class ClippedIPS(Estimator):
    """IPS with weights capped at ``clip``: :math:`u_i = \\min(w_i, M) r_i`."""

    clip_at: float = 10.0
    name: ClassVar[str] = "clipped_ips"

    @property
    def clip(self) -> float:
        return self.clip_at

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        used = np.minimum(w, self.clip_at)
        return Kernel(used * rounds.rewards, None, used, w)


@dataclass(frozen=True)
class DM(Estimator):
    """The direct method: :math:`u_i = \\sum_a \\pi(a \\mid x_i) \\hat q(x_i, a)`."""

    name: ClassVar[str] = "dm"
    needs_model: ClassVar[bool] = True

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        return Kernel(_direct(rounds), None, w, w)


@dataclass(frozen=True)
class DR(Estimator):
    """Doubly robust: :math:`u_i = \\mathrm{dm}_i + w_i (r_i - \\hat q(x_i, a_i))`."""

    name: ClassVar[str] = "dr"
    needs_model: ClassVar[bool] = True

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        return Kernel(_direct(rounds) + w * _residuals(rounds), None, w, w)


@dataclass(frozen=True)
class ClippedDR(Estimator):
    """Doubly robust with weights capped at ``clip``."""

    clip_at: float = 10.0
    name: ClassVar[str] = "clipped_dr"
    needs_model: ClassVar[bool] = True

    @property
    def clip(self) -> float:
        return self.clip_at

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        used = np.minimum(w, self.clip_at)
        return Kernel(_direct(rounds) + used * _residuals(rounds), None, used, w)


@dataclass(frozen=True)
class Replay(Estimator):
    """Rejection sampling of a deterministic target: :math:`u_i = d_i r_i`, :math:`d_i = \\pi(a_i|x_i)`."""

    name: ClassVar[str] = "replay"

    def kernel(self, rounds: Rounds) -> Kernel:
        target = rounds.target
        deterministic = np.all((target == 0.0) | (target == 1.0), axis=1)
        if not deterministic.all():
            row = int(np.flatnonzero(~deterministic)[0])
            raise SimulationInputError(
                "target_probabilities: replay needs a deterministic policy, "
                f"row {row} is {target[row].tolist()}"
            )
        matched = rounds.chosen
        return Kernel(matched * rounds.rewards, matched, matched, matched)


def _direct(rounds: Rounds) -> np.ndarray:
    assert rounds.predictions is not None
    return np.einsum("ij,ij->i", rounds.target, rounds.predictions)


def _residuals(rounds: Rounds) -> np.ndarray:
    assert rounds.predictions is not None
    return rounds.rewards - rounds.predictions[np.arange(rounds.rewards.shape[0]), rounds.actions]


_NAME_TO_TYPE: dict[str, type[Estimator]] = {
    t.name: t for t in (Replay, IPS, SNIPS, DM, DR, ClippedIPS, ClippedDR)
}


def make_estimator(name: str, clip: float = 10.0) -> Estimator:
    """The estimator named ``name`` (one of ``ESTIMATORS``); ``clip`` for the clipped ones."""
    kind = _NAME_TO_TYPE.get(name)
    if kind is None:
        raise SimulationInputError(f"estimator: unknown {name!r}; expected one of {', '.join(ESTIMATORS)}")
    if kind in (ClippedIPS, ClippedDR):
        if not clip > 0:
            raise SimulationInputError(f"clip: must be positive, got {clip}")
        return kind(clip)  # type: ignore[call-arg]
    return kind()


def check_target_probabilities(
    target: np.ndarray, n: int, k: int, name: str = "target_probabilities"
) -> None:
    """Raise :class:`SimulationInputError` unless ``target`` is an ``(n, k)`` array of distributions."""
    target = np.asarray(target)
    if target.shape != (n, k):
        raise SimulationInputError(f"{name}: expected shape ({n}, {k}), got {target.shape}")
    if n == 0:
        return
    if not np.all(np.isfinite(target)) or target.min() < 0:
        row = int(np.flatnonzero(~np.all(np.isfinite(target) & (target >= 0), axis=1))[0])
        raise SimulationInputError(f"{name}: row {row} has a negative or non-finite probability")
    _check_row_sums(np.einsum("ij->i", target), name)


def _check_row_sums(sums: np.ndarray, name: str) -> None:
    if sums.size == 0 or (sums.min() >= 1.0 - 1e-6 and sums.max() <= 1.0 + 1e-6):  # NaN fails both
        return
    bad = np.flatnonzero(~(np.abs(sums - 1.0) <= 1e-6))
    if bad.size:
        raise SimulationInputError(f"{name}: row {int(bad[0])} sums to {sums[bad[0]]:.6g}, not 1")


def read_rounds(
    estimator: Estimator,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    validate: bool = True,
) -> Rounds:
    """What ``estimator`` reads of ``data``, checked as it is read (``validate=False`` when the caller
    already checked the whole target)."""
    n, k = data.n, data.n_actions
    target = np.asarray(target_probabilities, dtype=float)
    if target.shape != (n, k):
        raise SimulationInputError(f"target_probabilities: expected shape ({n}, {k}), got {target.shape}")
    actions = np.asarray(data.actions)
    chosen = target[np.arange(n), actions]
    if validate and n:
        if not (chosen.min() >= 0.0 and chosen.max() <= 1.0):  # NaN fails both
            row = int(np.flatnonzero(~((chosen >= 0.0) & (chosen <= 1.0)))[0])
            raise SimulationInputError(
                f"target_probabilities: row {row} has a negative or non-finite probability"
            )
        if estimator.needs_model or estimator.name == "replay":
            check_target_probabilities(target, n, k)
        else:
            _check_row_sums(np.einsum("ij->i", target), "target_probabilities")
    predictions = None
    if estimator.needs_model:
        if reward_predictions is None:
            raise SimulationInputError(
                f"reward_predictions: estimator {estimator.name!r} needs a reward model"
            )
        predictions = np.asarray(reward_predictions, dtype=float)
        if predictions.shape != (n, k):
            raise SimulationInputError(
                f"reward_predictions: expected shape ({n}, {k}), got {predictions.shape}"
            )
        if n and not np.all(np.isfinite(predictions)):
            raise SimulationInputError("reward_predictions: contains non-finite values")
    rewards = np.asarray(data.rewards, dtype=float)
    propensities = np.asarray(data.propensities, dtype=float)
    return Rounds(rewards, propensities, chosen, target, predictions, actions)


def state_of(estimator: Estimator, rounds: Rounds, result: Kernel) -> EstimatorState:
    """The mergeable sums of one chunk's kernel."""
    n = rounds.rewards.shape[0]
    u, d, used, raw = result.u, result.d, result.weights, result.raw_weights
    clipped = estimator.clip is not None
    sum_u, sum_w, sum_ww = ExactSum.of(u), ExactSum.of(used), ExactSum.of_dot(used, used)
    ones = ExactSum.of_float(float(n))
    return EstimatorState(
        estimator=estimator.name,
        n=n,
        sum_u=sum_u,
        sum_d=ones if d is None else (sum_w if d is used else ExactSum.of(d)),
        sum_uu=ExactSum.of_dot(u, u),
        sum_ud=sum_u if d is None else ExactSum.of_dot(u, d),
        sum_dd=ones if d is None else (sum_ww if d is used else ExactSum.of_dot(d, d)),
        sum_w=sum_w,
        sum_ww=sum_ww,
        sum_raw_w=ExactSum.of(raw) if clipped else sum_w,
        sum_raw_ww=ExactSum.of_dot(raw, raw) if clipped else sum_ww,
        max_weight=float(used.max()) if n else 0.0,
        min_propensity=float(rounds.propensities.min()) if n else math.inf,
        max_propensity=float(rounds.propensities.max()) if n else -math.inf,
        n_clipped=int(np.count_nonzero(raw > estimator.clip)) if clipped else 0,  # type: ignore[operator]
        clip=estimator.clip,
    )


def kernel(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The per-round kernel of the estimator named ``estimator``.

    Parameters
    ----------
    estimator : str
        One of ``ESTIMATORS``.
    data : LoggedData
        ``n`` logged sends over ``k`` variants.
    target_probabilities : ndarray of shape (n, k)
        :math:`\\pi(a \\mid x_i)`, the target policy's distribution per row.
    reward_predictions : ndarray of shape (n, k), optional
        :math:`\\hat q(x_i, a)`; required by ``dm``, ``dr`` and ``clipped_dr``.
    clip : float
        :math:`M`, the weight cap of the clipped estimators.
    validate : bool
        Check what is read of ``target_probabilities`` (skip only when the caller already did).

    Returns
    -------
    u : ndarray of shape (n,)
    d : ndarray of shape (n,) or None (all ones)
    w : ndarray of shape (n,)
        The importance weights the estimator uses (for diagnostics).
    """
    chosen = make_estimator(estimator, clip)
    result = chosen.kernel(read_rounds(chosen, data, target_probabilities, reward_predictions,
                                       validate=validate))
    return result.u, result.d, result.weights


def kernel_and_state(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, EstimatorState]:
    """:func:`kernel`'s ``(u, d)`` and :func:`estimator_state`'s sums, the kernel computed once."""
    chosen = make_estimator(estimator, clip)
    rounds = read_rounds(chosen, data, target_probabilities, reward_predictions, validate=validate)
    result = chosen.kernel(rounds)
    return result.u, result.d, state_of(chosen, rounds, result)


def estimator_state(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> EstimatorState:
    """The mergeable sums of one estimator over ``data`` (see :func:`kernel` for the parameters)."""
    return kernel_and_state(
        estimator, data, target_probabilities, reward_predictions, clip=clip, validate=validate
    )[2]


def estimator_states(
    estimators: Sequence[EstimatorName],
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
) -> dict[str, EstimatorState]:
    """:func:`estimator_state` for several estimators, checking the target probabilities once."""
    check_target_probabilities(np.asarray(target_probabilities), data.n, data.n_actions)
    return {
        name: estimator_state(name, data, target_probabilities, reward_predictions, clip=clip, validate=False)
        for name in estimators
    }


def target_weights(data: LoggedData, target_probabilities: np.ndarray) -> np.ndarray:
    """Importance weights :math:`w_i = \\pi(a_i \\mid x_i) / \\mu_i`, shape ``(n,)``."""
    target = np.asarray(target_probabilities, dtype=float)
    return target[np.arange(data.n), data.actions] / np.asarray(data.propensities, dtype=float)


def estimate_policy_value(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    alpha: float = 0.05,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
    thresholds: WarningThresholds = WarningThresholds(),
) -> PolicyEstimate:
    """Estimate a target policy's value from logged sends held in memory (one chunk).

    Parameters
    ----------
    estimator, data, target_probabilities, reward_predictions, clip
        As in :func:`kernel`.
    alpha : float
        The interval is ``1 - alpha`` two-sided.
    bootstrap : int
        When positive, the interval is the percentile interval of this many bootstrap resamples of
        the same per-round kernel (rows drawn with replacement by ``rng``) instead of the normal one.
    rng : numpy.random.Generator, optional
        Required when ``bootstrap > 0``.
    thresholds : WarningThresholds
        When to warn about extreme weights.

    Returns
    -------
    PolicyEstimate
    """
    u, d, state = kernel_and_state(estimator, data, target_probabilities, reward_predictions, clip=clip)
    estimate = state.to_estimate(alpha, thresholds)
    if bootstrap <= 0:
        return estimate
    if rng is None:
        raise SimulationInputError("rng: a numpy Generator is required for a bootstrap interval")
    replicates = bootstrap_values(u, d, bootstrap, rng)
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return estimate
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return replace(estimate, ci=(float(low), float(high)), std_error=float(np.std(finite, ddof=1)),
                   ci_method="bootstrap")


def bootstrap_values(
    u: np.ndarray, d: np.ndarray | None, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of :math:`\\sum u / \\sum d`, rows resampled with replacement.

    Parameters
    ----------
    u : ndarray of shape (n,)
    d : ndarray of shape (n,) or None (all ones)
    replicates : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (replicates,)
        NaN where a resample's denominator is zero.
    """
    n = u.shape[0]
    if n == 0:
        return np.full(replicates, math.nan)
    out = np.empty(replicates)
    for b in range(replicates):
        idx = rng.integers(0, n, size=n)
        denominator = float(n) if d is None else float(d[idx].sum())
        out[b] = u[idx].sum() / denominator if denominator != 0 else math.nan
    return out

