"""What the drift monitor reads from the store: the policy's decisions and their rewards, per cell.

A cell is the learnable decisions of one (day, policy version, learned version, arm): how many there
were, and the sum and sum of squares of their rewards (the spec's reward of each decision's attributed
outcomes, :func:`experiments.summaries.attribution`). ``learned_version`` is the snapshot that first
learned the decisions (None: not learned yet), so the decisions a snapshot had learned when it chose
are the cells with ``learned_version`` at most its version; the decision rows store no predicted
reward, so the monitor rebuilds each snapshot's per-arm posterior from them
(:mod:`experiments.drift_block`).

The cells are the stored drift rollups (:mod:`experiments.store.drift_rollups`), kept in the
transactions that write the log, so the monitor reads a few rows per day and arm whatever the size of
the log; with machine events included (which the rollups leave out) they are computed from the log in
full (:func:`experiments.store.drift_rollups.log_drift_cells`, the reference). Fallback decisions
(holdout, ineligible, paused) are not the policy's and are left out. No row leaves the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.store.drift_rollups import DriftCell, log_drift_cells, stored_drift_cells

__all__ = ["DriftCell", "DriftLog", "read_drift_cells"]


@dataclass(frozen=True)
class DriftLog:
    """The cells of an experiment's current version, and what judging them needs.

    ``now`` is the service's clock when the cells were read (naive UTC, as stored); ``window_hours``
    the reward window: a day is judged once the windows of all its decisions have closed;
    ``arm_to_variants`` each arm's variant per slot.
    """

    key: str
    design: str
    window_hours: float
    now: datetime
    cells: tuple[DriftCell, ...]
    arm_to_variants: tuple[dict[str, str], ...] = ()


def read_drift_cells(
    conn: Connection, compiled: CompiledExperiment, *, include_machine: bool = False
) -> tuple[DriftCell, ...]:
    """Every cell of the version (module docstring), ordered by day, policy version, learned version, arm."""
    if include_machine:
        return log_drift_cells(conn, compiled, include_machine=True)
    return stored_drift_cells(conn, compiled.spec.key, compiled.version)
