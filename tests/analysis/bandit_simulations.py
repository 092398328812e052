"""Seeded simulations of batched Thompson sampling, vectorised over independent runs, for the
calibration tests of the adaptive estimators.

The policy is Beta-Bernoulli Thompson sampling with a Beta(1, 1) prior, updated once per batch: the
probability of each arm is the share of ``draws`` joint posterior draws it wins, floored at ``floor``
per arm (clip and renormalise, as the bandit policies' ``min_share`` does), and the logged propensity is
exactly the probability the arm was drawn with. The contextual version keeps one posterior per segment
of recipients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.adaptive_aipw import DecisionRows
from analysis.adaptive_log import ArmBatchSums, PolicyBatch


def floor_probabilities(probabilities: np.ndarray, floor: float) -> np.ndarray:
    """Raise every probability below ``floor`` to it and scale the others down, along the last axis,
    until none is below (each pass fixes at least one more arm)."""
    p = np.array(probabilities, dtype=float)
    for _ in range(p.shape[-1]):
        low = p < floor
        if not low.any():
            break
        rest = np.where(low, 0.0, p).sum(axis=-1, keepdims=True)
        scale = (1 - floor * low.sum(axis=-1, keepdims=True)) / rest
        p = np.where(low, floor, p * scale)
    return p


def thompson_probabilities(
    successes: np.ndarray, failures: np.ndarray, rng: np.random.Generator, draws: int
) -> np.ndarray:
    """Share of posterior draws each arm wins, shape of ``successes`` (..., k)."""
    samples = rng.beta(1 + successes[..., None], 1 + failures[..., None],
                       size=(*successes.shape, draws))
    winners = samples.argmax(axis=-2)
    return np.stack([(winners == a).mean(axis=-1) for a in range(successes.shape[-1])], axis=-1)


@dataclass(frozen=True)
class BatchedRuns:
    """Per run, batch and arm: the propensity, decisions and successes (binary rewards)."""

    propensity: np.ndarray  # (runs, batches, arms)
    decisions: np.ndarray
    successes: np.ndarray

    def log(self, run: int) -> list[PolicyBatch]:
        """Run ``run``'s log as the store would sum it (propensity constant within a batch)."""
        _, batches, arms = self.decisions.shape
        return [
            PolicyBatch(b, {
                str(a): ArmBatchSums.from_constant_propensity(
                    int(self.decisions[run, b, a]), float(self.successes[run, b, a]),
                    float(self.successes[run, b, a]), float(self.propensity[run, b, a]))
                for a in range(arms)
            })
            for b in range(batches)
        ]


def simulate_thompson(
    rates: list[float], *, runs: int, batches: int, batch_size: int, seed: int, floor: float = 0.01,
    draws: int = 256,
) -> BatchedRuns:
    """Batched Thompson sampling on Bernoulli arms with the given ``rates``, ``runs`` times."""
    rng = np.random.default_rng(seed)
    rate = np.asarray(rates, dtype=float)
    wins = np.zeros((runs, len(rate)))
    losses = np.zeros((runs, len(rate)))
    propensity, decisions, successes = [], [], []
    for _ in range(batches):
        p = floor_probabilities(thompson_probabilities(wins, losses, rng, draws), floor)
        n = rng.multinomial(batch_size, p)
        s = rng.binomial(n, rate)
        wins += s
        losses += n - s
        propensity.append(p)
        decisions.append(n)
        successes.append(s)
    return BatchedRuns(np.stack(propensity, 1), np.stack(decisions, 1), np.stack(successes, 1))


@dataclass(frozen=True)
class ContextualRuns:
    """Per run, batch, segment and arm: propensity, decisions and successes."""

    propensity: np.ndarray  # (runs, batches, segments, arms)
    decisions: np.ndarray
    successes: np.ndarray

    def log(self, run: int) -> list[PolicyBatch]:
        """Run ``run``'s log: each arm's sums over the segments, merged with ``+`` (the propensity is
        constant within a segment and batch, so these are exactly the sums over the rows)."""
        _, batches, segments, arms = self.decisions.shape
        log = []
        for b in range(batches):
            arm_to_sums = {}
            for a in range(arms):
                cells = [
                    ArmBatchSums.from_constant_propensity(
                        int(self.decisions[run, b, g, a]), float(self.successes[run, b, g, a]),
                        float(self.successes[run, b, g, a]), float(self.propensity[run, b, g, a]))
                    for g in range(segments)
                ]
                arm_to_sums[str(a)] = sum(cells[1:], cells[0])
            log.append(PolicyBatch(b, arm_to_sums))
        return log

    def rows(self, run: int, rng: np.random.Generator) -> DecisionRows:
        """Run ``run``'s decisions one row each (segment one-hot as features), in a random order."""
        _, batches, segments, arms = self.decisions.shape
        cell = np.indices((batches, segments, arms)).reshape(3, -1).T
        counts = self.decisions[run].reshape(-1)
        succ = self.successes[run].reshape(-1)
        prop = self.propensity[run].reshape(-1)
        index = np.repeat(np.arange(len(counts)), counts)
        reward = np.zeros(len(index))
        offsets = np.r_[0, np.cumsum(counts)[:-1]]
        for c in np.flatnonzero(succ):
            reward[offsets[c]:offsets[c] + succ[c]] = 1.0
        order = rng.permutation(len(index))
        index, reward = index[order], reward[order]
        b, g, a = cell[index].T
        return DecisionRows(
            arms=tuple(str(j) for j in range(arms)), batch=b, arm=a, reward=reward, propensity=prop[index],
            features=np.eye(segments)[g][:, 1:],
        )


def simulate_contextual_thompson(
    rates: np.ndarray, segment_shares: list[float], *, runs: int, batches: int, batch_size: int, seed: int,
    floor: float = 0.01, draws: int = 256,
) -> ContextualRuns:
    """Batched Thompson sampling with one posterior per segment; ``rates`` has shape (segments, arms)."""
    rng = np.random.default_rng(seed)
    rate = np.asarray(rates, dtype=float)
    segments, arms = rate.shape
    wins = np.zeros((runs, segments, arms))
    losses = np.zeros((runs, segments, arms))
    propensity, decisions, successes = [], [], []
    for _ in range(batches):
        p = floor_probabilities(thompson_probabilities(wins, losses, rng, draws), floor)
        per_segment = rng.multinomial(batch_size, segment_shares, size=runs)
        n = rng.multinomial(per_segment, p)
        s = rng.binomial(n, rate)
        wins += s
        losses += n - s
        propensity.append(p)
        decisions.append(n)
        successes.append(s)
    return ContextualRuns(np.stack(propensity, 1), np.stack(decisions, 1), np.stack(successes, 1))
