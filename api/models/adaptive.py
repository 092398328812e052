"""Results models of bandit and contextual designs: the adaptive estimates and the policy value."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class PolicyValuePublic(BaseModel):
    """The value of one policy: mean reward per decision, its interval and effective sample size."""

    policy: str
    kind: str
    estimate: float | None
    std_error: float | None
    ci: list[float | None]
    effective_n: float | None
    decisions: int
    method: str


class PolicyValueBlockPublic(BaseModel):
    """The learning policy as run beside each arm, the defaults and a uniform split, on the same log."""

    as_run: PolicyValuePublic
    arms: list[PolicyValuePublic]
    defaults: PolicyValuePublic | None
    uniform: PolicyValuePublic
    note: str


class AdaptiveWarningPublic(BaseModel):
    """Where an estimate is weak: ``kind`` (no_support, propensity_floor, few_decisions,
    small_effective_n, arm_stopped) for machines, ``message`` for people."""

    kind: str
    arm: str
    message: str


class AdaptivePublic(BaseModel):
    """How a bandit or contextual design was analysed: the estimator, each variant's value "if every
    eligible recipient got it" beside its as-allocated mean, and the warnings."""

    design: str
    decisions: int
    method: str = ""
    estimator_note: str = ""
    as_allocated_note: str = ""
    always_valid_note: str = ""
    values: list[dict[str, Any]]
    warnings: list[AdaptiveWarningPublic]
    skipped: dict[str, str]
