r"""The decision log of a learning policy as summary statistics: inverse-propensity sums per batch.

A *batch* is one policy version: every decision it made was drawn from the same policy, before any
outcome of the batch was learned. Within a batch the recipients are exchangeable given the past, so
sums over a batch's decisions, weighted by :math:`w = 1/p` (``p`` the logged propensity of the chosen
arm), are all the adaptive estimators of this package need:

.. math::

    n,\quad \sum r,\quad \sum r^2,\quad \sum w,\quad \sum w r,\quad \sum w^2,\quad \sum w^2 r,\quad
    \sum w^2 r^2,\quad \min p

over the decisions of each (policy version, arm). The store fills them with one ``GROUP BY
policy_version, arm`` (``SUM(1.0 / propensity)``, ``SUM(reward / propensity)``, ...), never loading
rows; two of them merge with ``+``. When the propensity of an arm is constant within a batch (a
non-contextual bandit, every recipient allowed the same arms), :meth:`ArmBatchSums.from_constant_propensity`
builds them from the plain count, sum and sum of squares.

Only decisions the policy made belong in the log: fallbacks (holdout, ineligible, paused) are left out.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from analysis.errors import AnalysisInputError
from analysis.stats import flat_pair

_SUM_FIELDS = (
    "reward_sum", "reward_sum_squares", "w_sum", "w_reward_sum", "w2_sum", "w2_reward_sum",
    "w2_reward_squares_sum",
)


@dataclass(frozen=True)
class ArmBatchSums:
    r"""The decisions of one arm within one batch, as inverse-propensity weighted sums.

    Parameters
    ----------
    n : int
        Decisions that chose this arm.
    reward_sum, reward_sum_squares : float
        :math:`\sum r` and :math:`\sum r^2` (rewards of decisions without outcomes are 0).
    w_sum, w_reward_sum : float
        :math:`\sum 1/p` and :math:`\sum r/p`.
    w2_sum, w2_reward_sum, w2_reward_squares_sum : float
        :math:`\sum 1/p^2`, :math:`\sum r/p^2` and :math:`\sum r^2/p^2`.
    min_propensity : float
        The smallest logged propensity among these decisions, in (0, 1]; 1 when ``n`` is 0.

    Examples
    --------
    >>> s = ArmBatchSums.from_constant_propensity(n=4, reward_sum=1.0, reward_sum_squares=1.0,
    ...                                           propensity=0.5)
    >>> s.w_sum, s.w_reward_sum, s.w2_sum
    (8.0, 2.0, 16.0)
    >>> (s + s).n
    8
    """

    n: int
    reward_sum: float
    reward_sum_squares: float
    w_sum: float
    w_reward_sum: float
    w2_sum: float
    w2_reward_sum: float
    w2_reward_squares_sum: float
    min_propensity: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise AnalysisInputError(f"ArmBatchSums.n: must be a non-negative whole number, got {self.n!r}")
        for name in _SUM_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int | float | np.floating | np.integer) or not math.isfinite(value):
                raise AnalysisInputError(f"ArmBatchSums.{name}: must be a finite number, got {value!r}")
        for name in ("reward_sum_squares", "w2_reward_squares_sum"):
            if getattr(self, name) < 0:
                raise AnalysisInputError(f"ArmBatchSums.{name}: must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.min_propensity <= 1:
            raise AnalysisInputError(
                f"ArmBatchSums.min_propensity: must be in (0, 1], got {self.min_propensity!r}"
            )
        tolerance = 1e-9 * max(1.0, self.n)
        if self.w_sum < self.n - tolerance or self.w2_sum < self.w_sum - tolerance * max(1.0, self.w_sum):
            raise AnalysisInputError(
                f"ArmBatchSums: w_sum = {self.w_sum!r} and w2_sum = {self.w2_sum!r} are not sums of 1/p "
                f"and 1/p^2 over n = {self.n} propensities in (0, 1] (need w2_sum >= w_sum >= n)"
            )
        if self.n == 0 and any(getattr(self, name) != 0 for name in _SUM_FIELDS):
            raise AnalysisInputError("ArmBatchSums: n is 0 but some sums are not")

    @classmethod
    def from_constant_propensity(
        cls, n: int, reward_sum: float, reward_sum_squares: float, propensity: float
    ) -> ArmBatchSums:
        """The sums when every decision of the arm in the batch had the same propensity ``p``."""
        if not 0 < propensity <= 1:
            raise AnalysisInputError(f"propensity: must be in (0, 1], got {propensity!r}")
        w = 1.0 / propensity
        return cls(
            n=n, reward_sum=reward_sum, reward_sum_squares=reward_sum_squares, w_sum=n * w,
            w_reward_sum=reward_sum * w, w2_sum=n * w * w, w2_reward_sum=reward_sum * w * w,
            w2_reward_squares_sum=reward_sum_squares * w * w, min_propensity=propensity if n else 1.0,
        )

    @classmethod
    def from_values(cls, rewards: object, propensities: object) -> ArmBatchSums:
        """Summarise raw rewards and propensities, shapes (n,) and (n,). For tests and small data."""
        r, p = flat_pair(rewards, propensities, "from_values: {} rewards but {} propensities")
        if p.size and not (np.all(p > 0) and np.all(p <= 1)):
            raise AnalysisInputError("from_values: propensities must be in (0, 1]")
        w = 1.0 / p
        return cls(
            n=int(r.size), reward_sum=float(r.sum()), reward_sum_squares=float(r @ r), w_sum=float(w.sum()),
            w_reward_sum=float(w @ r), w2_sum=float(w @ w), w2_reward_sum=float((w * w) @ r),
            w2_reward_squares_sum=float((w * w) @ (r * r)), min_propensity=float(p.min()) if p.size else 1.0,
        )

    def __add__(self, other: ArmBatchSums) -> ArmBatchSums:
        if not isinstance(other, ArmBatchSums):
            return NotImplemented
        merged = {name: getattr(self, name) + getattr(other, name) for name in _SUM_FIELDS}
        return ArmBatchSums(
            n=self.n + other.n, min_propensity=min(self.min_propensity, other.min_propensity), **merged
        )


EMPTY_SUMS = ArmBatchSums(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PolicyBatch:
    """The decisions of one policy version, per arm. An arm missing from ``arm_to_sums`` had none.

    Parameters
    ----------
    version : int or None
        The policy version (None for a design that never learns: one batch).
    arm_to_sums : Mapping[str, ArmBatchSums]
        Per arm (variant or combination id), the sums of its decisions in this batch.
    """

    version: int | None
    arm_to_sums: Mapping[str, ArmBatchSums] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Decisions in the batch, all arms together."""
        return sum(s.n for s in self.arm_to_sums.values())

    def sums(self, arm: str) -> ArmBatchSums:
        """The arm's sums (empty when it had no decision in the batch)."""
        return self.arm_to_sums.get(arm, EMPTY_SUMS)


@dataclass(frozen=True)
class LogArrays:
    """The log as arrays of shape (batches, arms), in batch order and the order of ``arms``."""

    arms: tuple[str, ...]
    versions: tuple[int | None, ...]
    n: np.ndarray
    reward_sum: np.ndarray
    reward_sum_squares: np.ndarray
    w_sum: np.ndarray
    w_reward_sum: np.ndarray
    w2_sum: np.ndarray
    w2_reward_sum: np.ndarray
    w2_reward_squares_sum: np.ndarray
    min_propensity: np.ndarray

    @property
    def batch_n(self) -> np.ndarray:
        """Decisions per batch, shape (batches,)."""
        return self.n.sum(axis=1)


_ARRAY_FIELDS = ("n", *_SUM_FIELDS, "min_propensity")


class ArrayLog(Sequence[PolicyBatch]):
    """A log already laid out as :class:`LogArrays` (read from a store as arrays): a sequence of
    :class:`PolicyBatch`, each made when asked for, that :func:`log_arrays` returns without a pass over
    the batches. Every arm is in every batch (an arm without decisions in a batch has the empty sums).

    The arrays are checked as :class:`ArmBatchSums` and :func:`log_arrays` check a log of batches, with
    the same errors.
    """

    def __init__(self, arrays: LogArrays) -> None:
        _check_arrays(arrays)
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays.versions)

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        b = range(len(self))[index]
        data = self.arrays
        return PolicyBatch(data.versions[b], {
            arm: ArmBatchSums(int(data.n[b, j]), *(float(getattr(data, name)[b, j]) for name in _SUM_FIELDS),
                              min_propensity=float(data.min_propensity[b, j]))
            for j, arm in enumerate(data.arms)
        })


def _check_arrays(data: LogArrays) -> None:
    """:class:`ArmBatchSums`'s and :func:`log_arrays`'s checks, over whole arrays."""
    shape = (len(data.versions), len(data.arms))
    if not shape[0]:
        raise AnalysisInputError("log: pass a non-empty sequence of PolicyBatch, oldest first")
    for name in _ARRAY_FIELDS:
        if np.shape(getattr(data, name)) != shape:
            raise AnalysisInputError(f"log arrays: {name} is not of shape {shape}")
    n = data.n
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.floor(n)):
        raise AnalysisInputError("ArmBatchSums.n: must be a non-negative whole number")
    for name in _SUM_FIELDS:
        if not np.all(np.isfinite(getattr(data, name))):
            raise AnalysisInputError(f"ArmBatchSums.{name}: must be a finite number")
    for name in ("reward_sum_squares", "w2_reward_squares_sum"):
        if np.any(getattr(data, name) < 0):
            raise AnalysisInputError(f"ArmBatchSums.{name}: must be >= 0")
    if not np.all((data.min_propensity > 0) & (data.min_propensity <= 1)):
        raise AnalysisInputError("ArmBatchSums.min_propensity: must be in (0, 1]")
    tolerance = 1e-9 * np.maximum(1.0, n)
    if np.any(data.w_sum < n - tolerance) or np.any(
            data.w2_sum < data.w_sum - tolerance * np.maximum(1.0, data.w_sum)):
        raise AnalysisInputError("ArmBatchSums: w_sum and w2_sum are not sums of 1/p and 1/p^2 over n "
                                 "propensities in (0, 1] (need w2_sum >= w_sum >= n)")
    if any(np.any((n == 0) & (getattr(data, name) != 0)) for name in _SUM_FIELDS):
        raise AnalysisInputError("ArmBatchSums: n is 0 but some sums are not")
    known = [v for v in data.versions if v is not None]
    if len(set(known)) != len(known):
        raise AnalysisInputError("log: a policy version appears twice")
    if n.sum() == 0:
        raise AnalysisInputError("log: no decisions")
    if len(set(data.arms)) != len(data.arms) or not all(isinstance(a, str) for a in data.arms):
        raise AnalysisInputError(f"arms: need distinct arm names, got {list(data.arms)}")


def _arrays_for(log: ArrayLog, arms: Sequence[str] | None) -> LogArrays:
    """:func:`log_arrays` of an :class:`ArrayLog`: its arrays, the arms reordered (or added, empty)."""
    data = log.arrays
    names = data.arms if arms is None else tuple(arms)
    if names == data.arms:
        return data
    if len(set(names)) != len(names) or not all(isinstance(name, str) for name in names):
        raise AnalysisInputError(f"arms: need distinct arm names, got {list(names)}")
    unknown = set(data.arms) - set(names)
    if unknown:
        raise AnalysisInputError(f"log: arms {sorted(unknown)} are not among arms {list(names)}")
    columns = {}
    for name in _ARRAY_FIELDS:
        values = getattr(data, name)
        out = np.full((len(data.versions), len(names)), 1.0 if name == "min_propensity" else 0.0)
        for j, arm in enumerate(names):
            if arm in data.arms:
                out[:, j] = values[:, data.arms.index(arm)]
        columns[name] = out
    return LogArrays(arms=names, versions=data.versions, **columns)


def log_arrays(log: Sequence[PolicyBatch], arms: Sequence[str] | None = None) -> LogArrays:
    """Check the log and lay it out as arrays (an :class:`ArrayLog`'s, checked when it was made).

    Parameters
    ----------
    log : Sequence[PolicyBatch]
        The batches in the order they ran (oldest first).
    arms : Sequence[str] or None
        The arms, in the order wanted; by default every arm seen, in order of first appearance.
    """
    if isinstance(log, ArrayLog):
        return _arrays_for(log, arms)
    if isinstance(log, PolicyBatch) or not isinstance(log, Sequence) or not log:
        raise AnalysisInputError("log: pass a non-empty sequence of PolicyBatch, oldest first")
    seen: dict[str, None] = {}
    versions = []
    for i, batch in enumerate(log):
        if not isinstance(batch, PolicyBatch):
            raise AnalysisInputError(f"log[{i}]: expected a PolicyBatch, got {type(batch).__name__}")
        for arm, sums in batch.arm_to_sums.items():
            if not isinstance(sums, ArmBatchSums):
                raise AnalysisInputError(f"log[{i}].arm_to_sums[{arm!r}]: expected ArmBatchSums")
            seen.setdefault(arm, None)
        if batch.version is not None and batch.version in versions:
            raise AnalysisInputError(f"log[{i}].version: policy version {batch.version} appears twice")
        versions.append(batch.version)
    if sum(batch.n for batch in log) == 0:
        raise AnalysisInputError("log: no decisions")
    names = tuple(seen) if arms is None else tuple(arms)
    if len(set(names)) != len(names) or not all(isinstance(name, str) for name in names):
        raise AnalysisInputError(f"arms: need distinct arm names, got {list(names)}")
    unknown = set(seen) - set(names)
    if unknown:
        raise AnalysisInputError(f"log: arms {sorted(unknown)} are not among arms {list(names)}")
    fields = _ARRAY_FIELDS
    row = attrgetter(*fields)
    table = np.array([[row(batch.sums(arm)) for arm in names] for batch in log], dtype=float).reshape(
        len(log), len(names), len(fields))
    columns = {name: table[:, :, j] for j, name in enumerate(fields)}
    return LogArrays(arms=names, versions=tuple(versions), **columns)


def weight_vector(arms: Sequence[str], weights: Mapping[str, float], field: str = "weights") -> np.ndarray:
    """Weights over arms (a target policy or a contrast) as an array in the order of ``arms``; arms not
    named weigh 0."""
    if not isinstance(weights, Mapping) or not weights:
        raise AnalysisInputError(f"{field}: give a non-empty mapping of arm to weight")
    vector = np.zeros(len(arms))
    for arm, weight in weights.items():
        if arm not in arms:
            raise AnalysisInputError(f"{field}: {arm!r} is not one of the arms {list(arms)}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
            raise AnalysisInputError(f"{field}[{arm!r}]: must be a finite number, got {weight!r}")
        vector[list(arms).index(arm)] = float(weight)
    return vector
