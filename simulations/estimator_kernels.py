r"""The off-policy estimator types and their per-round kernels.

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
The sums, the estimate and the checks of what is read are in :mod:`simulations.estimators`.

References
----------
Dudík, Langford, Li (2011), "Doubly robust policy evaluation and learning", ICML.
Li, Chu, Langford, Wang (2011), "Unbiased offline evaluation of contextual-bandit-based news article
recommendation algorithms", WSDM.
Swaminathan, Joachims (2015), "The self-normalized estimator for counterfactual learning", NeurIPS.
Saito et al. (2021), "Open Bandit Dataset and Pipeline", NeurIPS Datasets and Benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import numpy as np

from simulations.errors import SimulationInputError

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
    weights : ndarray of float, shape (n,)
        :math:`w_i = \\pi(a_i \\mid x_i) / \\mu_i`.
    target : ndarray of float, shape (n, k)
        :math:`\\pi(\\cdot \\mid x_i)` (read whole by ``dm``, ``dr`` and ``replay`` only).
    predictions : ndarray of float, shape (n, k), or None
        :math:`\\hat q(x_i, \\cdot)`, for the estimators that use a reward model.
    actions : ndarray of int, shape (n,)
    """

    rewards: np.ndarray
    propensities: np.ndarray
    chosen: np.ndarray
    weights: np.ndarray
    target: np.ndarray
    predictions: np.ndarray | None
    actions: np.ndarray


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
    #: Whether :meth:`kernel` reads every action's probability (else only the logged action's).
    reads_whole_target: ClassVar[bool] = False

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
    #: Whether :math:`d_i = w_i` (the self-normalised estimator) instead of 1.
    self_normalised: ClassVar[bool] = False

    def kernel(self, rounds: Rounds) -> Kernel:
        w = rounds.weights
        return Kernel(w * rounds.rewards, w if self.self_normalised else None, w, w)


@dataclass(frozen=True)
class SNIPS(IPS):
    """Self-normalised IPS: :math:`u_i = w_i r_i`, :math:`d_i = w_i`."""

    name: ClassVar[str] = "snips"
    self_normalised: ClassVar[bool] = True


@dataclass(frozen=True)
class ClippedEstimator(Estimator):
    """An estimator whose importance weights are capped at ``clip_at`` (:math:`M`)."""

    clip_at: float = 10.0

    @property
    def clip(self) -> float:
        return self.clip_at


@dataclass(frozen=True)
class ClippedIPS(ClippedEstimator):
    """IPS with weights capped at ``clip_at``: :math:`u_i = \\min(w_i, M) r_i`."""

    name: ClassVar[str] = "clipped_ips"

    def kernel(self, rounds: Rounds) -> Kernel:
        used = np.minimum(rounds.weights, self.clip_at)
        return Kernel(used * rounds.rewards, None, used, rounds.weights)


@dataclass(frozen=True)
class DM(Estimator):
    """The direct method: :math:`u_i = \\sum_a \\pi(a \\mid x_i) \\hat q(x_i, a)`."""

    name: ClassVar[str] = "dm"
    needs_model: ClassVar[bool] = True
    reads_whole_target: ClassVar[bool] = True

    def kernel(self, rounds: Rounds) -> Kernel:
        return Kernel(_direct(rounds), None, rounds.weights, rounds.weights)


@dataclass(frozen=True)
class DR(Estimator):
    """Doubly robust: :math:`u_i = \\mathrm{dm}_i + w_i (r_i - \\hat q(x_i, a_i))`."""

    name: ClassVar[str] = "dr"
    needs_model: ClassVar[bool] = True
    reads_whole_target: ClassVar[bool] = True

    def kernel(self, rounds: Rounds) -> Kernel:
        return _doubly_robust(rounds, rounds.weights)


@dataclass(frozen=True)
class ClippedDR(ClippedEstimator):
    """Doubly robust with weights capped at ``clip_at``."""

    name: ClassVar[str] = "clipped_dr"
    needs_model: ClassVar[bool] = True
    reads_whole_target: ClassVar[bool] = True

    def kernel(self, rounds: Rounds) -> Kernel:
        return _doubly_robust(rounds, np.minimum(rounds.weights, self.clip_at))


@dataclass(frozen=True)
class Replay(Estimator):
    """Rejection sampling of a deterministic target: :math:`u_i = d_i r_i`, :math:`d_i = \\pi(a_i|x_i)`."""

    name: ClassVar[str] = "replay"
    reads_whole_target: ClassVar[bool] = True

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


def _doubly_robust(rounds: Rounds, used: np.ndarray) -> Kernel:
    """:math:`u_i = \\mathrm{dm}_i + v_i (r_i - \\hat q(x_i, a_i))` with the weights ``used``."""
    assert rounds.predictions is not None
    residuals = rounds.rewards - logged_column(rounds.predictions, rounds.actions)
    residuals *= used
    residuals += _direct(rounds)
    return Kernel(residuals, None, used, rounds.weights)


def flat_indices(shape: tuple[int, int], actions: np.ndarray) -> np.ndarray:
    """The flat indices ``i * k + a_i`` of each row's logged action in a C-ordered ``(n, k)`` array,
    int64, shape (n,)."""
    n, k = shape
    flat = np.arange(0, n * k, k, dtype=np.int64)
    return np.add(flat, actions, out=flat, casting="unsafe")


def logged_column(matrix: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``matrix[i, actions[i]]`` for every row of an ``(n, k)`` array, shape (n,).

    One ``take`` on flat indices (faster than indexing with two index arrays).
    """
    return np.ascontiguousarray(matrix).reshape(-1).take(flat_indices(matrix.shape, actions))


_NAME_TO_TYPE: dict[str, type[Estimator]] = {
    t.name: t for t in (Replay, IPS, SNIPS, DM, DR, ClippedIPS, ClippedDR)
}


def make_estimator(name: str, clip: float = 10.0) -> Estimator:
    """The estimator named ``name`` (one of ``ESTIMATORS``); ``clip`` for the clipped ones."""
    kind = _NAME_TO_TYPE.get(name)
    if kind is None:
        raise SimulationInputError(f"estimator: unknown {name!r}; expected one of {', '.join(ESTIMATORS)}")
    if issubclass(kind, ClippedEstimator):
        if not clip > 0:
            raise SimulationInputError(f"clip: must be positive, got {clip}")
        return kind(clip_at=clip)
    return kind()
