r"""Bootstrap replicates of a model-based estimate that refit the reward model on every resample.

A resample of ``n`` rows drawn with replacement is the same as the original rows weighted by how many
times each was drawn (counts :math:`c_{bi}`, summing to ``n``). The per-variant generalised linear
models of :mod:`simulations.reward_model` are therefore refitted for all ``B`` resamples at once, as
weighted fits on the original rows (batched Newton steps for ``logistic``, batched normal equations for
``linear``), and the replicate of an estimator is

.. math:: \hat V_b = \frac{\sum_i c_{bi} u_i(\hat q_b)}{\sum_i c_{bi} d_i},

:math:`u, d` the estimator's per-round kernel under the model :math:`\hat q_b` of resample ``b``. The
encoder (columns, categories, standardisation) is fitted once on the whole log, so the ridge penalty
means the same thing in every resample (with categorical features, which need no standardisation, the
replicates equal refitting each resampled log on its own). Resamples are drawn and fitted in blocks so
that memory stays bounded for long logs. Vowpal Wabbit models are refitted one resample at a time.
"""

from __future__ import annotations

import numpy as np

from simulations.data import LoggedData
from simulations.estimators import EstimatorName, kernel_and_state
from simulations.reward_model import ContextEncoder, RewardModelKind, fit_reward_model, logistic

__all__ = ["refit_replicates"]

#: Resamples are drawn and refitted in blocks of at most this many (resample, row) counts.
_BLOCK_CELLS = 2_000_000


def refit_replicates(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    kind: RewardModelKind,
    clip: float,
    replicates: int,
    rng: np.random.Generator,
    l2: float = 1.0,
) -> np.ndarray:
    """Replicates of ``estimator`` over resamples that each refit the reward model.

    Parameters
    ----------
    estimator : str
        A model-based estimator (``dm``, ``dr``, ``clipped_dr``).
    data : LoggedData
        ``n`` logged sends.
    target_probabilities : ndarray of shape (n, k)
    kind : {"auto", "logistic", "linear", "vw"}
    clip : float
    replicates : int
        ``B``, the number of resamples.
    rng : numpy.random.Generator
        Draws the resampled rows (``B`` draws of ``n`` row indices).
    l2 : float
        Ridge penalty, as in :func:`simulations.reward_model.fit_reward_model`.

    Returns
    -------
    ndarray of shape (B,)
    """
    from threadpoolctl import threadpool_limits  # imported here: only these refits use it

    target = np.asarray(target_probabilities, dtype=float)
    n = data.n
    rewards = np.asarray(data.rewards, dtype=float)
    binary = bool(np.all((rewards == 0) | (rewards == 1)))
    if kind == "auto":
        kind = "logistic" if binary else "linear"
    block = max(1, min(replicates, _BLOCK_CELLS // max(n, 1)))
    parts = []
    for start in range(0, replicates, block):
        indices = rng.integers(0, n, size=(min(block, replicates - start), n))
        if kind == "vw":
            parts.append(_one_at_a_time(estimator, data, target, kind, clip, indices))
            continue
        with threadpool_limits(limits=1, user_api="blas"):  # many tiny products: threads only contend
            parts.append(_batched_replicates(estimator, data, target, kind, clip, indices, rewards, l2))
    return np.concatenate(parts)


def _batched_replicates(
    estimator: EstimatorName, data: LoggedData, target: np.ndarray, kind: RewardModelKind, clip: float,
    indices: np.ndarray, rewards: np.ndarray, l2: float,
) -> np.ndarray:
    replicates, n = indices.shape
    offsets = (indices + n * np.arange(replicates)[:, None]).ravel()
    counts = np.bincount(offsets, minlength=replicates * n).reshape(replicates, n).astype(float)
    x = ContextEncoder.fit(data.contexts).transform(data.contexts)
    coefficients = _weighted_fits(x, np.asarray(data.actions), rewards, data.n_actions, counts,
                                  logistic=kind == "logistic", l2=l2)
    values = np.empty(replicates)
    for b in range(replicates):
        eta = x @ coefficients[b].T
        q = logistic(eta) if kind == "logistic" else eta
        u, d, _ = kernel_and_state(estimator, data, target, q, clip=clip, validate=False)
        denominator = float(n) if d is None else float(counts[b] @ d)
        values[b] = float(counts[b] @ u) / denominator
    return values


def _one_at_a_time(
    estimator: EstimatorName, data: LoggedData, target: np.ndarray, kind: RewardModelKind, clip: float,
    indices: np.ndarray,
) -> np.ndarray:
    values = np.empty(indices.shape[0])
    for b, idx in enumerate(indices):
        sample = data.take(idx)
        q = fit_reward_model(sample, kind=kind).predict(sample.contexts)
        u, d, _ = kernel_and_state(estimator, sample, target[idx], q, clip=clip, validate=False)
        values[b] = u.sum() / (sample.n if d is None else d.sum())
    return values


def _weighted_fits(
    x: np.ndarray, actions: np.ndarray, rewards: np.ndarray, k: int, counts: np.ndarray, *,
    logistic: bool, l2: float,
) -> np.ndarray:
    """Per-resample, per-variant coefficients, shape ``(B, k, width)``.

    A variant with no row in a resample gets the resample's overall mean reward (on the logit scale
    for ``logistic``) as its intercept, as :func:`simulations.reward_model.fit_reward_model` does.
    """
    replicates, width = counts.shape[0], x.shape[1]
    overall = (counts @ rewards) / counts.sum(axis=1)
    if logistic:
        clipped = np.clip(overall, 1e-6, 1 - 1e-6)
        fallback = np.log(clipped / (1 - clipped))
    else:
        fallback = overall
    out = np.zeros((replicates, k, width))
    out[:, :, 0] = fallback[:, None]
    penalty = np.full(width, l2)
    penalty[0] = 0.0
    for a in range(k):
        rows = actions == a
        weights = counts[:, rows]
        present = weights.sum(axis=1) > 0
        if not present.any():
            continue
        fit = _batched_logistic if logistic else _batched_ridge
        out[present, a] = fit(x[rows], rewards[rows], weights[present], penalty)
    return out


def _batched_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    gram = _weighted_gram(x, weights) + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
    return np.linalg.solve(gram, ((weights * y) @ x)[..., None])[..., 0]


def _batched_logistic(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, penalty: np.ndarray, iterations: int = 50
) -> np.ndarray:
    """Newton's method for weighted L2-penalised logistic regressions, one per row of ``weights``."""
    total = weights.sum(axis=1)
    mean = np.clip((weights @ y) / total, 1e-6, 1 - 1e-6)
    beta = np.zeros((weights.shape[0], x.shape[1]))
    beta[:, 0] = np.log(mean / (1 - mean))
    ridge = np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
    for _ in range(iterations):
        p = logistic(beta @ x.T)
        gradient = (weights * (y - p)) @ x - penalty * beta
        hessian = _weighted_gram(x, weights * p * (1 - p)) + ridge
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def _weighted_gram(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:math:`X^\\top \\mathrm{diag}(w_b) X` for each row ``w_b`` of ``weights``: shape ``(B, width, width)``
    (one matrix product over the rows' outer products)."""
    width = x.shape[1]
    outer = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], width * width)
    return (weights @ outer).reshape(weights.shape[0], width, width)
