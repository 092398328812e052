r"""Off-policy estimates of a target policy's value from logged sends: the sums of an estimator's
per-round kernel, and the estimate they give.

The estimator types and their kernels ``(u_i, d_i)`` are in :mod:`simulations.estimator_kernels`.
There is one path from kernel to estimate: the kernel's sums over a chunk of rounds make an
:class:`~simulations.estimates.EstimatorState` (from which the estimate, its standard error, its
interval and the weight diagnostics all come); states of chunks merge exactly, and the estimate of a
log held in memory is the one-chunk case. Inputs are checked where they are read: the target's
probability of the logged action (in [0, 1]) and the target's row sums (1 to within 1e-6); the
estimators that read every action (``dm``, ``dr``, ``replay``) check the whole row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from simulations.data import LoggedData, SimulationInputError
from simulations.estimates import (
    EstimatorState,
    PolicyEstimate,
    WarningThresholds,
    finite_sums,
    rewards_too_large,
)
from simulations.estimator_kernels import (
    ESTIMATORS,
    Estimator,
    EstimatorName,
    Kernel,
    Rounds,
    flat_indices,
    make_estimator,
)
from simulations.exact_sum import ExactSum

__all__ = [
    "ESTIMATORS", "EstimatorName", "EstimatorState", "PolicyEstimate", "WarningThresholds",
    "bootstrap_values", "check_target_probabilities", "estimate_policy_value", "estimator_state",
    "estimator_states", "kernel_and_state",
]


def check_target_probabilities(
    target: np.ndarray, n: int, k: int, name: str = "target_probabilities"
) -> None:
    """Raise :class:`SimulationInputError` unless ``target`` is an ``(n, k)`` array of distributions."""
    target = np.asarray(target)
    if target.shape != (n, k):
        raise SimulationInputError(f"{name}: expected shape ({n}, {k}), got {target.shape}")
    if n == 0:
        return
    if not np.all(np.isfinite(target)) or target.min() < 0 or target.max() > 1:
        row, column = np.argwhere(~(np.isfinite(target) & (target >= 0) & (target <= 1)))[0]
        raise SimulationInputError(f"{name}: row {row} has {_probability_problem(target[row, column])}")
    _check_row_sums(np.einsum("ij->i", target), name)


def _probability_problem(value: float) -> str:
    """What is wrong with a probability outside [0, 1], as text."""
    if math.isnan(value):
        return "a missing (NaN) probability"
    if value < 0:
        return f"a negative probability ({value:g})"
    return f"a probability above 1 ({value:g})"


def _check_row_sums(sums: np.ndarray, name: str) -> None:
    if sums.size == 0 or (sums.min() >= 1.0 - 1e-6 and sums.max() <= 1.0 + 1e-6):  # NaN fails both
        return
    bad = np.flatnonzero(~(np.abs(sums - 1.0) <= 1e-6))
    if bad.size:
        raise SimulationInputError(f"{name}: row {int(bad[0])} sums to {sums[bad[0]]:.6g}, not 1")


def _read_logged(
    target: np.ndarray, actions: np.ndarray, propensities: np.ndarray,
    check: Literal["read", "whole", "none"],
) -> tuple[np.ndarray, np.ndarray]:
    """The target's probability of each logged action and the importance weights, shape (n,) each.

    ``check``: ``"read"`` checks what is read (the gathered probabilities in [0, 1], the row sums);
    ``"whole"`` checks those probabilities and then the whole target.

    The (n, k) target is read twice (the gather and the row sums); the (n,) buffer of the gather's
    flat indices is reused for the row sums and then for the weights, so only two new arrays are made.
    """
    buffer = flat_indices(target.shape, actions)
    chosen = np.ascontiguousarray(target).reshape(-1).take(buffer)
    floats = buffer.view(np.float64)
    if check != "none":
        if not (chosen.min() >= 0.0 and chosen.max() <= 1.0):  # NaN fails both
            row = int(np.flatnonzero(~((chosen >= 0.0) & (chosen <= 1.0)))[0])
            raise SimulationInputError(
                f"target_probabilities: row {row} has {_probability_problem(chosen[row])}"
            )
        if check == "whole":
            check_target_probabilities(target, *target.shape)
        else:
            _check_row_sums(np.einsum("ij->i", target, out=floats), "target_probabilities")
    return chosen, np.divide(chosen, propensities, out=floats)


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
    propensities = np.asarray(data.propensities, dtype=float)
    check = "whole" if estimator.reads_whole_target else "read"
    chosen, weights = _read_logged(target, actions, propensities, check if validate and n else "none")
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
    return Rounds(rewards, propensities, chosen, weights, target, predictions, actions)


def state_of(
    estimator: Estimator, rounds: Rounds, result: Kernel, action_names: tuple[str, ...] = ()
) -> EstimatorState:
    """The mergeable sums of one chunk's kernel (with ``action_names``, the rows that logged each
    variant and the target's probability of it, from which the support of the target is judged)."""
    n = rounds.rewards.shape[0]
    k = len(action_names)
    mass = np.einsum("ij->j", rounds.target) if k and n else np.zeros(k)
    u, d, used, raw = result.u, result.d, result.weights, result.raw_weights
    clipped = estimator.clip is not None
    ranged = n > 0 and estimator.name == "replay"  # only replay's warnings read the propensities' range
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
        min_propensity=float(rounds.propensities.min()) if ranged else math.inf,
        max_propensity=float(rounds.propensities.max()) if ranged else -math.inf,
        n_clipped=int(np.count_nonzero(raw > estimator.clip)) if clipped else 0,  # type: ignore[operator]
        clip=estimator.clip,
        action_names=action_names,
        action_rows=tuple(int(c) for c in np.bincount(rounds.actions, minlength=k)[:k]) if k else (),
        target_mass=tuple(ExactSum.of_float(float(m)) for m in mass),
    )


def kernel_and_state(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, EstimatorState]:
    """The per-round kernel ``(u, d)`` of the estimator named ``estimator`` and its mergeable sums.

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
    state : EstimatorState
        The sums of the kernel over the rows (one chunk).
    """
    chosen = make_estimator(estimator, clip)
    rounds = read_rounds(chosen, data, target_probabilities, reward_predictions, validate=validate)
    with finite_sums(lambda: rewards_too_large(f"the {estimator} estimate", _largest_values(rounds))):
        result = chosen.kernel(rounds)
        return result.u, result.d, state_of(chosen, rounds, result, tuple(data.action_names))


def _largest_values(rounds: Rounds) -> str:
    """The largest |reward|, importance weight and |predicted reward| of ``rounds``, as text."""
    parts = [f"largest |reward| {np.abs(rounds.rewards).max():.3g}",
             f"largest importance weight {rounds.weights.max():.3g}"]
    if rounds.predictions is not None:
        parts.append(f"largest |predicted reward| {np.abs(rounds.predictions).max():.3g}")
    return ", ".join(parts)


def estimator_state(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    validate: bool = True,
) -> EstimatorState:
    """The mergeable sums of one estimator over ``data`` (see :func:`kernel_and_state` for the parameters)."""
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
        As in :func:`kernel_and_state`.
    alpha : float
        The interval is ``1 - alpha`` two-sided.
    bootstrap : int
        When positive, the interval is the percentile interval of this many bootstrap resamples of
        the same per-round kernel (rows drawn with replacement by ``rng``) instead of the normal one.
        ``dm`` gets no interval either way: both hold the reward model fixed (see
        :data:`simulations.estimates.REFIT_ONLY`; :func:`simulations.replay.evaluate_policy` refits).
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
    if bootstrap <= 0 or estimate.ci_method == "none":  # no estimate, or one that needs a refit
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

