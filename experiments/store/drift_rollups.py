"""The drift monitor's sums (``drift_rollups``): kept in the write transactions, read instead of the log,
rebuilt and checked against it.

A drift cell is the learnable (non-fallback) decisions of one (day, policy version, learned version,
arm) of a spec version: how many, and their rewards' sum and sum of squares (the default reward:
attributed, non-machine outcomes, :func:`experiments.store.summaries.attribution`). Only the cells of
learned decisions are stored: those of decisions not learned yet (learned version None) are every
learnable decision of their (day, policy version, arm), which the main cells already sum
(:mod:`experiments.store.rollups`; the same reward), less the learned ones, and
:func:`stored_drift_cells` derives them so. An assign therefore writes no drift row. What changes a
stored cell (:mod:`experiments.drift_deltas`), and where:

- **a learned decision's reward changed by outcomes**: :func:`drift_reward_changes`, from
  :class:`experiments.store.rollups.OutcomeRollup`, into the cell of the decision's learned version as
  read under the decision's lock (with the rest of the decision,
  :meth:`experiments.store.rollups.OutcomeRollup.read`);
- **its first learning**: :func:`record_drift_learned`, from :func:`experiments.store.rollups.record_learned`
  (which locks the decisions first): the decision and its current reward move to the new version's cell
  (from the derived cell of decisions not learned: nothing to subtract there).

:func:`log_drift_cells` computes the same cells from the log in full (two ``GROUP BY``): the reference,
what ``include_machine`` reads, what :func:`rebuild_drift_rollups` stores and
:func:`verify_drift_rollups` compares with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment, compile_experiment
from experiments.drift_deltas import (
    DriftChange,
    DriftKey,
    add_drift_reward_change,
    move_drift_decision,
)
from experiments.rollup_deltas import within_tolerance
from experiments.spec import ExperimentSpec
from experiments.store.repository import spec_text
from experiments.store.rollup_tables import _upsert
from experiments.store.summaries import attribution
from experiments.store.tables import NO_LEARNED_VERSION, NO_POLICY_VERSION
from experiments.store.tables import decisions_table as D
from experiments.store.tables import drift_rollups_table as T
from experiments.store.tables import rollups_table as R

_GROUP = ("day", "policy_version", "learned_version", "arm")
_SUMS = ("decisions", "reward_sum", "reward_sum_squares")
#: Per (experiment key, spec version), the change of each of its drift cells.
VersionDriftChanges = dict[tuple[str, int], dict[DriftKey, DriftChange]]
#: Reads the attributed (reward, flags) of decisions: :func:`experiments.store.rollups.attributed_states`.
StatesReader = Callable[[Connection, CompiledExperiment, Sequence[str]], Mapping[str, tuple[float, Any]]]


@dataclass(frozen=True)
class DriftCell:
    """The learnable decisions of one (day, policy version, learned version, arm) and their rewards."""

    day: date
    policy_version: int | None
    learned_version: int | None
    arm: int
    decisions: int
    reward_sum: float
    reward_sum_squares: float

    @property
    def key(self) -> DriftKey:
        return (self.day, self.policy_version, self.learned_version, self.arm)


def _as_date(day: Any) -> date:
    return date.fromisoformat(day) if isinstance(day, str) else day


def _version(value: Any) -> int | None:
    return None if value is None else int(value)


def _cell_order(cell: DriftCell) -> tuple[Any, ...]:
    return (cell.day, cell.policy_version or 0, cell.learned_version or 0, cell.arm)


# ------------------------------------------------------------------------------ the log (reference)


def log_drift_cells(conn: Connection, compiled: CompiledExperiment, *, include_machine: bool = False
                    ) -> tuple[DriftCell, ...]:
    """Every drift cell of the version computed from the log: the decisions counted per cell, and the
    rewards of those with attributed outcomes summed per cell. Ordered by day, policy version, learned
    version, arm."""
    att = attribution(compiled, include_machine=include_machine)
    per_decision = (
        select(*[D.c[g] for g in _GROUP], att.reward.label("r"))
        .select_from(att.sub.join(D, D.c.id == att.sub.c.decision_id))
        .where(att.sub.c.fallback.is_(False))
        .subquery("drift_rewards")
    )
    c = per_decision.c
    sums_query = (
        select(*[c[g] for g in _GROUP], func.sum(c.r).label("s"), func.sum(c.r * c.r).label("ss"))
        .group_by(*[c[g] for g in _GROUP])
    )
    sums = {tuple(row[:4]): (float(row.s or 0.0), float(row.ss or 0.0)) for row in conn.execute(sums_query)}
    counts = (
        select(*[D.c[g] for g in _GROUP], func.count().label("n"))
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version,
               D.c.fallback.is_(False))
        .group_by(*[D.c[g] for g in _GROUP])
    )
    cells = []
    for row in conn.execute(counts):
        s, ss = sums.get(tuple(row[:4]), (0.0, 0.0))
        cells.append(DriftCell(_as_date(row.day), _version(row.policy_version), _version(row.learned_version),
                               int(row.arm), int(row.n), s, ss))
    return tuple(sorted(cells, key=_cell_order))


# ------------------------------------------------------------------------------ the table


def _stored(version: int | None, sentinel: int) -> int:
    return sentinel if version is None else int(version)


def _read(stored: int, sentinel: int) -> int | None:
    return None if stored == sentinel else int(stored)


def stored_drift_cells(conn: Connection, key: str, version: int) -> tuple[DriftCell, ...]:
    """The drift cells of version ``version`` of ``key`` that hold decisions, ordered as
    :func:`log_drift_cells`: the stored cells of learned decisions, and those of decisions not learned
    yet derived from the main cells (module docstring)."""
    query = select(*[T.c[g] for g in _GROUP], *[T.c[s] for s in _SUMS]).where(
        T.c.experiment_key == key, T.c.version == version, T.c.decisions != 0,
        T.c.learned_version != NO_LEARNED_VERSION)
    cells = [  # rows unpacked: a few thousand for a log of a few thousand policy versions
        DriftCell(_as_date(day), _read(policy, NO_POLICY_VERSION), _read(learned, NO_LEARNED_VERSION),
                  int(arm), int(n), float(s), float(ss))
        for day, policy, learned, arm, n, s, ss in conn.execute(query).all()
    ]
    # not learned yet = every learnable decision of (day, policy version, arm), from the main cells,
    # less those learned
    learned_sums: dict[tuple[Any, ...], list[float]] = {}
    for c in cells:
        sums = learned_sums.setdefault((c.day, c.policy_version, c.arm), [0, 0.0, 0.0])
        sums[0] += c.decisions
        sums[1] += c.reward_sum
        sums[2] += c.reward_sum_squares
    keys = (R.c.day, R.c.policy_version, R.c.arm)
    summed = [func.sum(R.c[c]) for c in _SUMS]  # the main cells' columns of the same names
    totals = (select(*keys, *summed)
              .where(R.c.experiment_key == key, R.c.version == version, R.c.fallback.is_(False))
              .group_by(*keys))
    for day, policy, arm, n, s, ss in conn.execute(totals).all():
        day, policy, arm = _as_date(day), _read(policy, NO_POLICY_VERSION), int(arm)
        done_n, done_s, done_ss = learned_sums.get((day, policy, arm), (0, 0.0, 0.0))
        if int(n) - done_n:
            cells.append(DriftCell(day, policy, None, arm, int(n) - done_n, float(s) - done_s,
                                   float(ss) - done_ss))
    return tuple(sorted(cells, key=_cell_order))


def add_drift_changes(conn: Connection, changes: VersionDriftChanges) -> None:
    """Add each version's drift cell changes (made when missing), rows in key order; the changes of
    cells of decisions not learned yet are dropped (those cells are derived, not stored)."""
    rows = []
    for key, version in sorted(changes):
        for (day, policy, learned, arm), change in changes[(key, version)].items():
            if learned is not None and change.changed:
                rows.append({
                    "experiment_key": key, "version": version, "day": day,
                    "policy_version": _stored(policy, NO_POLICY_VERSION),
                    "learned_version": _stored(learned, NO_LEARNED_VERSION), "arm": arm,
                    "decisions": change.decisions, "reward_sum": change.reward_sum,
                    "reward_sum_squares": change.reward_sum_squares,
                })
    rows.sort(key=lambda r: tuple(r[c] for c in ("experiment_key", "version", *_GROUP)))
    _upsert(conn, T, rows, _SUMS)


# ------------------------------------------------------------------------------ what changes a cell


def drift_reward_changes(alike: Mapping[tuple[tuple[Any, ...], int | None, float, float], int]
                         ) -> dict[DriftKey, DriftChange]:
    """The drift cells' change from decisions' rewards going from one value to another (0: no attributed
    event), given as how many decisions ``(cell, learned version, before, after)`` counts (decisions
    changing alike, added at once).

    ``cell``: the decision's rollup cell key ``(fallback, reason, arm, day, policy_version)``
    (:data:`experiments.store.cells.CellKey`); fallback decisions change nothing (and the cells of
    decisions not learned yet are derived: :func:`add_drift_changes` drops their changes).
    """
    changes: dict[DriftKey, DriftChange] = {}
    for ((fallback, _reason, arm, day, policy), learned, r0, r1), n in alike.items():
        if not fallback:
            add_drift_reward_change(changes, (_as_date(day), policy, learned, int(arm)), r0, r1, n)
    return changes


#: The columns of the rows :func:`record_drift_learned` takes, in order.
LEARNED_COLUMNS = ("id", "experiment_key", "version", "fallback", "day", "policy_version", "learned_version",
                   "arm")


def record_drift_learned(conn: Connection, rows: Sequence[Sequence[Any]], learned_version: int,
                         states: StatesReader) -> None:
    """Move the decisions of ``rows`` (:data:`LEARNED_COLUMNS` first, read after locking them) that are
    learnable and not learned by ``learned_version`` yet, with their current rewards, to the cells of
    ``learned_version``: call it in the learner's transaction, before setting their
    ``learned_version``. ``states`` reads their rewards
    (:func:`experiments.store.rollups.attributed_states`)."""
    version_to_rows: dict[tuple[str, int], list[Sequence[Any]]] = {}
    for row in rows:  # columns after LEARNED_COLUMNS' are the caller's
        key, version, fallback, learned = row[1], row[2], row[3], row[6]
        if not fallback and (learned is None or int(learned) != learned_version):
            version_to_rows.setdefault((key, int(version)), []).append(row)
    changes: VersionDriftChanges = {}
    for (key, version), mine in version_to_rows.items():
        spec = ExperimentSpec.model_validate_json(spec_text(conn, key, version))
        compiled = compile_experiment(spec, version)
        id_to_reward = states(conn, compiled, [r[0] for r in mine])
        # decisions alike in cell and reward (most rewards are 0 or 1) move together
        alike = Counter((r[4], r[5], r[6], r[7], id_to_reward[r[0]][0] if r[0] in id_to_reward else 0.0)
                        for r in mine)
        cells = changes.setdefault((key, version), {})
        for (day, policy, learned, arm, reward), n in alike.items():
            day, policy, arm = _as_date(day), _version(policy), int(arm)
            move_drift_decision(cells, (day, policy, _version(learned), arm),
                                (day, policy, learned_version, arm), reward, n)
    add_drift_changes(conn, changes)


# ------------------------------------------------------------------------------ rebuild and verify


def rebuild_drift_rollups(conn: Connection, compiled: CompiledExperiment) -> None:
    """Replace the version's drift rollups by those computed from the log (no other writer meanwhile)."""
    key, version = compiled.spec.key, compiled.version
    conn.execute(delete(T).where(T.c.experiment_key == key, T.c.version == version))
    cells = {c.key: DriftChange(c.decisions, c.reward_sum, c.reward_sum_squares)
             for c in log_drift_cells(conn, compiled)}
    add_drift_changes(conn, {(key, version): cells})


def compare_drift_cells(stored: Sequence[DriftCell], recomputed: Sequence[DriftCell]) -> list[str]:
    """Each difference between stored drift cells and those recomputed from the log, one line each
    (decisions exactly, reward sums within :func:`experiments.rollup_deltas.within_tolerance`)."""
    lines: list[str] = []
    key_to_stored = {c.key: c for c in stored}
    key_to_log = {c.key: c for c in recomputed}
    for key in sorted(set(key_to_stored) | set(key_to_log), key=lambda k: tuple(map(str, k))):
        day, policy, learned, arm = key
        where = f"drift day={day} policy_version={policy} learned_version={learned} arm={arm}"
        a, b = key_to_stored.get(key), key_to_log.get(key)
        for name in _SUMS:
            x = 0 if a is None else getattr(a, name)
            y = 0 if b is None else getattr(b, name)
            same = x == y if name == "decisions" else within_tolerance(x, y)
            if not same:
                lines.append(f"{where}: {name} rollup {x!r} != log {y!r}")
    return lines


def verify_drift_rollups(conn: Connection, compiled: CompiledExperiment) -> list[str]:
    """:func:`compare_drift_cells` of the version's stored drift cells and the log's."""
    return compare_drift_cells(stored_drift_cells(conn, compiled.spec.key, compiled.version),
                               log_drift_cells(conn, compiled))
