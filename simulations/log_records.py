"""Logged sends from records already fetched (mappings or objects, as exported from the SendLab
database), checked like the rows of a file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from simulations.column_maps import column_map
from simulations.data import SimulationInputError
from simulations.load_reports import LoadReport
from simulations.logs import validate_rows


def _field(record: object, name: str, default: object = ...) -> object:
    if isinstance(record, Mapping):
        if name in record:
            return record[name]
    elif hasattr(record, name):
        return getattr(record, name)
    if default is ...:
        raise SimulationInputError(f"records: a record has no {name!r} field")
    return default


def combination_label(variants: Mapping[str, object]) -> str:
    """The action id of a multi-slot decision: ``"subject=plain|cta=shop"`` (slots in their given order)."""
    return "|".join(f"{slot}={variant}" for slot, variant in variants.items())


def _action_of(record: object, action: str | Callable[[object], object]) -> object:
    if callable(action):
        return action(record)
    value = _field(record, action, None)
    if value is None and action == "action":
        variants = _field(record, "variants", None)
        if isinstance(variants, Mapping) and variants:
            return combination_label(variants)
    return value


def logs_from_records(
    records: Iterable[object],
    *,
    actions: Sequence[str] | None = None,
    reward_range: tuple[float, float] | None = None,
    action: str | Callable[[object], object] = "action",
    first_row: int = 0,
) -> LoadReport:
    """Logged sends from rows already fetched (for example exported from the SendLab database).

    Parameters
    ----------
    records : iterable
        Mappings or objects with ``context`` (a mapping of features, or None), the action,
        ``reward``, ``propensity`` and optionally ``position``.
    actions : sequence of str, optional
        The variants; by default the sorted distinct actions of the records.
    reward_range : (float, float), optional
        Inclusive bounds for the reward.
    action : str or callable
        The field holding the chosen variant's id, or a function of the record returning it. With
        the default ``"action"``, a record without that field but with ``variants`` (a mapping of
        slot to variant id, as in SendLab's exported decisions) gets :func:`combination_label`.
    first_row : int
        Number of the first record in its source (rows are numbered consecutively from it).

    Returns
    -------
    LoadReport
    """
    rows = list(records)
    contexts = [dict(_field(r, "context", None) or {}) for r in rows]
    import pandas as pd

    action_values = pd.Series([_action_of(r, action) for r in rows], dtype=object)
    action_values = action_values.where(action_values.isna(), action_values.astype(str))
    if actions is None:
        distinct = sorted(set(action_values.dropna()))
        if not distinct:
            raise SimulationInputError("records: no record has an action")
        actions = distinct
    positions = [_field(r, "position", None) for r in rows]
    return validate_rows(
        action_values,
        pd.Series([_field(r, "reward") for r in rows], dtype=object),
        pd.Series([_field(r, "propensity") for r in rows], dtype=object),
        contexts,
        None if all(p is None for p in positions) else pd.Series(positions, dtype=object),
        column_map(action="a", reward="r", propensity="p", actions=tuple(actions)).actions or (),
        column_map(action="a", reward="r", propensity="p", reward_range=reward_range).reward_range,
        first_row + np.arange(len(rows)),
    )
