"""The logged sends that off-policy estimators read, and the errors raised on bad input."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, TypeGuard

import numpy as np

from simulations.errors import SimulationInputError
from simulations.feature_columns import FeatureColumns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_PROPENSITY", "Contexts", "LoggedData", "SimulationInputError", "context_mappings", "is_frame"]

#: The smallest logged propensity the estimators take: its importance weight (at most 1e100) and the
#: weight's square stay far inside a float's range (about 1.8e308), over any number of rows.
MIN_PROPENSITY = 1e-100

#: The forms of a log's features (pandas stays unimported until a DataFrame is met).
Contexts: TypeAlias = (
    "np.ndarray | pd.DataFrame | FeatureColumns | Sequence[Mapping[str, float | int | str | bool]]"
)


def is_frame(value: object) -> TypeGuard[pd.DataFrame]:
    """Whether ``value`` is a pandas DataFrame (pandas is not imported: without it, nothing is one)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


@dataclass(frozen=True)
class LoggedData:
    """Logged decisions: what was chosen, with which probability, and the reward that followed.

    Attributes
    ----------
    contexts : ndarray of shape (n, d), pandas.DataFrame or FeatureColumns of n rows, or n mappings
        The features known at decision time, one row (or one ``{name: value}`` mapping) per send.
        An ``(n, 0)`` array when the log carries no features. A DataFrame or
        :class:`~simulations.feature_columns.FeatureColumns` (one array per feature, as the file
        readers keep them) avoids building one mapping per row.
    actions : ndarray of int, shape (n,)
        Index of the chosen variant in ``action_names``.
    rewards : ndarray of float, shape (n,)
        The observed reward.
    propensities : ndarray of float, shape (n,)
        The logging policy's probability of the chosen variant, in [``MIN_PROPENSITY``, 1].
    action_names : tuple of str, length k
        Variant ids, in the order of the columns of every ``(n, k)`` array.
    positions : ndarray of int, shape (n,), or None
        Position of the slot in the message, when the log has one.
    """

    contexts: Contexts
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    action_names: tuple[str, ...]
    positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = int(np.shape(self.actions)[0]) if np.ndim(self.actions) == 1 else -1
        if n < 0:
            raise SimulationInputError(f"actions: expected a 1-d array, got shape {np.shape(self.actions)}")
        if len(self.action_names) == 0:
            raise SimulationInputError("action_names: at least one variant is needed")
        if len(set(self.action_names)) != len(self.action_names):
            raise SimulationInputError(f"action_names: duplicate variant ids in {self.action_names}")
        for name in ("rewards", "propensities"):
            shape = np.shape(getattr(self, name))
            if shape != (n,):
                raise SimulationInputError(f"{name}: expected shape ({n},) like actions, got {shape}")
        if len(self.contexts) != n:
            raise SimulationInputError(f"contexts: expected {n} rows like actions, got {len(self.contexts)}")
        if self.positions is not None and np.shape(self.positions) != (n,):
            raise SimulationInputError(f"positions: expected shape ({n},), got {np.shape(self.positions)}")
        actions = np.asarray(self.actions)
        if n and (not np.issubdtype(actions.dtype, np.integer) or actions.min() < 0
                  or actions.max() >= len(self.action_names)):
            raise SimulationInputError(
                f"actions: expected integer indices in [0, {len(self.action_names)}), "
                f"got dtype {actions.dtype}" + (f" and range [{actions.min()}, {actions.max()}]" if n else "")
            )
        propensities = np.asarray(self.propensities, dtype=float)
        if n and not (np.all(propensities > 0) and np.all(propensities <= 1)):
            bad = int(np.flatnonzero(~((propensities > 0) & (propensities <= 1)))[0])
            raise SimulationInputError(
                f"propensities: every logged propensity must be in (0, 1]; row {bad} has {propensities[bad]}"
            )
        if n and propensities.min() < MIN_PROPENSITY:
            bad = int(np.argmin(propensities))
            raise SimulationInputError(
                f"propensities: row {bad} has {propensities[bad]:g}, below the floor {MIN_PROPENSITY:g} "
                "(an importance weight above 1e100, whose sums of squares can overflow a float)"
            )
        if n and not np.all(np.isfinite(np.asarray(self.rewards, dtype=float))):
            bad = int(np.flatnonzero(~np.isfinite(np.asarray(self.rewards, dtype=float)))[0])
            raise SimulationInputError(f"rewards: row {bad} is not a finite number")

    @property
    def n(self) -> int:
        """Number of logged sends."""
        return int(self.actions.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of variants ``k``."""
        return len(self.action_names)

    def rows(self, start: int, stop: int) -> LoggedData:
        """The sends ``start:stop`` (a new object; this one is unchanged)."""
        if is_frame(self.contexts):
            contexts: Contexts = self.contexts.iloc[start:stop].reset_index(drop=True)
        elif isinstance(self.contexts, FeatureColumns):
            contexts = self.contexts.rows_between(start, stop)
        elif isinstance(self.contexts, np.ndarray):
            contexts = self.contexts[start:stop]
        else:
            contexts = list(self.contexts[start:stop])
        return LoggedData(
            contexts=contexts,
            actions=self.actions[start:stop],
            rewards=self.rewards[start:stop],
            propensities=self.propensities[start:stop],
            action_names=self.action_names,
            positions=None if self.positions is None else self.positions[start:stop],
        )

    def take(self, indices: np.ndarray) -> LoggedData:
        """The sends at ``indices`` (in that order, repeats allowed), as a new object."""
        idx = np.asarray(indices, dtype=np.int64)
        if is_frame(self.contexts):
            contexts: Contexts = self.contexts.iloc[idx].reset_index(drop=True)
        elif isinstance(self.contexts, FeatureColumns):
            contexts = self.contexts.take(idx)
        elif isinstance(self.contexts, np.ndarray):
            contexts = self.contexts[idx]
        else:
            contexts = [self.contexts[i] for i in idx]
        return LoggedData(
            contexts=contexts,
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            propensities=self.propensities[idx],
            action_names=self.action_names,
            positions=None if self.positions is None else self.positions[idx],
        )

    def context_mappings(self) -> list[dict[str, float | int | str | bool]]:
        """Contexts as one mapping per row (array columns are named ``x0, x1, ...``)."""
        return context_mappings(self.contexts)


def context_mappings(contexts: Contexts) -> list[dict[str, float | int | str | bool]]:
    """Contexts in any of :class:`LoggedData`'s forms as one ``{name: value}`` mapping per row.

    Array columns are named ``x0, x1, ...``; DataFrame and FeatureColumns values become Python scalars.
    """
    if isinstance(contexts, FeatureColumns):
        return contexts.to_mappings()
    if is_frame(contexts):
        if contexts.shape[1] == 0:
            return [{} for _ in range(len(contexts))]
        return contexts.to_dict("records")
    if isinstance(contexts, np.ndarray):
        names = [f"x{j}" for j in range(contexts.shape[1] if contexts.ndim == 2 else 0)]
        return [dict(zip(names, map(float, row), strict=True)) for row in contexts]
    return [dict(c) for c in contexts]
