"""Experiment models: what creating one answers and what listing or reading one shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["running", "paused", "archived"]


class ExperimentBase(BaseModel):
    """Fields every experiment view carries."""

    key: str
    version: int
    status: Status


class ExperimentCreated(ExperimentBase):
    """The answer to ``POST /v1/experiments``: the stored version and the spec's warnings."""

    warnings: list[str] = []


class ExperimentPublic(ExperimentBase):
    """One experiment with its spec as stored."""

    name: str | None = None
    warnings: list[str] = []
    created_at: datetime | None = None
    updated_at: datetime | None = None
    apprentice: bool = Field(
        default=False,
        description="A warm-started policy still learning beside the incumbent choice (see /graduate).",
    )
    spec: dict[str, Any]


class ExperimentsPublic(BaseModel):
    """All experiments."""

    experiments: list[ExperimentPublic]
    count: int
