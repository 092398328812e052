"""The lean path of a whole send: the batch-assign body parsed and the answer written without models.

A 100,000-recipient batch through pydantic models costs a model instance per recipient on the way in
and a validated model per decision on the way out. Here the JSON bytes are validated in one call by
pydantic-core against TypedDicts that mirror :class:`api.models.assign.BatchAssignRequest` (same
fields, bounds and errors; a test holds them equal), and the answer is written as JSON text with the
parts a batch repeats written once (a test holds it equal to :func:`api.convert.decision_to_dict`
serialised). The models still document the body and the answer in the OpenAPI schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from math import isfinite
from typing import Annotated, Any, NotRequired

import pydantic_core
from fastapi.exceptions import RequestValidationError
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from api.models.assign import BatchAssignRequest
from experiments.limits import MAX_BATCH, MAX_ID_LENGTH


class RecipientItem(TypedDict):
    """One recipient of a batch, as :class:`api.models.assign.Recipient` validates it."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    recipient_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
    context: NotRequired[dict[str, Any]]
    send_at: NotRequired[datetime | None]


class BatchBody(TypedDict):
    """The batch-assign body, as :class:`api.models.assign.BatchAssignRequest` validates it."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    recipients: Annotated[list[RecipientItem], Field(min_length=1, max_length=MAX_BATCH)]
    send_id: NotRequired[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)] | None]
    send_at: NotRequired[datetime | None]
    send_date: NotRequired[date | None]


@dataclass(frozen=True)
class SendBatch:
    """A parsed batch-assign body: the ``(recipient_id, context)`` pairs in order, the send's id, and
    when it goes out: one time for all, one per recipient (a recipient's own, else the batch's), or None.
    """

    recipients: list[tuple[str, dict[str, Any]]]
    send_id: str | None = None
    send_at: datetime | list[datetime | None] | None = None
    send_date: date | None = None


@cache
def _batch_adapter() -> TypeAdapter[BatchBody]:
    return TypeAdapter(BatchBody)


def parse_batch_body(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The recipients of a batch-assign body, as :func:`parse_send` validates it."""
    return parse_send(raw).recipients


def parse_send(raw: bytes) -> SendBatch:
    """Validate the JSON bytes of a batch-assign body.

    Parameters
    ----------
    raw : bytes
        The request body.

    Returns
    -------
    SendBatch
        One ``(recipient_id, context)`` pair per recipient, in order (``context`` is ``{}`` when
        absent), the ``send_id`` and the send times (None when absent).

    Raises
    ------
    RequestValidationError
        Every problem, each with its location under ``body`` (as FastAPI reports a model body).
    """
    try:
        body = _batch_adapter().validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from None
    recipients = body["recipients"]
    send_at: datetime | list[datetime | None] | None = body.get("send_at")
    if any(r.get("send_at") is not None for r in recipients):
        send_at = [r.get("send_at") or send_at for r in recipients]  # type: ignore[misc]
    return SendBatch(
        [(r["recipient_id"], r.get("context", {})) for r in recipients], body.get("send_id"), send_at,
        body.get("send_date"),
    )


def decisions_json(decisions: Sequence[Any]) -> bytes:
    """``{"decisions": [...]}`` as UTF-8 JSON bytes, each decision as :func:`api.convert.decision_to_dict`.

    Parameters
    ----------
    decisions : sequence of Decision, length n
        The decisions of one batch, in order.

    Returns
    -------
    bytes
        Written as text directly, not through a dict per decision: the parts a batch repeats are
        written once and reused, the variants and content of an arm (keyed by the slots and the
        identity of their choices, alive for the whole call) and everything after the propensity (the
        policy version, reason, exploration and notes by value, the times by identity); each decision writes
        its own id, experiment, recipient and propensity. Strings are escaped by the standard library's
        C encoder. Not validated.
    """
    variants_to_text: dict[tuple[Any, ...], str] = {}
    tail_to_text: dict[tuple[Any, ...], str] = {}
    experiment, experiment_text = None, "null"
    parts = []
    for d in decisions:
        chosen = d.variants
        key = (*chosen, *map(id, chosen.values()))
        variants = variants_to_text.get(key)
        if variants is None:
            variants = variants_to_text[key] = _variants_text(chosen)
        notes = d.content_notes
        notes_text = _value_text(dict(notes)) if notes else "{}"
        # times by identity: equal instants in two time zones are written differently
        tail_key = (
            d.policy_version, d.reason, d.explored, notes_text, id(d.created_at), id(d.send_at),
            d.feature_version,
        )
        tail = tail_to_text.get(tail_key)
        if tail is None:
            tail = tail_to_text[tail_key] = _tail_text(d, notes_text)
        if d.experiment is not experiment:
            experiment, experiment_text = d.experiment, _value_text(d.experiment)
        p = d.propensity
        propensity = repr(p) if type(p) is float and isfinite(p) else _number_text(float(p))
        parts.append(
            f'{{"decision_id":{_string(str(d.decision_id))},"experiment":{experiment_text},'
            f'"recipient_id":{_value_text(d.recipient_id)},"variants":{variants},'
            f'"propensity":{propensity},{tail}}}'
        )
    return ('{"decisions":[' + ",".join(parts) + "]}").encode()


def _tail_text(d: Any, notes_text: str) -> str:
    """A decision's fields after the propensity, as :func:`decisions_json` writes them (``notes_text``:
    its content notes written)."""
    created = d.created_at
    created_text = _value_text(created.isoformat() if isinstance(created, datetime) else created)
    return (
        f'"policy_version":{_value_text(d.policy_version)},"reason":{_value_text(d.reason)},'
        f'"explored":{_value_text(d.explored)},"content_notes":{notes_text},"created_at":{created_text},'
        f'"send_at":{_time_text(d.send_at)},"feature_version":{_value_text(d.feature_version)}'
    )


_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C: a JSON string, non-ASCII kept


def _number_text(value: float) -> str:
    return repr(value) if math.isfinite(value) else "null"


def _value_text(value: Any) -> str:
    """One JSON value: strings, integers, booleans and None directly, anything else by pydantic-core."""
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    return pydantic_core.to_json(value).decode()


def _time_text(moment: Any) -> str:
    return "null" if moment is None else _value_text(moment.isoformat())


def _variants_text(variants: Any) -> str:
    return "{" + ",".join(
        f'{_string(str(slot))}:{{"id":{_value_text(choice.id)},"content":{_value_text(choice.content)}}}'
        for slot, choice in variants.items()
    ) + "}"


def batch_body_schema() -> dict[str, Any]:
    """The JSON schema of the body for the OpenAPI page: the model's, with its definitions inlined."""
    schema = BatchAssignRequest.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            # a default of null is left out, as FastAPI writes the OpenAPI page
            return {k: inline(v) for k, v in node.items() if not (k == "default" and v is None)}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)
