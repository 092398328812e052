r"""The policy against the alternatives, on the same log: the ``policy_value`` block.

From one log of a learning policy:

- **as run**: the mean reward per decision the policy earned, :math:`\bar r = \frac1N \sum_i r_i`, with
  the interval :math:`\bar r \pm z\, s/\sqrt N`. Its estimand is the average, over these decisions, of
  the expected reward of the arm the policy chose (learning and exploration included); the rewards minus
  those expectations form a martingale difference sequence, so the interval holds under adaptive
  allocation (it is conservative, as :math:`s^2` also counts the spread of the expectations).
- **each arm**, **the defaults** and **a uniform split**: the value "if every eligible recipient got
  this" of :mod:`analysis.adaptive`, for the target policy that sends arm :math:`a` with probability
  :math:`c_a` to everyone: :math:`\sum_a c_a \hat Q_a`. The defaults are one combination of variants (the
  propensity logged is that of the whole combination, so the defaults are one arm of the log); the
  uniform split gives every arm :math:`1/k`.

Each comes with Kish's effective sample size of the weights it puts on the decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from analysis.adaptive import ArmValueEstimates, ArmWeights, estimate_value, uniform_split
from analysis.adaptive_log import PolicyBatch, log_arrays
from analysis.json_ready import to_jsonable
from analysis.lift import check_alpha, critical_value

PolicyKind = Literal["as_run", "arm", "defaults", "uniform"]


@dataclass(frozen=True)
class PolicyValue:
    """The value of one policy (mean reward per decision) with its interval and effective sample size."""

    policy: str
    kind: PolicyKind
    estimate: float
    std_error: float
    ci: tuple[float, float]
    effective_n: float
    decisions: int
    method: str


@dataclass(frozen=True)
class PolicyValueBlock:
    """The learning policy as run beside each arm, the defaults and a uniform split."""

    as_run: PolicyValue
    arms: tuple[PolicyValue, ...]
    defaults: PolicyValue | None
    uniform: PolicyValue

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinities as None)."""
        return to_jsonable(self)


def estimate_as_run(
    log: Sequence[PolicyBatch], *, alpha: float = 0.05, ddof: Literal[0, 1] = 1
) -> PolicyValue:
    """The on-policy mean reward per decision and its interval (module docstring)."""
    check_alpha(alpha)
    data = log_arrays(log)
    n = float(data.n.sum())
    total = float(data.reward_sum.sum())
    mean = total / n
    residual = max(float(data.reward_sum_squares.sum()) - n * mean**2, 0.0)
    se = math.sqrt(residual / (n - ddof) / n) if n > ddof else math.nan
    half = critical_value(alpha) * se
    return PolicyValue(
        policy="as run", kind="as_run", estimate=mean, std_error=se, ci=(mean - half, mean + half),
        effective_n=n, decisions=int(n), method="on-policy mean reward",
    )


def estimate_policy_values(
    log: Sequence[PolicyBatch],
    estimates: ArmValueEstimates,
    *,
    defaults: ArmWeights | None = None,
    alpha: float = 0.05,
    ddof: Literal[0, 1] = 1,
) -> PolicyValueBlock:
    """The ``policy_value`` block.

    Parameters
    ----------
    log : Sequence[PolicyBatch]
        The log the estimates came from.
    estimates : ArmValueEstimates
        Every arm's value (:func:`analysis.adaptive.estimate_arm_values`, or the cross-fitted AIPW).
    defaults : Mapping[str, float] or None
        The defaults as weights over arms (``{"plain|shop": 1.0}`` for the default combination); None
        when the experiment has none among its arms.
    alpha : float
    ddof : {0, 1}
        As in :func:`analysis.adaptive.estimate_arm_values`, for the as-run interval.
    """
    method = estimates.method

    def value(weights: ArmWeights, name: str, kind: PolicyKind) -> PolicyValue:
        v = estimate_value(estimates, weights, alpha=alpha, label=name)
        return PolicyValue(name, kind, v.estimate, v.std_error, v.ci, v.effective_n, v.decisions, method)

    return PolicyValueBlock(
        as_run=estimate_as_run(log, alpha=alpha, ddof=ddof),
        arms=tuple(value({arm: 1.0}, arm, "arm") for arm in estimates.arms),
        defaults=value(defaults, "defaults", "defaults") if defaults is not None else None,
        uniform=value(uniform_split(estimates.arms), "uniform split", "uniform"),
    )
