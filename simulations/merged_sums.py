r"""Mergeable sums for the parts of a replay that are not one estimator's kernel alone.

- :class:`RewardSums`: the logging policy's observed value (mean logged reward and its normal
  interval), merged exactly;
- :class:`LiftSums`: a candidate's value minus the logging policy's on the same rows, with the paired
  interval of :func:`simulations.estimators.estimate_lift` computed from merged sums;
- :class:`BootstrapSums` and :func:`add_poisson_bootstrap`: a Poisson bootstrap accumulated chunk by
  chunk (each row's weight in replicate ``b`` is a Poisson(1) draw that depends only on the seed and the
  row's number, so the replicates do not depend on how the log was cut).

The Poisson bootstrap (Hanley and MacGibbon 2006, "Creating non-parametric bootstrap samples using
Poisson frequencies"; Chamandy et al. 2012, "Estimating uncertainty for massive data streams") replaces
the multinomial resample counts of the classic bootstrap by independent Poisson(1) counts, which can be
drawn row by row without knowing ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from simulations.data import LoggedData
from simulations.estimates import (
    REFIT_ONLY,
    EstimatorState,
    PolicyEstimate,
    WarningThresholds,
    check_alpha,
    finite_sums,
    rewards_too_large,
    z_value,
)
from simulations.estimators import EstimatorName, kernel_and_state
from simulations.exact_sum import ExactSum

#: Rows per block of Poisson weights drawn from one generator (``default_rng([seed, block])``).
BOOTSTRAP_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class RewardSums:
    """Count, sum and sum of squares of logged rewards.

    Attributes
    ----------
    n : int
    sum_r, sum_rr : ExactSum
    """

    n: int = 0
    sum_r: ExactSum = ExactSum()
    sum_rr: ExactSum = ExactSum()

    @classmethod
    def of(cls, rewards: np.ndarray) -> RewardSums:
        """The sums of an array of rewards, shape ``(n,)``."""
        r = np.asarray(rewards, dtype=float)
        with finite_sums(lambda: rewards_too_large("the logging policy's value",
                                                   f"largest |reward| {np.abs(r).max():.3g}")):
            return cls(int(r.shape[0]), ExactSum.of(r), ExactSum.of(r * r))

    def __add__(self, other: RewardSums) -> RewardSums:
        if not isinstance(other, RewardSums):
            return NotImplemented
        return RewardSums(self.n + other.n, self.sum_r + other.sum_r, self.sum_rr + other.sum_rr)

    @property
    def mean(self) -> float:
        """The mean reward (NaN without rows)."""
        return self.sum_r.value / self.n if self.n else math.nan

    @property
    def sum_squared_deviations(self) -> float:
        r""":math:`\sum_i (r_i - \bar r)^2`, from the exact sums."""
        if not self.n:
            return math.nan
        total = self.sum_r.value
        return max(math.fsum((self.sum_rr.value, -total * total / self.n)), 0.0)

    def estimate(self, alpha: float = 0.05) -> PolicyEstimate:
        """The logging policy's value, as :func:`simulations.replay.observed_value` gives it."""
        z = z_value(alpha)
        with finite_sums(lambda: rewards_too_large("the logging policy's value", f"over {self.n} rows")):
            mean = self.mean
            se = math.nan
            if self.n > 1:
                se = math.sqrt(self.sum_squared_deviations / (self.n - 1)) / math.sqrt(self.n)
        return PolicyEstimate(
            estimator="logged",
            value=mean,
            ci=(mean - z * se, mean + z * se),
            std_error=se,
            n=self.n,
            effective_sample_size=float(self.n),
            max_weight=1.0,
            warnings=() if self.n > 1 else (f"only {self.n} row(s): no standard error",),
        )


@dataclass(frozen=True)
class LiftSums:
    r"""The sums behind a candidate's lift over the logging policy on the same rows.

    With the estimator's kernel :math:`(u_i, d_i)`, :math:`\hat V = \sum u / \sum d`,
    :math:`\bar d = \sum d / n` and rewards :math:`r_i`, the paired influence is
    :math:`\phi_i = (u_i - \hat V d_i)/\bar d - (r_i - \bar r)` and

    .. math::

        \sum_i \phi_i^2 = \frac{\sum (u - \hat V d)^2}{\bar d^2}
            - \frac{2}{\bar d}\Big(\sum u r - \hat V \sum d r\Big) + \sum (r - \bar r)^2,

    (the :math:`\bar r` terms of the middle sum cancel because :math:`\sum (u - \hat V d) = 0`), so
    only :math:`\sum ur` and :math:`\sum dr` are needed beside the estimator's own sums.

    Attributes
    ----------
    state : EstimatorState
    rewards : RewardSums
    sum_ur, sum_dr : ExactSum
    """

    state: EstimatorState
    rewards: RewardSums = RewardSums()
    sum_ur: ExactSum = ExactSum()
    sum_dr: ExactSum = ExactSum()

    @classmethod
    def of(cls, state: EstimatorState, u: np.ndarray, d: np.ndarray | None, rewards: np.ndarray) -> LiftSums:
        """The sums of one chunk: ``state`` and its kernel ``(u, d)`` (``d`` None for all ones)."""
        r = np.asarray(rewards, dtype=float)
        sums = RewardSums.of(r)
        with finite_sums(lambda: rewards_too_large(f"the {state.estimator} lift",
                                                   f"largest |reward| {np.abs(r).max():.3g}")):
            return cls(state, sums, ExactSum.of(u * r), sums.sum_r if d is None else ExactSum.of(d * r))

    def __add__(self, other: LiftSums) -> LiftSums:
        if not isinstance(other, LiftSums):
            return NotImplemented
        return LiftSums(self.state + other.state, self.rewards + other.rewards, self.sum_ur + other.sum_ur,
                        self.sum_dr + other.sum_dr)

    @property
    def std_error(self) -> float:
        """The paired standard error of the lift from the per-row terms alone (NaN with fewer than two
        rows or no value)."""
        state, n = self.state, self.state.n
        if n < 2 or not math.isfinite(state.value):
            return math.nan
        v = state.value
        d_bar = state.sum_d.value / n
        own = math.fsum((state.sum_uu.value, -2.0 * v * state.sum_ud.value, v * v * state.sum_dd.value))
        cross = math.fsum((self.sum_ur.value, -v * self.sum_dr.value))
        squares = max(own, 0.0) / d_bar**2 - 2.0 * cross / d_bar + self.rewards.sum_squared_deviations
        return math.sqrt(max(squares, 0.0) / (n * (n - 1)))

    def estimate(self, alpha: float = 0.05,
                 thresholds: WarningThresholds = WarningThresholds()) -> PolicyEstimate:
        """The lift with its paired normal interval (``estimator`` reads ``"<name> lift"``); none for an
        estimator in :data:`~simulations.estimates.REFIT_ONLY`."""
        z = z_value(alpha)
        state, n = self.state, self.state.n
        with finite_sums(lambda: rewards_too_large(f"the {state.estimator} lift", f"over {n} rows")):
            value = state.value - self.rewards.mean if n else math.nan
            se = math.nan if state.estimator in REFIT_ONLY else self.std_error
        ci = (value - z * se, value + z * se) if math.isfinite(se) else (math.nan, math.nan)
        return PolicyEstimate(
            estimator=f"{state.estimator} lift",
            value=value,
            ci=ci,
            std_error=se,
            n=n,
            effective_sample_size=state.effective_sample_size,
            max_weight=state.max_weight,
            warnings=state.warnings(thresholds),
            ci_method="normal" if math.isfinite(se) else "none",
        )


def estimate_lift(
    estimator: EstimatorName,
    data: LoggedData,
    target_probabilities: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    *,
    clip: float = 10.0,
    alpha: float = 0.05,
) -> PolicyEstimate:
    """The target's value minus the logging policy's observed value on the same rows, with the paired
    interval of :class:`LiftSums` (the one-chunk case).

    Parameters
    ----------
    estimator, data, target_probabilities, reward_predictions, clip
        As in :func:`simulations.estimators.kernel_and_state`.
    alpha : float
        The interval is ``1 - alpha`` two-sided.

    Returns
    -------
    PolicyEstimate
        ``estimator`` is ``"<name> lift"``; ``value`` is the estimated difference in reward per send.
    """
    check_alpha(alpha)
    u, d, state = kernel_and_state(estimator, data, target_probabilities, reward_predictions, clip=clip)
    return LiftSums.of(state, u, d, data.rewards).estimate(alpha)


@dataclass(frozen=True)
class BootstrapSums:
    r"""Per replicate :math:`b`, :math:`\sum_i W_{bi} u_i` and :math:`\sum_i W_{bi} d_i`.

    Attributes
    ----------
    numerators, denominators : ndarray of shape (replicates,)
    """

    numerators: np.ndarray
    denominators: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def zeros(cls, replicates: int) -> BootstrapSums:
        """Empty sums for ``replicates`` replicates."""
        return cls(np.zeros(replicates), np.zeros(replicates))

    def __add__(self, other: BootstrapSums) -> BootstrapSums:
        if not isinstance(other, BootstrapSums):
            return NotImplemented
        return BootstrapSums(self.numerators + other.numerators, self.denominators + other.denominators)

    def replicates(self) -> np.ndarray:
        """The replicate estimates :math:`\\sum W u / \\sum W d` (NaN where the denominator is 0)."""
        out = np.full(self.numerators.shape, math.nan)
        np.divide(self.numerators, self.denominators, out=out, where=self.denominators != 0)
        return out

    def interval(self, alpha: float) -> tuple[float, float, float] | None:
        """``(low, high, standard error)``: the percentile interval and the replicates' standard
        deviation; None when fewer than two replicates are finite."""
        check_alpha(alpha)
        values = self.replicates()
        finite = values[np.isfinite(values)]
        if finite.size < 2:
            return None
        low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
        return float(low), float(high), float(np.std(finite, ddof=1))


def add_poisson_bootstrap(
    totals: Mapping[str, BootstrapSums],
    rows: np.ndarray,
    kernels: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    *,
    seed: int,
    block_rows: int = BOOTSTRAP_BLOCK_ROWS,
) -> dict[str, BootstrapSums]:
    """Add one chunk's rows to Poisson bootstrap sums.

    Parameters
    ----------
    totals : mapping of str to BootstrapSums
        The sums so far, per estimator (all with the same number of replicates).
    rows : ndarray of int, shape (n,)
        The chunk's row numbers in the log (they pick each row's Poisson weights).
    kernels : mapping of str to (u, d)
        Per estimator, the chunk's kernel (``d`` None for all ones).
    seed : int
        Row ``i`` lies in block ``i // block_rows``, whose weights come from
        ``numpy.random.default_rng([seed, block]).poisson(1.0, (replicates, block_rows))``.
    block_rows : int

    Returns
    -------
    dict of str to BootstrapSums
        The new totals.
    """
    rows = np.asarray(rows, dtype=np.int64)
    replicates = next(iter(totals.values())).numerators.shape[0]
    out = {name: BootstrapSums(s.numerators.copy(), s.denominators.copy()) for name, s in totals.items()}
    if rows.size == 0:
        return out
    blocks = rows // block_rows
    starts = np.flatnonzero(np.diff(blocks, prepend=blocks[0] - 1))
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else rows.size
        block = int(blocks[start])
        weights = np.random.default_rng([seed, block]).poisson(1.0, (replicates, block_rows))
        w = weights[:, rows[start:stop] - block * block_rows].astype(float)
        for name, (u, d) in kernels.items():
            out[name].numerators[:] += w @ u[start:stop]
            out[name].denominators[:] += w.sum(axis=1) if d is None else w @ d[start:stop]
    return out
