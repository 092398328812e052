"""Outcome models: events in (one or a bulk list), counts out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from experiments.limits import MAX_EVENT_TYPE_LENGTH, MAX_EVENTS, MAX_ID_LENGTH, MAX_USER_AGENT_LENGTH


class OutcomeEventIn(BaseModel):
    """One outcome: ``event_id`` makes it idempotent; ``type`` is an event the spec's reward knows."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    decision_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    type: str = Field(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH, examples=["click"])
    value: float | None = Field(default=None, allow_inf_nan=False)
    timestamp: datetime | None = Field(default=None, description="When it happened (default: now).")
    machine: bool = Field(
        default=False,
        description="Made by a machine (an Apple Mail Privacy Protection prefetch, a link scanner's "
        "click): stored, never learned from, left out of results unless they ask to include it.",
    )
    user_agent: str | None = Field(
        default=None,
        max_length=MAX_USER_AGENT_LENGTH,
        description="The user agent of the open or click; when it contains one of the spec's "
        "`reward.machine_user_agents` (case-insensitive), the event is machine-made.",
    )


class OutcomesRequest(BaseModel):
    """A bulk list of outcomes, ``{"events": [...]}``; one bare event is taken as a list of one.

    Problems of a bare event are reported at ``body.events.0.<field>``.
    """

    model_config = ConfigDict(extra="forbid")

    events: list[OutcomeEventIn] = Field(min_length=1, max_length=MAX_EVENTS)

    @model_validator(mode="before")
    @classmethod
    def _one_event(cls, data: Any) -> Any:
        if isinstance(data, dict) and "events" not in data and "event_id" in data:
            return {"events": [data]}
        return data


class OutcomeCountsPublic(BaseModel):
    """How the events were taken: new, already seen (same ``event_id``), for an unknown decision, or for
    a decision of an erased recipient (not stored)."""

    accepted: int
    duplicates: int
    orphans: int
    erased: int = 0
