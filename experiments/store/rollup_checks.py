"""The rollups rebuilt from the log in full and compared with it (``sendlab verify``): the cells and
outcome counts (:mod:`experiments.store.rollups`), the breakdowns
(:mod:`experiments.store.breakdown_checks`) and the drift monitor's sums
(:mod:`experiments.store.drift_rollups`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from experiments.assignment import CompiledExperiment, compile_experiment
from experiments.rollup_deltas import CellChange, within_tolerance
from experiments.spec import ExperimentSpec
from experiments.store import drift_rollups as drift
from experiments.store.breakdown_checks import compare_breakdowns, rebuild_breakdowns
from experiments.store.cells import CellKey, RollupCell
from experiments.store.repository import Repository, consistent_read, spec_text
from experiments.store.rollup_tables import (
    add_cell_changes,
    add_outcome_counts,
    delete_rollups,
    stored_cells,
    stored_outcome_counts,
)
from experiments.store.summaries import log_cells, log_outcome_counts
from experiments.store.tables import versions_table as V


def rebuild_rollups(conn: Connection, compiled: CompiledExperiment) -> None:
    """Replace the version's rollups by those computed from the log in full (a store upgraded from
    before rollups, a log loaded in bulk). Run it where no other writer adds to the version meanwhile
    (the migration's transaction, a benchmark's load)."""
    key, version = compiled.spec.key, compiled.version
    delete_rollups(conn, key, version)
    changes: dict[CellKey, CellChange] = {}
    for cell in log_cells(conn, compiled):
        changes[cell.key] = CellChange(
            cell.decisions, cell.explored, cell.learned, cell.reward_sum, cell.reward_sum_squares,
            cell.reward_sum_cubes, dict(cell.event_counts),
        )
    add_cell_changes(conn, key, version, changes)
    rebuild_breakdowns(conn, compiled)
    add_outcome_counts(conn, key, version, log_outcome_counts(conn, compiled))
    drift.rebuild_drift_rollups(conn, compiled)


def rebuild_all_rollups(conn: Connection) -> int:
    """:func:`rebuild_rollups` for every stored spec version of every experiment, in key and version
    order: the one way to bring a store's rollups to its log (the migration's backfill, a log loaded
    in bulk). Returns the versions rebuilt."""
    versions = conn.execute(select(V.c.key, V.c.version, V.c.spec).order_by(V.c.key, V.c.version)).all()
    for key, version, spec in versions:
        compiled = compile_experiment(ExperimentSpec.model_validate_json(spec), int(version))
        assert compiled.spec.key == key
        rebuild_rollups(conn, compiled)
    return len(versions)


def _cell_fields(cell: RollupCell) -> dict[str, Any]:
    return {"decisions": cell.decisions, "explored": cell.explored, "learned": cell.learned,
            **{f"events[{t}]": n for t, n in cell.event_counts.items() if n}}


def compare_rollups(
    stored: Sequence[RollupCell],
    recomputed: Sequence[RollupCell],
    stored_counts: Mapping[tuple[str, str], int],
    recomputed_counts: Mapping[tuple[str, str], int],
) -> list[str]:
    """Each difference between the stored rollups and those recomputed from the log, one line each
    (empty: equal). Counts must be equal; reward sums equal within the relative tolerance of
    :func:`experiments.rollup_deltas.within_tolerance`."""
    lines: list[str] = []
    key_to_stored = {c.key: c for c in stored}
    key_to_log = {c.key: c for c in recomputed}
    for key in sorted(set(key_to_stored) | set(key_to_log), key=lambda k: tuple(map(str, k))):
        fallback, reason, arm, day, policy = key
        where = f"fallback={fallback} reason={reason} arm={arm} day={day} policy_version={policy}"
        a, b = key_to_stored.get(key), key_to_log.get(key)
        a_fields = {} if a is None else _cell_fields(a)
        b_fields = {} if b is None else _cell_fields(b)
        for name in sorted(set(a_fields) | set(b_fields)):
            if a_fields.get(name, 0) != b_fields.get(name, 0):
                lines.append(f"{where}: {name} rollup {a_fields.get(name, 0)} != log {b_fields.get(name, 0)}")
        for name in ("reward_sum", "reward_sum_squares", "reward_sum_cubes"):
            x = 0.0 if a is None else getattr(a, name)
            y = 0.0 if b is None else getattr(b, name)
            if not within_tolerance(x, y):
                lines.append(f"{where}: {name} rollup {x!r} != log {y!r}")
    for kind, t in sorted(set(stored_counts) | set(recomputed_counts)):
        x, y = stored_counts.get((kind, t), 0), recomputed_counts.get((kind, t), 0)
        if x != y:
            lines.append(f"outcomes {kind} type={t}: rollup {x} != log {y}")
    return lines


def verify_rollups(conn: Connection, compiled: CompiledExperiment) -> list[str]:
    """:func:`compare_rollups` of the version's stored rollups and the log, then
    :func:`experiments.store.breakdown_checks.compare_breakdowns`, read on ``conn`` (use a consistent
    read: :func:`experiments.store.repository.consistent_read`)."""
    key, version = compiled.spec.key, compiled.version
    return compare_rollups(
        stored_cells(conn, key, version), log_cells(conn, compiled),
        stored_outcome_counts(conn, key, version), log_outcome_counts(conn, compiled),
    ) + compare_breakdowns(conn, compiled) + drift.verify_drift_rollups(conn, compiled)


@dataclass(frozen=True)
class VersionCheck:
    """The rollups of one spec version compared with its log: its cells, decisions and differences
    (empty: equal)."""

    version: int
    cells: int
    decisions: int
    differences: list[str]


def verify_experiment(engine: Engine, key: str) -> list[VersionCheck]:
    """:func:`verify_rollups` for every spec version of experiment ``key``, oldest first, each version on
    one consistent read; :class:`experiments.errors.NotFound` when there is no such experiment."""
    with engine.connect() as conn:
        current = Repository.experiment(conn, key).version
    checks = []
    for version in range(1, current + 1):
        with consistent_read(engine) as conn:
            compiled = compile_experiment(ExperimentSpec.model_validate_json(spec_text(conn, key, version)),
                                          version)
            cells = stored_cells(conn, key, version)
            checks.append(VersionCheck(version, len(cells), sum(c.decisions for c in cells),
                                       verify_rollups(conn, compiled)))
    return checks
