r"""Per-arm sufficient statistics of weighted trials (see :mod:`bandit.row_changes`).

Three kinds, each a frozen dataclass of arrays of shape ``(k,)``:

- :class:`ArmMeans`, count and reward sum (epsilon-greedy, UCB1);
- :class:`ArmSuccesses`, successes and failures (Beta-Bernoulli Thompson sampling);
- :class:`ArmMoments`, count, mean and sum of squared deviations (Gaussian Thompson sampling).

Each answers ``replaced`` (rows leave with their old weight and enter with their new one: ``update``
and ``revise`` alike), ``scaled`` (every weight multiplied by a factor: discounting), ``merged`` (the
statistics of two disjoint sets of rows) and ``combined`` (of many: the hours of a sliding window).
``mass`` is the weight each arm has learned.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np

from bandit.policy import PolicyError
from bandit.row_changes import RowChanges

#: A mass within this fraction of the weight that moved through it is rounding: it becomes zero.
ROUNDING = 1e-12


def _per_arm(changes: RowChanges, values: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(changes.actions, weights=values, minlength=k)


def _refuse_unlearned(mass: np.ndarray, changes: RowChanges) -> None:
    """A row that leaves with a positive weight must leave an arm that learned something."""
    leaving = changes.actions[(changes.old_weights > 0) & (mass[changes.actions] <= 0)]
    if leaving.size:
        raise PolicyError(f"actions: arm {int(leaving[0])} has no learned reward to revise")


def _rounded_away(mass: np.ndarray, before: np.ndarray, changes: RowChanges) -> np.ndarray:
    """Which arms' new ``mass`` is rounding left over after their weight moved out (shape (k,))."""
    moved = _per_arm(changes, changes.old_weights + changes.new_weights, mass.shape[0])
    return np.abs(mass) <= ROUNDING * (np.abs(before) + moved)


class _Arrays:
    """Snapshot plumbing shared by the statistics: each field is stored under its own name.

    ``scaled``, ``merged`` and ``combined`` here are those of statistics that are sums of weights
    (every field scales with the weights and adds over disjoint sets); :class:`ArmMoments` has its own.
    """

    state_keys: ClassVar[tuple[str, ...]]

    def _values(self) -> list[np.ndarray]:
        return [getattr(self, f.name) for f in fields(self)]  # type: ignore[arg-type]

    def state(self) -> dict[str, np.ndarray]:
        return dict(zip(self.state_keys, self._values(), strict=True))

    def scaled(self, factor: float) -> Self:
        return type(self)(*(values * factor for values in self._values()))

    def merged(self, other: Self) -> Self:
        return type(self)(*(a + b for a, b in zip(self._values(), other._values(), strict=True)))

    @classmethod
    def combined(cls, parts: list[Self]) -> Self:
        """The statistics of the union of disjoint sets, shape (k,) each (``parts`` not empty)."""
        return cls(*np.sum([p._values() for p in parts], axis=0))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(*(np.asarray(state[key], dtype=np.float64) for key in cls.state_keys))

    @classmethod
    def empty(cls, k: int) -> Self:
        return cls(*(np.zeros(k) for _ in cls.state_keys))


@dataclass(frozen=True)
class ArmMeans(_Arrays):
    """Weighted count :math:`\\sum w` and reward sum :math:`\\sum w r` per arm."""

    arm_to_count: np.ndarray
    arm_to_sum: np.ndarray
    state_keys: ClassVar[tuple[str, ...]] = ("count", "sum")

    def mass(self) -> np.ndarray:
        return self.arm_to_count

    def means(self, untried: float) -> np.ndarray:
        """Mean reward per arm, shape (k,); ``untried`` where an arm has no weight."""
        out = np.full(self.arm_to_count.shape, float(untried))
        np.divide(self.arm_to_sum, self.arm_to_count, out=out, where=self.arm_to_count > 0)
        return out

    def replaced(self, changes: RowChanges) -> ArmMeans:
        _refuse_unlearned(self.arm_to_count, changes)
        k = self.arm_to_count.shape[0]
        count = self.arm_to_count + _per_arm(changes, changes.new_weights - changes.old_weights, k)
        total = self.arm_to_sum + _per_arm(
            changes, changes.new_weights * changes.new_rewards - changes.old_weights * changes.old_rewards, k)
        gone = _rounded_away(count, self.arm_to_count, changes)
        return ArmMeans(np.where(gone, 0.0, count), np.where(gone, 0.0, total))



@dataclass(frozen=True)
class ArmSuccesses(_Arrays):
    """Weighted successes :math:`\\sum w r` and failures :math:`\\sum w (1 - r)` per arm."""

    arm_to_successes: np.ndarray
    arm_to_failures: np.ndarray
    state_keys: ClassVar[tuple[str, ...]] = ("successes", "failures")

    def mass(self) -> np.ndarray:
        return self.arm_to_successes + self.arm_to_failures

    def replaced(self, changes: RowChanges) -> ArmSuccesses:
        mass = self.mass()
        _refuse_unlearned(mass, changes)
        k = mass.shape[0]
        old_w, new_w = changes.old_weights, changes.new_weights
        successes = self.arm_to_successes + _per_arm(
            changes, new_w * changes.new_rewards - old_w * changes.old_rewards, k)
        failures = self.arm_to_failures + _per_arm(
            changes, new_w * (1.0 - changes.new_rewards) - old_w * (1.0 - changes.old_rewards), k)
        gone = _rounded_away(successes + failures, mass, changes)
        return ArmSuccesses(np.where(gone, 0.0, successes), np.where(gone, 0.0, failures))



@dataclass(frozen=True)
class ArmMoments(_Arrays):
    r"""Weighted count :math:`W`, mean :math:`\mu` and :math:`M_2 = \sum w (x - \mu)^2` per arm.

    Two disjoint sets merge by the parallel-variance formula (Chan, Golub & LeVeque 1979),

    .. math::
        W = W_a + W_b,\quad \mu = \mu_a + (\mu_b - \mu_a) W_b / W,\quad
        M_2 = M_{2,a} + M_{2,b} + (\mu_b - \mu_a)^2 W_a W_b / W,

    and rows leave by solving the same formula for :math:`(W_a, \mu_a, M_{2,a})`, so batches may
    arrive in any order and a revision is exact up to rounding.
    """

    arm_to_count: np.ndarray
    arm_to_mean: np.ndarray
    arm_to_m2: np.ndarray
    state_keys: ClassVar[tuple[str, ...]] = ("count", "mean", "m2")

    def mass(self) -> np.ndarray:
        return self.arm_to_count

    def _batch(self, changes: RowChanges, weights: np.ndarray, values: np.ndarray) -> ArmMoments:
        """The moments of one side of ``changes`` (weights and values per row), per arm."""
        k = self.arm_to_count.shape[0]
        count = _per_arm(changes, weights, k)
        sums = _per_arm(changes, weights * values, k)
        mean = np.divide(sums, count, out=np.zeros(k), where=count > 0)
        deviations = values - mean[changes.actions]
        return ArmMoments(count, mean, _per_arm(changes, weights * deviations**2, k))

    def merged(self, other: ArmMoments) -> ArmMoments:
        k = self.arm_to_count.shape[0]
        total = self.arm_to_count + other.arm_to_count
        delta = other.arm_to_mean - self.arm_to_mean
        share = np.divide(other.arm_to_count, total, out=np.zeros(k), where=total > 0)
        m2 = self.arm_to_m2 + other.arm_to_m2 + delta**2 * self.arm_to_count * share
        return ArmMoments(total, self.arm_to_mean + delta * share, m2)

    @classmethod
    def combined(cls, parts: list[ArmMoments]) -> ArmMoments:
        r"""The moments of the union of disjoint sets (``parts`` not empty), in one pass:
        :math:`W = \sum_j W_j`, :math:`\mu = \sum_j W_j \mu_j / W`,
        :math:`M_2 = \sum_j M_{2,j} + \sum_j W_j (\mu_j - \mu)^2`."""
        count = np.array([p.arm_to_count for p in parts])
        means = np.array([p.arm_to_mean for p in parts])
        total = count.sum(axis=0)
        mean = np.divide((count * means).sum(axis=0), total, out=np.zeros(total.shape), where=total > 0)
        m2 = np.sum([p.arm_to_m2 for p in parts], axis=0) + (count * (means - mean) ** 2).sum(axis=0)
        return ArmMoments(total, mean, m2)

    def _without(self, part: ArmMoments, changes: RowChanges) -> ArmMoments:
        """The moments of the rows other than ``part`` (which must be among them)."""
        k = self.arm_to_count.shape[0]
        rest = self.arm_to_count - part.arm_to_count
        gone = _rounded_away(rest, self.arm_to_count, changes) | (rest <= 0)
        safe = np.where(gone, 1.0, rest)
        gap = self.arm_to_mean - part.arm_to_mean
        mean = self.arm_to_mean + part.arm_to_count * gap / safe
        m2 = self.arm_to_m2 - part.arm_to_m2 - part.arm_to_count * self.arm_to_count / safe * gap**2
        zero = np.zeros(k)
        return ArmMoments(np.where(gone, 0.0, rest), np.where(gone, zero, mean),
                          np.where(gone, zero, np.maximum(m2, 0.0)))  # rounding must not go negative

    def replaced(self, changes: RowChanges) -> ArmMoments:
        _refuse_unlearned(self.arm_to_count, changes)
        stats = self
        if np.any(changes.old_weights > 0):
            stats = stats._without(self._batch(changes, changes.old_weights, changes.old_rewards), changes)
        return stats.merged(self._batch(changes, changes.new_weights, changes.new_rewards))

    def scaled(self, factor: float) -> ArmMoments:
        return ArmMoments(self.arm_to_count * factor, self.arm_to_mean, self.arm_to_m2 * factor)
