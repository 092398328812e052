"""What a load of logged sends produced: the usable rows and the rows set aside, by reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from simulations.data import LoggedData, SimulationInputError, is_frame
from simulations.feature_columns import FeatureColumns

REJECTION_REASONS = (
    "missing_action",
    "unknown_action",
    "missing_propensity",
    "zero_propensity",
    "propensity_below_floor",
    "invalid_propensity",
    "missing_reward",
    "reward_out_of_range",
    "missing_context",
)
#: Rows kept as examples per reason.
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class RejectedRows:
    """Rows set aside for one reason.

    Attributes
    ----------
    count : int
    examples : tuple of (int, str)
        The first few ``(row number, offending value)``; rows are numbered from 0 in read order.
    """

    count: int
    examples: tuple[tuple[int, str], ...] = ()

    def __add__(self, other: RejectedRows) -> RejectedRows:
        return RejectedRows(self.count + other.count, (self.examples + other.examples)[:MAX_EXAMPLES])


@dataclass(frozen=True)
class LoadReport:
    """What a load produced: the usable rows and the rows set aside, by reason.

    Attributes
    ----------
    data : LoggedData
        The rows that passed every check, in read order.
    rejected : mapping of str to RejectedRows
        ``reason -> rows``, for reasons in ``REJECTION_REASONS`` that occurred.
    rows_read : int
        Rows read, used or not.
    kept_rows : ndarray of int, shape (data.n,)
        For each used row, its row number in the source (counted from 0 in read order), to align
        files that have one row per logged send, such as per-row action probabilities.
    """

    data: LoggedData
    rejected: Mapping[str, RejectedRows] = field(default_factory=dict)
    rows_read: int = 0
    kept_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def rows_rejected(self) -> int:
        """Rows set aside, all reasons together."""
        return sum(r.count for r in self.rejected.values())

    @property
    def rows_used(self) -> int:
        """Rows that passed every check."""
        return self.data.n

    def summary(self) -> LoadSummary:
        """The counts without the data."""
        return LoadSummary(self.rows_read, self.data.n, self.rejected)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary (without the data)."""
        return self.summary().to_dict()


@dataclass(frozen=True)
class LoadSummary:
    """What a load read, used and set aside, without the rows (mergeable with ``+``).

    Attributes
    ----------
    rows_read, rows_used : int
    rejected : mapping of str to RejectedRows
        ``reason -> rows``, in the order of ``REJECTION_REASONS``.
    """

    rows_read: int = 0
    rows_used: int = 0
    rejected: Mapping[str, RejectedRows] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        """Rows set aside, all reasons together."""
        return sum(r.count for r in self.rejected.values())

    def __add__(self, other: LoadSummary) -> LoadSummary:
        if not isinstance(other, LoadSummary):
            return NotImplemented
        return LoadSummary(
            self.rows_read + other.rows_read,
            self.rows_used + other.rows_used,
            merge_rejections([self.rejected, other.rejected]),
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping: rows read, used, set aside, and per reason the count and examples."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "rejected": {
                reason: {"count": r.count, "examples": [{"row": i, "value": v} for i, v in r.examples]}
                for reason, r in self.rejected.items()
            },
        }


def merge_rejections(parts: Iterable[Mapping[str, RejectedRows]]) -> dict[str, RejectedRows]:
    """Rejections of consecutive parts of a log, merged per reason (examples stay the first ones)."""
    rejected: dict[str, RejectedRows] = {}
    for part in parts:
        for reason, rows in part.items():
            rejected[reason] = rejected[reason] + rows if reason in rejected else rows
    return {r: rejected[r] for r in REJECTION_REASONS if r in rejected}


def concat_logged(parts: Sequence[LoggedData]) -> LoggedData:
    """Rows of several logs over the same variants, one after the other."""
    if not parts:
        raise SimulationInputError("parts: nothing to concatenate")
    names = parts[0].action_names
    for part in parts:
        if part.action_names != names:
            raise SimulationInputError(f"action_names: {part.action_names} differ from {names}")
    if all(isinstance(p.contexts, np.ndarray) for p in parts):
        contexts: object = np.concatenate([p.contexts for p in parts])
    elif all(isinstance(p.contexts, FeatureColumns) for p in parts):
        contexts = FeatureColumns.concat([p.contexts for p in parts])  # type: ignore[misc]
    elif all(is_frame(p.contexts) for p in parts):
        import pandas as pd

        contexts = pd.concat([p.contexts for p in parts], ignore_index=True)
    else:
        contexts = [c for p in parts for c in p.context_mappings()]
    has_positions = all(p.positions is not None for p in parts)
    return LoggedData(
        contexts=contexts,
        actions=np.concatenate([p.actions for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        propensities=np.concatenate([p.propensities for p in parts]),
        action_names=names,
        positions=np.concatenate([p.positions for p in parts]) if has_positions else None,
    )


def merge_reports(reports: Iterable[LoadReport]) -> LoadReport:
    """One report for several chunks read in order."""
    reports = list(reports)
    if not reports:
        raise SimulationInputError("reports: nothing to merge")
    return LoadReport(
        data=concat_logged([r.data for r in reports]),
        rejected=merge_rejections(r.rejected for r in reports),
        rows_read=sum(r.rows_read for r in reports),
        kept_rows=np.concatenate([r.kept_rows for r in reports]),
    )
