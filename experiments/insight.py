"""Why this variant: what decided a logged decision, which recipient features pushed a contextual
policy's choice, and which attributes a policy relies on across an experiment. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit import LinearThompson, LinUCB, Policy, VWContextualBandit
from bandit.explain import (
    FeatureContribution,
    ablation_effects,
    linear_contributions,
    permutation_importance,
    vw_contributions,
)
from experiments.arms import allowed_mask
from experiments.assignment import CompiledExperiment, policy_context, rule_masks
from experiments.preview import combination_label

#: How many features an explanation lists.
TOP_FEATURES = 5


@dataclass(frozen=True)
class FeatureImportance:
    """Which recipient attributes a policy relies on, over a sample of its recent decisions.

    ``attribute_to_importance``: the mean total-variation shift of the policy's distribution when the
    attribute's values are shuffled across the sample (0: ignored; 1: it alone flips every choice),
    largest first; see :func:`bandit.explain.permutation_importance`.
    """

    experiment: str
    policy: str
    policy_version: int
    sample_size: int
    attribute_to_importance: dict[str, float]
    method: str = "permutation"


def decided_by(compiled: CompiledExperiment, reason: str, policy_version: int | None) -> str:
    """One line saying what made a decision."""
    design = compiled.spec.design
    if reason == "assigned":
        return f"design: sticky hash buckets ({design.type}), weighted by the variants' weights"
    if reason == "policy":
        return f"design: a draw from the {design.policy} policy (version {policy_version}), allowed arms only"
    if reason == "content_fallback":
        return (
            f"design: sticky hash buckets ({design.type}); the drawn variant could not render for the "
            "recipient, so it was shown with the default variant's content and is analysed as drawn"
        )
    if reason == "apprentice":
        return f"design: the incumbent choice while the {design.policy} policy learns (apprentice)"
    if reason == "policy_error":
        return "fallback: the policy could not answer, so the default variants"
    return f"fallback: {reason}, so the default variants"


def _allowed_row(compiled: CompiledExperiment, context: Mapping[str, Any]) -> np.ndarray:
    return allowed_mask(rule_masks(compiled, [context]), compiled.slot_sizes)


def feature_contributions(
    compiled: CompiledExperiment, policy: Policy, context: Mapping[str, Any], arm: int
) -> tuple[str, list[FeatureContribution]]:
    """The features that pushed ``arm`` most for this recipient, and the method used.

    Linear policies: exact contributions to the predicted reward relative to the other allowed
    combinations (``linear_weights``). Vowpal Wabbit: the same from VW's weights, weight x value of
    each feature VW hashes for the recipient's attributes in the combination's example (``vw_weights``),
    or, when a model's weights cannot be read that way (interactions other than ``-q UA``, several
    models), the change in the probability of ``arm`` when each feature is left out (``ablation``).
    """
    features = policy_context(compiled, context)
    allowed = _allowed_row(compiled, context)
    if not allowed[0, arm]:  # the rules today differ from those at decision time: explain over all
        allowed = np.ones_like(allowed)
    if isinstance(policy, LinUCB | LinearThompson):
        return "linear_weights", linear_contributions(policy, features, arm, allowed[0])[:TOP_FEATURES]
    if isinstance(policy, VWContextualBandit):
        weighted = vw_contributions(policy, features, arm, allowed[0])
        if weighted is not None:
            return "vw_weights", weighted[:TOP_FEATURES]
    effects = ablation_effects(policy, [features], np.array([arm]), allowed)[0]
    return "ablation", effects[:TOP_FEATURES]


def contribution_lines(
    compiled: CompiledExperiment, arm: int, method: str, contributions: Sequence[FeatureContribution]
) -> list[str]:
    """Explanation lines for :func:`feature_contributions`."""
    label = combination_label(compiled, arm)
    unit = "probability" if method == "ablation" else "predicted reward"
    if not contributions:
        return [f"features: none of the policy's context attributes were present for {label}"]
    parts = [f"{c.attribute}={c.value!r} {c.contribution:+.3g}" for c in contributions]
    return [f"features that pushed {label} ({unit}, {method}): " + ", ".join(parts)]


def feature_importance(
    compiled: CompiledExperiment,
    policy: Policy,
    policy_version: int,
    contexts: Sequence[Mapping[str, Any]],
    rng: np.random.Generator,
) -> FeatureImportance:
    """How much the policy's choices depend on each attribute of ``design.context`` over ``contexts``.

    The allowed combinations per row are those the rules allow (templates are not re-rendered: the
    stored contexts hold only the attributes the design and the rules read).
    """
    attributes = list(compiled.spec.design.context)
    if not contexts:
        return FeatureImportance(compiled.spec.key, str(compiled.spec.design.policy), policy_version, 0, {})
    rows = [policy_context(compiled, c) for c in contexts]
    allowed = allowed_mask(rule_masks(compiled, contexts), compiled.slot_sizes)
    importance = permutation_importance(policy, rows, attributes, rng, allowed)
    return FeatureImportance(
        compiled.spec.key, str(compiled.spec.design.policy), policy_version, len(rows), importance
    )
