"""The checks of what callers hand the service, before anything is read or written: outcome events,
``(recipient_id, context)`` pairs and the context values stored with decisions. Each problem is an
:class:`~experiments.errors.InvalidInput` naming the field at fault."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from experiments.assignment import CompiledExperiment
from experiments.errors import NUL_REASON, InvalidInput
from experiments.limits import (
    MAX_CONTEXT_DEPTH,
    MAX_CONTEXT_ITEMS,
    MAX_CONTEXT_NUMBER,
    MAX_CONTEXT_STRING_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_ID_LENGTH,
    MAX_OUTCOME_VALUE,
)
from experiments.models import OutcomeEvent
from experiments.store import to_db_time
from experiments.text import SURROGATE_REASON, has_lone_surrogate

Recipients = Sequence[tuple[str, Mapping[str, Any]]]

#: Why a stored context number is refused (formatted with the number).
CONTEXT_NUMBER_REASON = (
    f"out of range: a stored context number lies between -2**53 and 2**53 (±{MAX_CONTEXT_NUMBER:,}), "
    "got {!r}"
)


def json_value_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored as JSON (on PostgreSQL too), or None: a JSON value with numbers
    within :data:`MAX_CONTEXT_NUMBER` in absolute value, no NUL character in a string or a key, strings
    of at most :data:`MAX_CONTEXT_STRING_LENGTH` characters, nested at most :data:`MAX_CONTEXT_DEPTH`
    levels of at most :data:`MAX_CONTEXT_ITEMS` items each."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > sys.float_info.max:
            return "must be a JSON value (finite numbers), got an integer beyond the range of a number"
        return None if abs(value) <= MAX_CONTEXT_NUMBER else CONTEXT_NUMBER_REASON.format(value)
    if isinstance(value, str):
        if len(value) > MAX_CONTEXT_STRING_LENGTH:
            return f"too long: a stored string has at most {MAX_CONTEXT_STRING_LENGTH:,} characters"
        if has_lone_surrogate(value):
            return SURROGATE_REASON
        return NUL_REASON if "\x00" in value else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"must be a JSON value (finite numbers), got {value!r}"
        return None if abs(value) <= MAX_CONTEXT_NUMBER else CONTEXT_NUMBER_REASON.format(value)
    if isinstance(value, list | tuple | Mapping):
        if depth >= MAX_CONTEXT_DEPTH:
            return f"nested too deeply (at most {MAX_CONTEXT_DEPTH} levels)"
        if len(value) > MAX_CONTEXT_ITEMS:
            return f"too large: a stored list or mapping has at most {MAX_CONTEXT_ITEMS:,} items"
        if isinstance(value, Mapping):
            for k in value:
                if not isinstance(k, str):
                    return f"must be a JSON value (string keys), got the key {k!r}"
                if has_lone_surrogate(k):
                    return f"a key {SURROGATE_REASON}"
                if "\x00" in k:
                    return f"a key {NUL_REASON}"
        for item in value.values() if isinstance(value, Mapping) else value:
            problem = json_value_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    return f"must be a JSON value (finite numbers), got {value!r}"


def recipient_field(i: int, field: str, single: bool) -> str:
    """Where a problem of the ``i``-th recipient lies: ``recipients[i].<field>``, or ``<field>`` when the
    call names a single recipient (``POST .../assign``, ``sendlab assign -r``: there is no list)."""
    return field if single else f"recipients[{i}].{field}"


def check_recipients(recipients: Recipients, single: bool = False) -> None:
    """Each recipient a ``(recipient_id, context)`` pair: a non-empty id of at most
    :data:`MAX_ID_LENGTH` characters without NUL, and a mapping. ``single``: the call names one
    recipient, so its fields are ``recipient_id`` and ``context``."""
    if isinstance(recipients, str | bytes) or not isinstance(recipients, Sequence):
        raise InvalidInput("recipients", "expected a list of (recipient_id, context) pairs")
    for item in recipients:  # the common case first: exact types, no per-item isinstance of an ABC
        if type(item) is not tuple or len(item) != 2:
            break
        rid, context = item
        if (
            type(rid) is not str
            or not 0 < len(rid) <= MAX_ID_LENGTH
            or "\x00" in rid
            or type(context) is not dict
        ):
            break
    else:
        return
    for i, item in enumerate(recipients):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidInput(f"recipients[{i}]", "expected a (recipient_id, context) pair")
        rid, context = item
        if not isinstance(rid, str) or not rid or len(rid) > MAX_ID_LENGTH:
            raise InvalidInput(
                recipient_field(i, "recipient_id", single),
                f"must be a non-empty string of at most {MAX_ID_LENGTH} chars",
            )
        if "\x00" in rid:
            raise InvalidInput(recipient_field(i, "recipient_id", single), NUL_REASON)
        if not isinstance(context, Mapping):
            raise InvalidInput(
                recipient_field(i, "context", single), f"must be a mapping, got {type(context).__name__}"
            )


def stored_contexts(
    compiled: CompiledExperiment, contexts: Sequence[Mapping[str, Any]], single: bool = False
) -> list[dict[str, Any]] | None:
    """Per recipient, the context attributes stored with its decision (None when the spec stores
    none), checked before anything reads them: no string value of a context holds a NUL character,
    and each stored value is a JSON value that every database can store (:func:`json_value_problem`).

    Raises
    ------
    InvalidInput
        At ``recipients[i].context.<name>`` (``context.<name>`` when ``single``).
    """
    if any(type(v) is str and "\x00" in v for context in contexts for v in context.values()):
        for i, context in enumerate(contexts):
            for name, value in context.items():
                if isinstance(value, str) and "\x00" in value:
                    raise InvalidInput(recipient_field(i, f"context.{name}", single), NUL_REASON)
    attributes = sorted(compiled.stored_attributes)
    if not attributes:
        return None
    out = []
    for i, context in enumerate(contexts):
        stored = {a: context[a] for a in attributes if a in context}
        for name, value in stored.items():
            if type(value) is not str or len(value) > MAX_CONTEXT_STRING_LENGTH or not value.isascii():
                problem = json_value_problem(value)
                if problem is not None:
                    raise InvalidInput(recipient_field(i, f"context.{name}", single), problem)
        out.append(stored)
    return out


def check_outcome_events(events: Sequence[OutcomeEvent]) -> None:
    """Every event as outcome recording needs it, or :class:`InvalidInput` at ``events[i].<field>``:
    ids non-empty strings of at most :data:`MAX_ID_LENGTH` characters, the type of at most
    :data:`MAX_EVENT_TYPE_LENGTH`, no string holding a NUL character, a finite value within
    :data:`MAX_OUTCOME_VALUE`, a timestamp that has a UTC time (years 1 to 9999)."""
    if isinstance(events, str | bytes) or not isinstance(events, Sequence):
        raise InvalidInput("events", "expected a list of outcome events")
    for i, e in enumerate(events):
        if not isinstance(e, OutcomeEvent):
            raise InvalidInput(f"events[{i}]", f"expected an OutcomeEvent, got {type(e).__name__}")
        for name, longest in (
            ("event_id", MAX_ID_LENGTH), ("decision_id", MAX_ID_LENGTH), ("type", MAX_EVENT_TYPE_LENGTH)
        ):
            value = getattr(e, name)
            if not isinstance(value, str) or not value or len(value) > longest:
                raise InvalidInput(
                    f"events[{i}].{name}",
                    f"must be a non-empty string of at most {longest} chars, got {value!r}",
                )
            if "\x00" in value:
                raise InvalidInput(f"events[{i}].{name}", NUL_REASON)
        if e.value is not None and (
            isinstance(e.value, bool)
            or not isinstance(e.value, int | float)
            or not math.isfinite(e.value)
        ):
            raise InvalidInput(f"events[{i}].value", f"must be a finite number or null, got {e.value!r}")
        if e.value is not None and abs(e.value) > MAX_OUTCOME_VALUE:
            raise InvalidInput(
                f"events[{i}].value",
                f"must lie between -{MAX_OUTCOME_VALUE:.0e} and {MAX_OUTCOME_VALUE:.0e}, got {e.value!r}",
            )
        if e.user_agent is not None and not isinstance(e.user_agent, str):
            raise InvalidInput(
                f"events[{i}].user_agent", f"must be a string or null, got {e.user_agent!r}"
            )
        if e.user_agent is not None and "\x00" in e.user_agent:
            raise InvalidInput(f"events[{i}].user_agent", NUL_REASON)
        if e.timestamp is not None and not isinstance(e.timestamp, datetime):
            raise InvalidInput(
                f"events[{i}].timestamp", f"must be a datetime or null, got {e.timestamp!r}"
            )
        if e.timestamp is not None:
            try:
                to_db_time(e.timestamp)
            except OverflowError:
                raise InvalidInput(
                    f"events[{i}].timestamp",
                    f"out of range: {e.timestamp.isoformat()} is not between years 1 and 9999 in UTC",
                ) from None
