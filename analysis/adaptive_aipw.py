r"""Adaptively weighted AIPW with a cross-fitted reward model: the row-level estimator for contextual logs.

When a contextual policy targets (sends each arm to the recipients it suits), the inverse-propensity
estimates of :mod:`analysis.adaptive` are unbiased but noisy: a recipient type an arm rarely reaches is
represented by few decisions with large weights. A reward model :math:`\hat m(x, a)` fitted on the
contexts removes the predictable part of the reward first (augmented IPW):

.. math::

    \Gamma_i(a) = \hat m_{-i}(x_i, a) + \frac{[A_i = a]}{p_i}\big(r_i - \hat m_{-i}(x_i, a)\big), \qquad
    \hat Q_a = \frac{\sum_b h_{b,a} \sum_{i \in b} \Gamma_i(a)}{\sum_b h_{b,a}\, n_b},

with the variance-stabilising batch weights :math:`h_{b,a}` of :mod:`analysis.adaptive` (Hadad et al.
2021, eq. 6; Zhan et al. 2021). The model must not see the row it predicts, nor anything that depends
on it: :math:`\hat m_{-i}` for a row of batch :math:`b` in fold :math:`k` is fitted on the earlier
batches and on the other folds of batch :math:`b` (cross-fitting within the batch, whose rows are
independent given the past), never on later batches, whose allocation learned from row :math:`i`. The
model is a ridge regression of the reward on ``[1, features]`` per arm (the intercept is not
penalised; a jitter of 1e-9 on the diagonal keeps an arm without training rows at 0).

The covariance of the arms' estimates comes from the influence values
:math:`\psi_i(a) = h_{b(i),a} (\Gamma_i(a) - \hat Q_a) / \sum_b h_{b,a} n_b`:
:math:`\widehat{\mathrm{Cov}}(\hat Q_a, \hat Q_c) = \sum_i \psi_i(a) \psi_i(c)` (rows are shared across
arms through :math:`\hat m`, so it is not diagonal).

When to use which: the sums of :mod:`analysis.adaptive` are exact for every log size and cost one SQL
``GROUP BY``; use them for results. This estimator needs the rows (contexts included) in memory: use it
for contextual designs of modest size, or on a uniform random sample of the log's decisions (the
estimate is then that of the sample, with its wider interval), when the effective sample size of the
IPW estimate is small and a tighter interval is worth reading the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.adaptive import ArmValueEstimates
from analysis.adaptive_log import ArmBatchSums, PolicyBatch
from analysis.errors import AnalysisInputError


@dataclass(frozen=True, eq=False)
class DecisionRows:
    """Logged decisions as arrays, oldest batch first.

    Parameters
    ----------
    arms : tuple of str
        The arm names, length k.
    batch : ndarray of int, shape (n,)
        Each decision's batch (policy version) as an index 0..B-1 in the order the batches ran.
    arm : ndarray of int, shape (n,)
        The chosen arm, an index into ``arms``.
    reward : ndarray of float, shape (n,)
    propensity : ndarray of float, shape (n,)
        The logged probability of the chosen arm, in (0, 1].
    features : ndarray of float, shape (n, d)
        The context as numbers (d may be 0).
    """

    arms: tuple[str, ...]
    batch: np.ndarray
    arm: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray
    features: np.ndarray

    def __post_init__(self) -> None:
        n = np.shape(self.reward)[0] if np.ndim(self.reward) == 1 else -1
        if n <= 0:
            raise AnalysisInputError("reward: need a non-empty one-dimensional array")
        for name in ("batch", "arm", "propensity"):
            if np.shape(getattr(self, name)) != (n,):
                raise AnalysisInputError(f"{name}: shape {np.shape(getattr(self, name))}, expected ({n},)")
        if np.ndim(self.features) != 2 or np.shape(self.features)[0] != n:
            raise AnalysisInputError(f"features: shape {np.shape(self.features)}, expected ({n}, d)")
        if len(self.arms) < 1 or len(set(self.arms)) != len(self.arms):
            raise AnalysisInputError(f"arms: need distinct names, got {list(self.arms)}")
        if not np.all((self.arm >= 0) & (self.arm < len(self.arms))):
            raise AnalysisInputError(f"arm: indices must be in 0..{len(self.arms) - 1}")
        if not (np.all(self.propensity > 0) and np.all(self.propensity <= 1)):
            raise AnalysisInputError("propensity: must be in (0, 1]")
        if np.any(self.batch < 0):
            raise AnalysisInputError("batch: indices must be >= 0")
        for name in ("reward", "features"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise AnalysisInputError(f"{name}: must be finite")

    @property
    def n_batches(self) -> int:
        return int(self.batch.max()) + 1


def log_from_rows(rows: DecisionRows) -> list[PolicyBatch]:
    """The per-(batch, arm) sums of the rows: what the store computes with SQL."""
    return [
        PolicyBatch(b, {
            name: ArmBatchSums.from_values(rows.reward[mask], rows.propensity[mask])
            for j, name in enumerate(rows.arms)
            if (mask := (rows.batch == b) & (rows.arm == j)).any()
        })
        for b in range(rows.n_batches)
    ]


def estimate_arm_values_aipw(
    rows: DecisionRows, *, folds: int = 5, ridge: float = 1.0, seed: int = 0
) -> ArmValueEstimates:
    """Adaptively weighted AIPW estimates of every arm's value with a cross-fitted ridge reward model.

    Parameters
    ----------
    rows : DecisionRows
    folds : int, >= 2
        Folds of each batch for cross-fitting.
    ridge : float, >= 0
        Ridge penalty on the feature coefficients.
    seed : int
        Seeds the random assignment of rows to folds.

    Returns
    -------
    ArmValueEstimates
        With a full covariance matrix (module docstring).
    """
    k = len(rows.arms)
    n_batches = rows.n_batches
    predictions = cross_fitted_predictions(rows, folds=folds, ridge=ridge, seed=seed)  # (n, k)
    chosen = rows.arm[:, None] == np.arange(k)[None, :]
    w = 1.0 / rows.propensity
    scores = predictions + chosen * (w * (rows.reward - predictions[np.arange(len(w)), rows.arm]))[:, None]

    batch_n = np.bincount(rows.batch, minlength=n_batches).astype(float)
    cell = rows.batch * k + rows.arm
    w1 = np.bincount(cell, weights=w, minlength=n_batches * k).reshape(n_batches, k)
    w2 = np.bincount(cell, weights=w * w, minlength=n_batches * k).reshape(n_batches, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(w2 > 0, np.sqrt(batch_n[:, None] / w2), 0.0)
    row_h = h[rows.batch]  # (n, k)
    total_h = (h * batch_n[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = (row_h * scores).sum(axis=0) / total_h
        influence = row_h * (scores - estimate) / total_h
        effective = np.where(total_h > 0, (h * w1).sum(axis=0) ** 2 / (h**2 * w2).sum(axis=0), 0.0)
    influence = np.where(total_h > 0, influence, np.nan)
    covariance = influence.T @ influence
    decisions = chosen.sum(axis=0)
    reward_sums = (chosen * rows.reward[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        as_allocated = reward_sums / decisions
    return ArmValueEstimates(
        arms=tuple(rows.arms),
        estimates=tuple(float(x) for x in estimate),
        covariance=tuple(tuple(float(x) for x in row) for row in covariance),
        effective_n=tuple(float(x) for x in effective),
        decisions=tuple(int(x) for x in decisions),
        as_allocated=tuple(float(x) for x in as_allocated),
        method=f"adaptively weighted AIPW (Hadad et al. 2021), ridge reward model cross-fitted in {folds} "
        "folds",
    )


def cross_fitted_predictions(
    rows: DecisionRows, *, folds: int = 5, ridge: float = 1.0, seed: int = 0
) -> np.ndarray:
    """:math:`\\hat m_{-i}(x_i, a)` for every row and arm, shape (n, k).

    Row ``i`` is in fold ``numpy.random.default_rng(seed).integers(0, folds, size=n)[i]``; its
    prediction for arm ``a`` comes from the ridge regression of the reward on ``[1, features]`` over
    the decisions of arm ``a`` in earlier batches and in the other folds of its own batch.
    """
    _check_fitting(folds, ridge)
    fold = np.random.default_rng(seed).integers(0, folds, size=rows.reward.shape[0])
    design = np.column_stack([np.ones(rows.reward.shape[0]), np.asarray(rows.features, float)])
    k = len(rows.arms)
    d = design.shape[1]
    n_batches = rows.n_batches
    group = rows.batch * folds + fold
    members = {int(g): np.flatnonzero(group == g) for g in np.unique(group)}
    gram = np.zeros((n_batches, folds, k, d, d))
    moment = np.zeros((n_batches, folds, k, d))
    for g, idx in members.items():
        b, f = divmod(g, folds)
        x, arm, reward = design[idx], rows.arm[idx], rows.reward[idx]
        for a in range(k):
            xa = x[arm == a]
            gram[b, f, a] = xa.T @ xa
            moment[b, f, a] = xa.T @ reward[arm == a]
    batch_gram, batch_moment = gram.sum(axis=1), moment.sum(axis=1)  # (B, k, d, d), (B, k, d)
    past_gram = np.cumsum(batch_gram, axis=0) - batch_gram
    past_moment = np.cumsum(batch_moment, axis=0) - batch_moment
    train_gram = past_gram[:, None] + batch_gram[:, None] - gram  # (B, folds, k, d, d)
    train_moment = past_moment[:, None] + batch_moment[:, None] - moment
    penalty = np.diag(np.r_[1e-9, np.full(d - 1, ridge + 1e-9)])
    coefficients = np.linalg.solve(train_gram + penalty, train_moment[..., None])[..., 0]  # (B, folds, k, d)
    predictions = np.empty((design.shape[0], k))
    for g, idx in members.items():
        b, f = divmod(g, folds)
        predictions[idx] = design[idx] @ coefficients[b, f].T
    return predictions


def _check_fitting(folds: int, ridge: float) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise AnalysisInputError(f"folds: must be a whole number >= 2, got {folds!r}")
    if isinstance(ridge, bool) or not (isinstance(ridge, int | float) and np.isfinite(ridge) and ridge >= 0):
        raise AnalysisInputError(f"ridge: must be a finite number >= 0, got {ridge!r}")


def rows_from_arrays(
    arms: Sequence[str], batch: object, arm: object, reward: object, propensity: object, features: object
) -> DecisionRows:
    """Build :class:`DecisionRows` from array-likes (lists, pandas columns), converting types once."""
    x = np.asarray(features, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    return DecisionRows(
        arms=tuple(arms), batch=np.asarray(batch, dtype=np.int64), arm=np.asarray(arm, dtype=np.int64),
        reward=np.asarray(reward, dtype=float), propensity=np.asarray(propensity, dtype=float), features=x,
    )
