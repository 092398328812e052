"""Results of a bandit or contextual experiment: one call from the log's sums to everything shown.

:func:`analyze_adaptive` estimates every arm's value "if every eligible recipient got it"
(:mod:`analysis.adaptive`), compares each target with control (:mod:`analysis.adaptive_comparisons`,
with the always-valid result of :mod:`analysis.confidence_sequences`), values the policy against the
alternatives (:mod:`analysis.policy_value`) and says where the estimates are weak
(:mod:`analysis.adaptive_warnings`). Pass ``estimates`` to use other estimates of the same log (the
cross-fitted AIPW of :mod:`analysis.adaptive_aipw`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from analysis.adaptive import (
    AS_ALLOCATED_NOTE,
    ArmValueEstimates,
    ArmWeights,
    ValueEstimate,
    estimate_arm_values,
    estimate_value,
)
from analysis.adaptive_comparisons import AdaptiveComparison, compare_to_control
from analysis.adaptive_log import PolicyBatch
from analysis.adaptive_warnings import (
    MIN_EFFECTIVE_N,
    STOPPED_SHARE,
    EstimateWarning,
    check_adaptive_estimates,
)
from analysis.errors import AnalysisInputError
from analysis.json_ready import to_jsonable
from analysis.lift import check_alpha
from analysis.policy_value import PolicyValueBlock, estimate_policy_values
from analysis.sequential import DEFAULT_TUNING_N

#: What the always-valid results of an adaptive analysis are, in words.
ALWAYS_VALID_NOTE = (
    "always-valid results: off-policy asymptotic confidence sequences (Waudby-Smith et al. 2022) on the "
    "logged propensities; valid at any look under adaptive allocation once batches give each arm some tens "
    "of decisions"
)


@dataclass(frozen=True)
class AdaptiveAnalysis:
    """Everything an analyst reads about an experiment whose allocation learns.

    ``values`` holds each target's value if every eligible recipient got it (with its as-allocated mean,
    labelled); ``comparisons`` each target against ``control``; ``policy_value`` the policy as run beside
    the alternatives; ``warnings`` where the estimates are weak.
    """

    control: str
    alpha: float
    method: str
    values: list[ValueEstimate]
    comparisons: list[AdaptiveComparison]
    policy_value: PolicyValueBlock
    warnings: list[EstimateWarning]
    as_allocated_note: str = AS_ALLOCATED_NOTE
    always_valid_note: str = ALWAYS_VALID_NOTE

    def comparison(self, variant: str) -> AdaptiveComparison:
        for c in self.comparisons:
            if c.variant == variant:
                return c
        raise KeyError(f"no comparison for {variant!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: snake_case keys, NaN and infinities as None."""
        return to_jsonable(self)


def analyze_adaptive(
    log: Sequence[PolicyBatch],
    control: str,
    *,
    targets: Mapping[str, ArmWeights] | None = None,
    defaults: ArmWeights | None = None,
    alpha: float = 0.05,
    ddof: Literal[0, 1] = 1,
    floor: float | None = None,
    tuning_n: float = DEFAULT_TUNING_N,
    min_effective_n: float = MIN_EFFECTIVE_N,
    stopped_share: float = STOPPED_SHARE,
    estimates: ArmValueEstimates | None = None,
) -> AdaptiveAnalysis:
    """Analyse the log of a learning policy.

    Parameters
    ----------
    log : Sequence[PolicyBatch]
        Per policy version, oldest first, the per-arm sums of :mod:`analysis.adaptive_log` (fallback
        decisions excluded). Arms are variants (one slot) or combinations (several slots).
    control : str
        The control among the targets.
    targets : Mapping[str, Mapping[str, float]] or None
        What is compared: name to weights over arms; None for the arms themselves. For one slot of a
        multi-slot design use :func:`analysis.adaptive.slot_targets`.
    defaults : Mapping[str, float] or None
        The default combination as weights over arms (``{arm: 1.0}``), for the policy value block.
    alpha : float
        Two-sided level of every interval and of the always-valid results.
    ddof : {0, 1}
        0 for a rate metric, 1 for a value metric (see :func:`analysis.adaptive.estimate_arm_values`).
    floor : float or None
        The policy's minimum share per arm, for the ``propensity_floor`` warning.
    tuning_n : float
        Decisions at which the confidence sequences are tightest.
    min_effective_n, stopped_share : float
        Thresholds of the warnings (:mod:`analysis.adaptive_warnings`).
    estimates : ArmValueEstimates or None
        Estimates of this log to use instead of :func:`analysis.adaptive.estimate_arm_values`.
    """
    check_alpha(alpha)
    if estimates is None:
        estimates = estimate_arm_values(log, ddof=ddof)
    named = dict(targets) if targets is not None else {arm: {arm: 1.0} for arm in estimates.arms}
    if control not in named:
        raise AnalysisInputError(f"control: {control!r} is not one of {list(named)}")
    return AdaptiveAnalysis(
        control=control, alpha=alpha, method=estimates.method,
        values=[estimate_value(estimates, w, alpha=alpha, label=name) for name, w in named.items()],
        comparisons=compare_to_control(estimates, control, targets=named, alpha=alpha, log=log,
                                       tuning_n=tuning_n),
        policy_value=estimate_policy_values(log, estimates, defaults=defaults, alpha=alpha, ddof=ddof),
        warnings=check_adaptive_estimates(log, estimates, floor=floor, min_effective_n=min_effective_n,
                                          stopped_share=stopped_share),
    )
