"""Previews, coverage and feature importance as the API and the command line answer them (plain dicts)."""

from __future__ import annotations

from typing import Any

from api.convert import decision_to_dict, to_jsonable


def detail_to_dict(detail: Any) -> dict[str, Any]:
    """A ``RecipientDetail``: rules fired, per-slot offers with content and probability, combinations."""
    return {
        "screening": detail.screening,
        "rules_fired": list(detail.rules_fired),
        "rules_not_evaluated": detail.rules_not_evaluated,
        "fallback_only": bool(detail.fallback_only),
        "slots": {
            s.slot: {
                "offered": [
                    {
                        "id": vid,
                        "content": s.variant_to_content[vid],
                        "probability": s.variant_to_probability[vid],
                    }
                    for vid in s.offered
                ],
                "not_offered": dict(s.not_offered),
            }
            for s in detail.slots
        },
        "combinations": [
            {"variants": label, "probability": p}
            for label, p in sorted(detail.combination_to_probability.items(), key=lambda kv: -kv[1])
        ],
    }


def preview_to_dict(preview: Any) -> dict[str, Any]:
    """One ``Preview``: the decision a draw would give now, the explanation and the detail."""
    out = {
        "decision": decision_to_dict(preview.decision),
        "explanation": list(preview.explanation),
        "content_notes": dict(getattr(preview.decision, "content_notes", {}) or {}),
    }
    if preview.detail is not None:
        out.update(detail_to_dict(preview.detail))
    return out


def coverage_to_dict(coverage: Any) -> dict[str, Any]:
    """A ``Coverage``: unreached rule combinations (each with an example) and fallback-only recipients."""
    return {
        "sample_size": coverage.sample_size,
        "unreached_rule_combinations": [
            {"rules": list(names), "example": to_jsonable(example)}
            for names, example in coverage.unreached_rule_combinations
        ],
        "fallback_only": [{"recipient_id": rid, "why": why} for rid, why in coverage.fallback_only.items()],
        "checked_all_combinations": coverage.checked_all_combinations,
    }


def report_to_dict(report: Any) -> dict[str, Any]:
    """A ``PreviewReport``: every preview, in order, and the coverage."""
    return {
        "previews": [preview_to_dict(p) for p in report.previews],
        "coverage": coverage_to_dict(report.coverage),
    }


def importance_to_dict(importance: Any) -> dict[str, Any]:
    """A ``FeatureImportance``: attributes with their importance, largest first."""
    return {
        "experiment": importance.experiment,
        "policy": importance.policy,
        "policy_version": importance.policy_version,
        "sample_size": importance.sample_size,
        "method": importance.method,
        "attributes": [
            {"attribute": name, "importance": value}
            for name, value in importance.attribute_to_importance.items()
        ],
    }
