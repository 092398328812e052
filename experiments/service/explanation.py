"""Explanation: why a logged decision was made (re-evaluated on its stored context), and which
recipient attributes a contextual policy relies on."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit import load_policy
from experiments.assignment import explain
from experiments.errors import Conflict, InvalidInput, NotFound
from experiments.insight import (
    FeatureImportance,
    contribution_lines,
    decided_by,
    feature_contributions,
    feature_importance,
)
from experiments.limits import MAX_INSIGHT_SAMPLE
from experiments.recipients import ERASED_PREFIX
from experiments.service.catalog import policy_seed
from experiments.service.core import ServiceCore
from experiments.service.learning import Learning
from experiments.store.repository import StoredDecision, check_stored_key


def no_context_line(d: StoredDecision) -> str:
    """Why a decision has no context to re-evaluate: the recipient did not consent (nothing was stored),
    or what was stored has since been dropped, with the recipient's data or by retention."""
    if not d.context_dropped:
        return "no context stored (the recipient did not consent)"
    if d.recipient_id.startswith(ERASED_PREFIX):
        return "no context any more: it was erased with the recipient's data, so no rule can be re-evaluated"
    return ("no context any more: the retention period dropped it (sendlab db prune), so no rule can be "
            "re-evaluated")


class Explanation:
    """Explain decisions and policies."""

    def __init__(self, core: ServiceCore, learning: Learning) -> None:
        self._core = core
        self._learning = learning

    def explain(self, decision_id: str) -> dict[str, Any]:
        """A logged decision with the reasons behind it, re-evaluated on the stored context."""
        check_stored_key(decision_id, "decision")
        repo = self._core.repo
        with self._core.engine.connect() as conn:
            d = repo.decision(conn, decision_id)
            if d is None:
                raise NotFound(decision_id, "decision")
            compiled = repo.compiled(d.experiment_key, d.version, conn=conn)
        if d.context is None:
            lines = [no_context_line(d)]
        else:
            lines = explain(compiled, d.recipient_id, d.context, screening=d.reason)
        lines.append(decided_by(compiled, d.reason, d.policy_version))
        features: list[dict[str, Any]] = []
        method = None
        if (
            compiled.spec.design.type == "contextual"
            and d.reason in ("policy", "apprentice")
            and d.policy_version is not None
            and d.context is not None
        ):
            with self._core.engine.connect() as conn:
                policy = repo.policy_at(conn, d.experiment_key, d.policy_version)
            if policy is not None:
                method, contributions = feature_contributions(compiled, policy, d.context, d.arm)
                features = [
                    {"attribute": c.attribute, "value": c.value, "contribution": c.contribution}
                    for c in contributions
                ]
                lines += contribution_lines(compiled, d.arm, method, contributions)
        return {
            "decision_id": d.id,
            "experiment": d.experiment_key,
            "version": d.version,
            "recipient_id": d.recipient_id,
            "variants": dict(d.variants),
            "arm": d.arm,
            "propensity": d.propensity,
            "policy_version": d.policy_version,
            "reason": d.reason,
            "explored": d.explored,
            "created_at": d.created_at.isoformat(),
            "feature_version": d.feature_version,
            "explanation": lines,
            "features": features,
            "features_method": method,
        }

    def insight(self, key: str, sample: int = 1000) -> FeatureImportance:
        """Which recipient attributes the current policy relies on, over the contexts of the latest
        ``sample`` policy decisions of the current version (a contextual design only).

        Raises
        ------
        Conflict
            The design is not contextual (no policy reads recipient attributes).
        InvalidInput
            ``sample`` is not an integer in [1, :data:`MAX_INSIGHT_SAMPLE`].
        """
        if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= MAX_INSIGHT_SAMPLE:
            raise InvalidInput("sample", f"must be an integer in [1, {MAX_INSIGHT_SAMPLE}], got {sample!r}")
        repo = self._core.repo
        with self._core.engine.connect() as conn:
            _, compiled = repo.current(conn, key)
            if compiled.spec.design.type != "contextual":
                raise Conflict(
                    f"experiment {key!r} is a {compiled.spec.design.type} design: "
                    "no policy reads recipient attributes"
                )
            contexts = repo.recent_contexts(conn, compiled, sample)
        version, state = self._learning.policy_state(key)
        rng = np.random.default_rng(policy_seed(compiled.spec))  # the same answer for the same data
        return feature_importance(compiled, load_policy(state), version, contexts, rng)
