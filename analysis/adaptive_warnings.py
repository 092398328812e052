"""Where the adaptive estimates are weak, in words an analyst can act on.

- ``no_support``: an arm with no decision has no estimate.
- ``propensity_floor``: the arm was sent at the minimum share the policy keeps for every arm; each such
  decision counts :math:`1/p` times (100 times at a 1% floor), so its estimate leans on few decisions.
- ``few_decisions``: a batch gave the arm fewer than ``min_batch_decisions`` decisions: the normal
  approximation of its intervals and of the always-valid results is rough there.
- ``small_effective_n``: the estimate is worth fewer than ``min_effective_n`` equally weighted decisions.
- ``arm_stopped``: the policy (nearly) stopped sending the arm; its estimate rests on the early policy
  versions, so it describes those recipients and that time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from analysis.adaptive import ArmValueEstimates, batch_weights
from analysis.adaptive_log import PolicyBatch, log_arrays
from analysis.errors import AnalysisInputError

WarningKind = Literal["no_support", "propensity_floor", "few_decisions", "small_effective_n", "arm_stopped"]

#: Effective sample size below which an estimate is flagged.
MIN_EFFECTIVE_N = 100.0
#: Decisions of an arm in one batch below which the normal approximation is flagged.
MIN_BATCH_DECISIONS = 30
#: Share of the latest batch below which an arm counts as (nearly) stopped.
STOPPED_SHARE = 0.05


@dataclass(frozen=True)
class EstimateWarning:
    """One weakness of one arm's estimate: ``kind`` for machines, ``message`` for people."""

    kind: WarningKind
    arm: str
    message: str


def check_adaptive_estimates(
    log: Sequence[PolicyBatch],
    estimates: ArmValueEstimates,
    *,
    floor: float | None = None,
    min_effective_n: float = MIN_EFFECTIVE_N,
    min_batch_decisions: int = MIN_BATCH_DECISIONS,
    stopped_share: float = STOPPED_SHARE,
) -> list[EstimateWarning]:
    """The warnings of every arm, in the order of ``estimates.arms`` (module docstring).

    Parameters
    ----------
    log : Sequence[PolicyBatch]
        The log the estimates came from.
    estimates : ArmValueEstimates
    floor : float or None
        The policy's minimum share per arm (the spec's ``min_share``); None when it has none.
    min_effective_n, min_batch_decisions, stopped_share : float
        Thresholds of ``small_effective_n``, ``few_decisions`` and ``arm_stopped``.
    """
    if floor is not None and not 0 < floor < 1:
        raise AnalysisInputError(f"floor: must be in (0, 1), got {floor!r}")
    if not 0 < stopped_share < 1:
        raise AnalysisInputError(f"stopped_share: must be in (0, 1), got {stopped_share!r}")
    data = log_arrays(log, estimates.arms)
    h = batch_weights(log, estimates.arms)
    share = data.n / np.maximum(data.batch_n[:, None], 1)
    warnings: list[EstimateWarning] = []
    for j, arm in enumerate(estimates.arms):
        n = data.n[:, j]
        if n.sum() == 0:
            warnings.append(EstimateWarning(
                "no_support", arm, f"{arm} has no decision: its value cannot be estimated from this log"))
            continue
        if floor is not None:
            at_floor = (n > 0) & (data.min_propensity[:, j] <= floor * (1 + 1e-6))
            if at_floor.any():
                warnings.append(EstimateWarning("propensity_floor", arm, (
                    f"{arm} was sent at the propensity floor ({floor:.3g}) in {int(at_floor.sum())} of "
                    f"{len(n)} policy version(s) ({_versions(data.versions, at_floor)}): each such decision "
                    f"counts {1 / floor:,.0f} times, so its estimate leans on few decisions")))
        few = (n > 0) & (n < min_batch_decisions)
        if few.any():
            warnings.append(EstimateWarning("few_decisions", arm, (
                f"{arm} got fewer than {min_batch_decisions} decisions in policy version(s) "
                f"{_versions(data.versions, few)}: the normal approximation behind its interval and "
                "always-valid result is rough")))
        ess = estimates.effective_n[j]
        if 0 < ess < min_effective_n:
            warnings.append(EstimateWarning("small_effective_n", arm, (
                f"{arm}: effective sample size {ess:,.0f} (of {int(n.sum()):,} decisions), below "
                f"{min_effective_n:,.0f}: its interval is rough")))
        stopped = _stopped(arm, share[:, j], h[:, j] * data.w_sum[:, j], data.versions, stopped_share)
        if stopped is not None:
            warnings.append(stopped)
    return warnings


def _stopped(
    arm: str, share: np.ndarray, weight: np.ndarray, versions: tuple[int | None, ...], stopped_share: float
) -> EstimateWarning | None:
    if len(share) < 2 or share[-1] >= stopped_share or share[:-1].max() < 2 * stopped_share:
        return None
    active = share >= stopped_share
    total = weight.sum()
    early = float(weight[active].sum() / total) if total > 0 else math.nan
    return EstimateWarning("arm_stopped", arm, (
        f"the policy has nearly stopped sending {arm} ({share[-1]:.1%} of the latest version's decisions, "
        f"{share[:-1].max():.0%} at most before): {early:.0%} of its estimate rests on the policy versions "
        f"that still sent it ({_versions(versions, active)}), so it describes those recipients and that "
        "time"))


def _versions(versions: tuple[int | None, ...], mask: np.ndarray) -> str:
    chosen = [("unversioned" if v is None else str(v)) for v, m in zip(versions, mask, strict=True) if m]
    return ", ".join(chosen) if len(chosen) <= 6 else f"{', '.join(chosen[:3])}, ..., {chosen[-1]}"
