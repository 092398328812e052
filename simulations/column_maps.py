"""Which column of a file holds what: column maps, read from options or from YAML.

SendLab's own log columns (what :func:`default_column_map` reads without any mapping)::

    decision_id      the decision's id (not used by the estimators)
    created_at       when it was made (not used; rows are taken in file order)
    action           the chosen variant's id (for several slots, ``subject=plain|cta=shop``)
    propensity       the logged probability of that action, in (0, 1]
    reward           the reward it earned
    position         optional: the slot's position in the message
    context.<name>   one column per context feature; the policy and reward model see ``<name>``

Logs written by other tools are read through a :class:`ColumnMap`, given as options or in a small
YAML file::

    action: variant            # the chosen variant's id
    reward: clicked
    propensity: prob
    context: [device, segment, recency_days]
    position: slot             # optional
    actions: [plain, urgent]   # optional: the variants; others are rejected as unknown
    reward_range: [0, 1]       # optional: rewards outside it are rejected

A ``context.`` prefix is dropped from feature names wherever it appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from simulations.data import SimulationInputError
from simulations.file_errors import read_yaml

CONTEXT_PREFIX = "context."
#: The roles' column names in SendLab's own logs (see the module docstring).
SENDLAB_COLUMNS = {"action": "action", "reward": "reward", "propensity": "propensity", "position": "position"}


def feature_name(column: str) -> str:
    """The feature a context column holds: ``context.device`` -> ``device``; other names unchanged."""
    return column[len(CONTEXT_PREFIX):] if column.startswith(CONTEXT_PREFIX) else column


class ColumnRoles(BaseModel):
    """A map from the roles a reader needs to the columns of a file that hold them.

    The base of every column map (:class:`ColumnMap` for logged sends,
    :class:`simulations.history.HistoryColumns` for purchase and engagement histories): a frozen model
    whose fields are roles, read from YAML by :func:`load_column_map` or built from options, where no
    column may serve two roles. Subclasses list the columns read in :attr:`columns`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def columns(self) -> list[str]:
        """Every column read from the file."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _no_column_twice(self) -> ColumnRoles:
        used = self.columns
        if len(set(used)) != len(used):
            raise ValueError(f"a column is mapped twice: {used}")
        return self


class ColumnMap(ColumnRoles):
    """Which column of a log holds what.

    Attributes
    ----------
    action, reward, propensity : str
        Columns of the chosen variant's id, the reward and the logged propensity.
    context : tuple of str
        Feature columns (empty: no features).
    position : str or None
        Column of the slot's position, if any.
    actions : tuple of str or None
        The variants, in the order of the estimators' columns; ``None`` takes the sorted distinct
        values of the action column (one extra pass over that column).
    reward_range : tuple of float or None
        Inclusive bounds for the reward.
    """

    action: str
    reward: str
    propensity: str
    context: tuple[str, ...] = ()
    position: str | None = None
    actions: tuple[str, ...] | None = None
    reward_range: tuple[float, float] | None = None

    @field_validator("actions", mode="before")
    @classmethod
    def _actions_as_strings(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ValueError("must be a list of variant ids")
        return tuple(str(v) for v in value)

    @model_validator(mode="after")
    def _check(self) -> ColumnMap:
        if self.actions is not None and (not self.actions or len(set(self.actions)) != len(self.actions)):
            raise ValueError(f"actions must be a non-empty list of distinct ids, got {list(self.actions)}")
        if self.reward_range is not None and not self.reward_range[0] <= self.reward_range[1]:
            raise ValueError(f"reward_range low must not exceed high, got {list(self.reward_range)}")
        features = [feature_name(c) for c in self.context]
        if len(set(features)) != len(features):
            raise ValueError(f"context: two columns hold the same feature once 'context.' is dropped: "
                             f"{list(self.context)}")
        return self

    @property
    def columns(self) -> list[str]:
        """Every column read from the file."""
        return [self.action, self.reward, self.propensity, *self.context] + (
            [self.position] if self.position else []
        )


Roles = TypeVar("Roles", bound=ColumnRoles)


def column_map(**fields: object) -> ColumnMap:
    """A :class:`ColumnMap`, with validation errors turned into :class:`SimulationInputError`."""
    try:
        return ColumnMap(**fields)
    except ValidationError as exc:
        raise SimulationInputError(_pydantic_message("column map", exc)) from None


def load_column_map(path: str | Path, kind: type[Roles] = ColumnMap) -> Roles:  # type: ignore[assignment]
    """Read a column map from a YAML file: a :class:`ColumnMap` (keys as in the module docstring), or
    another kind of :class:`ColumnRoles` (its fields are the keys)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SimulationInputError(f"{path}: expected a mapping of column roles to column names")
    try:
        return kind(**raw)
    except ValidationError as exc:
        raise SimulationInputError(_pydantic_message(str(path), exc)) from None


def _pydantic_message(where: str, exc: ValidationError) -> str:
    problems = [f"{'.'.join(map(str, e['loc'])) or 'map'}: {e['msg']}" for e in exc.errors()]
    return f"{where}: " + "; ".join(problems)


def default_column_map(present: Sequence[str], **given: object) -> ColumnMap:
    """The column map of a log with SendLab's own column names, with ``given`` fields laid over it.

    Roles not given take SendLab's names (``action``, ``reward``, ``propensity``; ``position`` when the
    file has that column); without ``context``, every ``context.<name>`` column is a feature.

    Parameters
    ----------
    present : sequence of str
        The log's columns (:func:`log_columns`).
    **given
        Fields of :class:`ColumnMap` already chosen (from ``--map`` or options); ``None`` means unset.

    Returns
    -------
    ColumnMap
    """
    fields = {k: v for k, v in given.items() if v is not None}
    for role in ("action", "reward", "propensity"):
        fields.setdefault(role, SENDLAB_COLUMNS[role])
    if "position" not in fields and SENDLAB_COLUMNS["position"] in present:
        fields["position"] = SENDLAB_COLUMNS["position"]
    if "context" not in fields:
        fields["context"] = tuple(c for c in present if c.startswith(CONTEXT_PREFIX))
    return column_map(**fields)

