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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Lt

from simulations.column_maps import validation_problems
from simulations.data import SimulationInputError
from simulations.file_errors import parse_yaml, read_yaml


@dataclass(frozen=True)
class CandidateSpec:
    """A policy to build with ``bandit.make_policy`` (and train on the earlier part of a log).

    A plain dataclass, checked when built (``train_fraction`` in [0, 1), a fixed variant without a
    policy's options); a mapping read from a file is checked and converted by
    :func:`candidate_from_mapping`, through pydantic when its values are not already of the fields'
    types (a replay builds its candidate on every run: importing pydantic, and building a model's
    validator, cost as much as a fifth of reading a 1,000,000-row CSV log with pandas).

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

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    name: str = ""
    policy: str = "fixed"
    options: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    train: bool = True
    train_fraction: Annotated[float, Ge(0.0), Lt(1.0)] = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_fraction", float(self.train_fraction))
        if not 0.0 <= self.train_fraction < 1.0:
            raise ValueError(f"train_fraction: must be at least 0 and less than 1, got {self.train_fraction}")
        _check_variant(self.variant, self.policy, self.options)
        if not self.name:
            label = f"fixed:{self.variant}" if self.variant is not None else self.policy
            object.__setattr__(self, "name", label)


def _check_variant(variant: str | None, policy: str, options: Mapping[str, Any]) -> None:
    if variant is not None and (policy != "fixed" or options):
        raise ValueError("variant: give either a fixed variant or a policy with options, not both")


#: The type each field of :class:`CandidateSpec` holds as it is (no conversion needed).
_PLAIN = {"name": str, "policy": str, "options": dict, "variant": (str, type(None)), "train": bool,
          "train_fraction": (float, int)}


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
    if all(k in _PLAIN and isinstance(v, _PLAIN[k]) and (k == "train" or not isinstance(v, bool))
           for k, v in raw.items()):
        try:
            return CandidateSpec(**raw)
        except ValueError:
            pass  # worded below, as for any other invalid mapping
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(CandidateSpec).validate_python(dict(raw))
    except ValidationError as exc:
        problems = [f"{field}: {message}" for field, message in validation_problems(exc, "candidate")]
        raise SimulationInputError(f"{where}: " + "; ".join(problems)) from None


def candidate_from_text(text: str, where: str = "candidate") -> CandidateSpec:
    """A :class:`CandidateSpec` from YAML or JSON text (a candidate document or an experiment spec)."""
    return candidate_from_mapping(parse_yaml(text, where), where)


def load_candidate(path: str | Path) -> CandidateSpec:
    """Read a :class:`CandidateSpec` from a YAML or JSON file."""
    return candidate_from_mapping(read_yaml(path), str(path))
