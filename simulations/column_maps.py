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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from simulations.data import SimulationInputError
from simulations.file_errors import read_yaml

CONTEXT_PREFIX = "context."
#: The roles' column names in SendLab's own logs (see the module docstring).
SENDLAB_COLUMNS = {"action": "action", "reward": "reward", "propensity": "propensity", "position": "position"}


def feature_name(column: str) -> str:
    """The feature a context column holds: ``context.device`` -> ``device``; other names unchanged."""
    return column[len(CONTEXT_PREFIX):] if column.startswith(CONTEXT_PREFIX) else column


@dataclass(frozen=True)
class ColumnRoles:
    """A map from the roles a reader needs to the columns of a file that hold them.

    The base of every column map (:class:`ColumnMap` for logged sends,
    :class:`simulations.history.HistoryColumns` for purchase and engagement histories): a frozen
    dataclass whose fields are roles, read from YAML by :func:`load_column_map` or built from options
    by :func:`column_roles`, where no column may serve two roles. Subclasses list the columns read in
    :attr:`columns`.

    A plain dataclass, not a pydantic model: a replay builds its map on every run, and importing
    pydantic and building a model's validator cost about a fifth of the CPU time of reading a
    1,000,000-row CSV log with pandas. Input whose types are not already the fields' own
    (:meth:`_plain`) is checked and converted by pydantic (imported then), which words the errors.
    """

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    @property
    def columns(self) -> list[str]:
        """Every column read from the file."""
        raise NotImplementedError

    def __post_init__(self) -> None:
        used = self.columns
        if len(set(used)) != len(used):
            raise ValueError(f"a column is mapped twice: {used}")

    @classmethod
    def _plain(cls, given: Mapping[str, object]) -> dict[str, object] | None:
        """``given`` as the fields' own types when each value already is one (names of columns as
        text), else ``None``."""
        names = {f.name for f in fields(cls)}
        if not all(k in names and isinstance(v, str) for k, v in given.items()):
            return None
        return dict(given)

    @classmethod
    def _before(cls, given: dict[str, object]) -> dict[str, object]:
        """``given`` made ready for pydantic's checks (for fields it would not convert as wanted)."""
        return given


class ColumnRolesError(ValueError):
    """A column map that is not valid; ``problems`` are ``(field, message)`` pairs, the field ``"map"``
    for a problem of the whole map (messages as pydantic words them)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))
        self.problems = problems


Roles = TypeVar("Roles", bound=ColumnRoles)


def column_roles(kind: type[Roles], given: Mapping[str, object]) -> Roles:
    """A ``kind`` column map from ``given`` fields; :class:`ColumnRolesError` when they are not valid."""
    plain = kind._plain(given)
    if plain is not None:
        try:
            return kind(**plain)
        except (TypeError, ValueError):  # a role missing, or a check failed
            pass  # worded below, as for any other invalid input
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(kind).validate_python(kind._before(dict(given)))
    except ValidationError as exc:
        raise ColumnRolesError(validation_problems(exc, "map")) from None


def validation_problems(exc: Any, whole: str) -> list[tuple[str, str]]:
    """``(field, message)`` of each error of pydantic's ``ValidationError`` ``exc`` validating a dataclass
    (``whole`` for the whole input), worded as for a model: an unknown field's "Extra inputs are not
    permitted"."""
    return [
        (".".join(map(str, e["loc"])) or whole,
         "Extra inputs are not permitted" if e["type"] == "unexpected_keyword_argument" else e["msg"])
        for e in exc.errors()
    ]


@dataclass(frozen=True)
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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.actions is not None and (not self.actions or len(set(self.actions)) != len(self.actions)):
            raise ValueError(f"actions must be a non-empty list of distinct ids, got {list(self.actions)}")
        if self.reward_range is not None and not self.reward_range[0] <= self.reward_range[1]:
            raise ValueError(f"reward_range low must not exceed high, got {list(self.reward_range)}")
        features = [feature_name(c) for c in self.context]
        if len(set(features)) != len(features):
            raise ValueError(f"context: two columns hold the same feature once 'context.' is dropped: "
                             f"{list(self.context)}")

    @property
    def columns(self) -> list[str]:
        """Every column read from the file."""
        return [self.action, self.reward, self.propensity, *self.context] + (
            [self.position] if self.position else []
        )

    @classmethod
    def _before(cls, given: dict[str, object]) -> dict[str, object]:
        """The variants as text (``actions: [1, 2]`` names variants ``"1"`` and ``"2"``)."""
        if given.get("actions") is not None:
            value = given["actions"]
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ColumnRolesError([("actions", "Value error, must be a list of variant ids")])
            given["actions"] = tuple(str(v) for v in value)
        return given

    @classmethod
    def _plain(cls, given: Mapping[str, object]) -> dict[str, object] | None:
        out: dict[str, object] = {}
        for key, value in given.items():
            if key in ("action", "reward", "propensity") or (key == "position" and value is not None):
                ok = isinstance(value, str)
            elif key == "context":
                ok = isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)
                value = tuple(value) if ok else value  # type: ignore[arg-type]
            elif key == "actions" and value is not None:
                ok = isinstance(value, tuple | list)
                value = tuple(str(v) for v in value) if ok else value  # type: ignore[union-attr]
            elif key == "reward_range" and value is not None:
                ok = (isinstance(value, tuple | list) and len(value) == 2
                      and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))
                value = tuple(float(v) for v in value) if ok else value  # type: ignore[union-attr]
            else:
                ok = key in ("position", "actions", "reward_range")  # None
            if not ok:
                return None
            out[key] = value
        return out


def column_map(**given: object) -> ColumnMap:
    """A :class:`ColumnMap`, with validation errors turned into :class:`SimulationInputError`."""
    try:
        return column_roles(ColumnMap, given)
    except ColumnRolesError as exc:
        raise SimulationInputError(f"column map: {exc}") from None


def load_column_fields(path: str | Path, kind: type[ColumnRoles] = ColumnMap) -> dict[str, Any]:
    """The fields a YAML column map gives (checked as :func:`load_column_map` checks them), to lay
    over defaults or options."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SimulationInputError(f"{path}: expected a mapping of column roles to column names")
    try:
        roles = column_roles(kind, raw)
    except ColumnRolesError as exc:
        raise SimulationInputError(f"{path}: {exc}") from None
    return {key: getattr(roles, key) for key in raw}


def load_column_map(path: str | Path, kind: type[Roles] = ColumnMap) -> Roles:  # type: ignore[assignment]
    """Read a column map from a YAML file: a :class:`ColumnMap` (keys as in the module docstring), or
    another kind of :class:`ColumnRoles` (its fields are the keys)."""
    return column_roles(kind, load_column_fields(path, kind))


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
        # each name once: a header that repeats one is refused where the file is read, naming it
        fields["context"] = tuple(dict.fromkeys(c for c in present if c.startswith(CONTEXT_PREFIX)))
    return column_map(**fields)

