"""Domain objects from ``experiments/`` turned into plain JSON-ready dicts (formatting only)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from analysis.errors import PowerInputError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from api.models.assign import DecisionPublic


def to_jsonable(value: Any) -> Any:
    """A JSON-ready copy of a pydantic model, dataclass, mapping, sequence or scalar."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def experiment_to_dict(info: Any, *, with_spec: bool = True) -> dict[str, Any]:
    """An ``ExperimentInfo`` as the API shows it."""
    spec = to_jsonable(info.spec) if with_spec else None
    out: dict[str, Any] = {
        "key": info.key,
        "version": info.version,
        "status": info.status,
        "name": spec.get("name") if isinstance(spec, dict) else getattr(info.spec, "name", None),
        "warnings": [str(w) for w in (info.warnings or [])],
        "created_at": to_jsonable(getattr(info, "created_at", None)),
        "updated_at": to_jsonable(getattr(info, "updated_at", None)),
        "apprentice": bool(getattr(info, "apprentice", False)),
    }
    if with_spec:
        out["spec"] = spec
    return out


def decision_to_dict(decision: Any) -> dict[str, Any]:
    """A ``Decision`` as the API answers it: variants per slot with their content."""
    created = getattr(decision, "created_at", None)
    return {
        "decision_id": str(decision.decision_id),
        "experiment": decision.experiment,
        "recipient_id": decision.recipient_id,
        "variants": {
            slot: {"id": choice.id, "content": choice.content}  # rendered text
            for slot, choice in decision.variants.items()
        },
        "propensity": float(decision.propensity),
        "policy_version": decision.policy_version,
        "reason": decision.reason,
        "explored": getattr(decision, "explored", None),
        "content_notes": dict(getattr(decision, "content_notes", None) or {}),
        "created_at": created.isoformat() if isinstance(created, datetime) else created,
        "send_at": None if getattr(decision, "send_at", None) is None else decision.send_at.isoformat(),
    }


@cache
def _decision_public() -> TypeAdapter[DecisionPublic]:
    from pydantic import TypeAdapter

    from api.models.assign import DecisionPublic

    return TypeAdapter(DecisionPublic)


def decision_json(decision: Any) -> bytes:
    """A ``Decision`` as the single-assign answer: the bytes FastAPI writes for a ``DecisionPublic``
    response model (:func:`decision_to_dict` validated, then dumped by alias), written by the caller.

    A plain ``def`` route's answer is validated in FastAPI's thread pool, a second hop per request; the
    route calls this in the thread it already runs in instead.
    """
    adapter = _decision_public()
    model = adapter.validate_python(decision_to_dict(decision), from_attributes=True)
    return adapter.dump_json(model, by_alias=True)


#: The fields an answer of the effect or the power question leaves out of its JSON: the arm sizes
#: exist only when the size is solved for.
WITHOUT_SIZES = frozenset({"sizes"})
#: The effect question of a mean answers without ``sd_source`` (the ``/v1/power/mean/mde`` contract).
MEAN_MDE_OMITS = frozenset({"sizes", "sd_source"})


def plan_to_dict(answer: Any) -> dict[str, Any]:
    """The answer of a sample-size question: the headline figures at the top (the control-arm size,
    every arm's size, the total, the days, the method), every other figure under ``details``."""
    data = finite_answer(to_jsonable(answer.to_dict()))
    sizes = data.pop("sizes")
    data.pop("n_per_arm")
    head = {"per_arm": sizes["per_arm"], "per_arm_sizes": sizes["per_arm_sizes"], "total": sizes["total"],
            "days": sizes["days"], "method": data.pop("method")}
    extra = {k: sizes[k] for k in ("n_exact", "daily", "traffic_share")}
    return {**head, "details": {**data, **extra}}


def answer_to_dict(answer: Any, omit: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A planning answer as JSON without the fields in ``omit``, checked finite."""
    data = finite_answer(to_jsonable(answer.to_dict()))
    return {k: v for k, v in data.items() if k not in omit}


def checked(answer: Any) -> Any:
    """``answer`` unchanged when every number in it is finite (see :func:`finite_answer`)."""
    finite_answer(answer.to_dict())
    return answer


def signed_percent(x: float | None) -> str:
    """``+12.3%``, or ``n/a`` for a figure that does not exist (a lift over a control whose rate is 0)."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.1%}"


def finite_answer(data: Any, path: str = "") -> Any:
    """``data`` unchanged when every number in it is finite; otherwise a :class:`PowerInputError`.

    A planning function that cannot answer says so itself; this is the last guard, so that an answer
    with NaN or infinity becomes a 422 naming the figure instead of invalid JSON (a 500).
    """
    if isinstance(data, float) and not math.isfinite(data):
        raise PowerInputError(
            f"{path or 'the answer'} is not a finite number for these inputs ({data}); they are beyond "
            "what the calculation can answer.", field="",
        )
    if isinstance(data, Mapping):
        for key, value in data.items():
            finite_answer(value, key)
    elif isinstance(data, list | tuple):
        for value in data:
            finite_answer(value, path)
    return data
