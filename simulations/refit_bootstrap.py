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

:func:`refit_models` returns the resamples' models themselves, for a replay that evaluates them on other
rows than they were fitted on (:mod:`simulations.streaming`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulations.data import Contexts, LoggedData
from simulations.estimators import EstimatorName, kernel_and_state
from simulations.reward_model import (
    ContextEncoder,
    RewardModel,
    RewardModelKind,
    fit_reward_model,
    logistic,
)

__all__ = ["RefitModels", "refit_models", "refit_replicates"]

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
    kind = _resolved(kind, rewards)
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


#: Most (row, model, variant) predictions :meth:`RefitModels.direct_sums` holds at once.
_PREDICTION_CELLS = 4_000_000


@dataclass(frozen=True)
class RefitModels:
    """Reward models refitted on resamples of the rows one model was fitted on (:func:`refit_models`).

    Attributes
    ----------
    encoder : ContextEncoder or None
        The linear models' shared encoder (None for Vowpal Wabbit models).
    coefficients : ndarray of shape (B, k, width)
        The linear models' coefficients (empty for Vowpal Wabbit models).
    link : {"logistic", "identity"}
    models : tuple of RewardModel
        The Vowpal Wabbit models (empty for linear ones).
    """

    encoder: ContextEncoder | None
    coefficients: np.ndarray
    link: Literal["logistic", "identity"]
    models: tuple[RewardModel, ...] = ()

    def __len__(self) -> int:
        return len(self.models) if self.encoder is None else int(self.coefficients.shape[0])

    def direct_sums(self, contexts: Contexts, target: np.ndarray) -> np.ndarray:
        """Per model ``b``, :math:`\\sum_i \\sum_a \\pi(a \\mid x_i)\\, \\hat q_b(x_i, a)` over the rows of
        ``contexts``, shape ``(B,)``: the sum of the direct method's per-row terms under each model.

        Linear models are scored a block of models at a time (one pass over the features per block).
        """
        if self.encoder is None:
            return np.array([float(np.einsum("ij,ij->", target, m.predict(contexts))) for m in self.models])
        replicates, k, width = self.coefficients.shape
        n = target.shape[0]
        block = max(1, min(replicates, _PREDICTION_CELLS // max(n * k, 1)))
        out = np.empty(replicates)
        for start in range(0, replicates, block):
            part = self.coefficients[start:start + block]
            eta = self.encoder.scores(contexts, part.reshape(-1, width)).reshape(n, part.shape[0], k)
            q = logistic(eta, out=eta) if self.link == "logistic" else eta
            out[start:start + part.shape[0]] = np.einsum("ibj,ij->b", q, target)
        return out


def refit_models(
    data: LoggedData, kind: RewardModelKind, replicates: int, rng: np.random.Generator, l2: float = 1.0
) -> RefitModels:
    """Reward models fitted on ``replicates`` resamples of ``data`` (rows drawn with replacement).

    For a replay whose reward model was fitted on ``data``: the spread of the direct method's estimate
    over these models is the part of its error that comes from the model's fit.

    Parameters
    ----------
    data : LoggedData
        The rows the reward model was fitted on.
    kind, replicates, rng, l2
        As in :func:`refit_replicates`.

    Returns
    -------
    RefitModels
        Linear models share the encoder :func:`~simulations.reward_model.fit_reward_model` fits on
        ``data`` (see the module's notes).
    """
    from threadpoolctl import threadpool_limits

    rewards = np.asarray(data.rewards, dtype=float)
    kind = _resolved(kind, rewards)
    n = data.n
    block = max(1, min(replicates, _BLOCK_CELLS // max(n, 1)))
    link: Literal["logistic", "identity"] = "logistic" if kind == "logistic" else "identity"
    if kind == "vw":
        models = [fit_reward_model(data.take(idx), kind=kind)
                  for start in range(0, replicates, block)
                  for idx in rng.integers(0, n, size=(min(block, replicates - start), n))]
        return RefitModels(None, np.zeros((0, data.n_actions, 0)), link, tuple(models))
    encoder = ContextEncoder.fit(data.contexts)
    x = encoder.transform(data.contexts)
    parts = []
    for start in range(0, replicates, block):
        indices = rng.integers(0, n, size=(min(block, replicates - start), n))
        with threadpool_limits(limits=1, user_api="blas"):
            parts.append(_resample_coefficients(x, data, kind, indices, rewards, l2)[0])
    return RefitModels(encoder, np.concatenate(parts), link)


def _resolved(kind: RewardModelKind, rewards: np.ndarray) -> RewardModelKind:
    """``auto`` resolved as :func:`~simulations.reward_model.fit_reward_model` resolves it."""
    if kind != "auto":
        return kind
    return "logistic" if bool(np.all((rewards == 0) | (rewards == 1))) else "linear"


def _resample_coefficients(
    x: np.ndarray, data: LoggedData, kind: RewardModelKind, indices: np.ndarray, rewards: np.ndarray,
    l2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-resample coefficients, shape ``(B, k, width)``, and the resample counts, shape ``(B, n)``."""
    replicates, n = indices.shape
    offsets = (indices + n * np.arange(replicates)[:, None]).ravel()
    counts = np.bincount(offsets, minlength=replicates * n).reshape(replicates, n).astype(float)
    coefficients = _weighted_fits(x, np.asarray(data.actions), rewards, data.n_actions, counts,
                                  logistic=kind == "logistic", l2=l2)
    return coefficients, counts


def _batched_replicates(
    estimator: EstimatorName, data: LoggedData, target: np.ndarray, kind: RewardModelKind, clip: float,
    indices: np.ndarray, rewards: np.ndarray, l2: float,
) -> np.ndarray:
    replicates, n = indices.shape
    x = ContextEncoder.fit(data.contexts).transform(data.contexts)
    coefficients, counts = _resample_coefficients(x, data, kind, indices, rewards, l2)
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
