"""Candidate policies to evaluate offline: a SendLab policy by name, trained on the logs or not.

A candidate file (YAML) names a policy and its options, or a single fixed variant::

    name: thompson-after-half     # optional label
    policy: thompson              # any bandit.make_policy name; or `variant: urgent` for a fixed one
    options: {prior_alpha: 1, prior_beta: 1}
    train: true                   # learn from the earlier part of the log first (default true)
    train_fraction: 0.5           # share of the log, from its start, used for training

An experiment spec (``design: {type, policy, ...}``) is read too: ``ab`` and ``multivariate``
designs become uniform fixed allocation, the others the spec's ``design.policy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulations.data import SimulationInputError
from simulations.file_errors import parse_yaml, read_yaml


class CandidateSpec(BaseModel):
    """A policy to build with ``bandit.make_policy`` (and train on the earlier part of a log).

    Attributes
    ----------
    name : str
        Label in reports (defaults to the policy name or ``fixed:<variant>``).
    policy : str
        A ``bandit.make_policy`` name.
    options : mapping
        The policy's options.
    variant : str or None
        Shorthand for a fixed policy that always sends this variant.
    train : bool
        Whether to learn from the training part of the log before evaluation.
    train_fraction : float
        Share of the log, from its start, used for training (and for the reward model).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    policy: str = "fixed"
    options: dict[str, Any] = Field(default_factory=dict)
    variant: str | None = None
    train: bool = True
    train_fraction: float = Field(0.5, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _default_name(self) -> CandidateSpec:
        if self.variant is not None and (self.policy != "fixed" or self.options):
            raise ValueError("variant: give either a fixed variant or a policy with options, not both")
        if not self.name:
            label = f"fixed:{self.variant}" if self.variant is not None else self.policy
            object.__setattr__(self, "name", label)
        return self


def candidate_from_mapping(raw: Mapping[str, Any], where: str = "candidate") -> CandidateSpec:
    """A :class:`CandidateSpec` from a mapping: a candidate document or an experiment spec."""
    if not isinstance(raw, Mapping):
        raise SimulationInputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    if "design" in raw:
        design = raw["design"]
        if not isinstance(design, Mapping):
            raise SimulationInputError(f"{where}: design: expected a mapping")
        kind = design.get("type", "ab")
        policy = "fixed" if kind in ("ab", "multivariate") else design.get("policy")
        if not policy:
            raise SimulationInputError(f"{where}: design.policy: required for a {kind!r} design")
        raw = {"name": str(raw.get("key", policy)), "policy": policy,
               "options": dict(design.get("options", {}) or {})}
    try:
        return CandidateSpec(**raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'candidate'}: {e['msg']}" for e in exc.errors()]
        raise SimulationInputError(f"{where}: " + "; ".join(problems)) from None


def candidate_from_text(text: str, where: str = "candidate") -> CandidateSpec:
    """A :class:`CandidateSpec` from YAML or JSON text (a candidate document or an experiment spec)."""
    return candidate_from_mapping(parse_yaml(text, where), where)


def load_candidate(path: str | Path) -> CandidateSpec:
    """Read a :class:`CandidateSpec` from a YAML or JSON file."""
    return candidate_from_mapping(read_yaml(path), str(path))
