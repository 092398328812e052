"""Learning models."""

from __future__ import annotations

from pydantic import BaseModel


class LearnResult(BaseModel):
    """The policy version after a learning step."""

    key: str
    policy_version: int
