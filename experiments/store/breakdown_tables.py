"""The stored breakdown rollups (``rollup_adaptive``, ``rollup_segments``, ``rollup_covariates``): add a
write's changes to them, and read them as the summary types the analysis takes, equal to what the log's
full scans give (:func:`experiments.adaptive_reader.log_adaptive_sums`,
:func:`experiments.store.segments.segment_arm_stats`, :func:`experiments.store.segments.covariate_arm_stats`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from analysis.adaptive_log import ArmBatchSums
from analysis.stats import RegressionStats, SampleStats
from experiments.breakdown_deltas import ADAPTIVE, ALL, COVARIATES, SEGMENTS, BreakdownChange
from experiments.limits import MAX_SEGMENTS
from experiments.store.cells import GroupStats
from experiments.store.rollup_tables import _read_policy, _upsert
from experiments.store.segments import CovariateStats
from experiments.store.tables import rollup_adaptive_table as A
from experiments.store.tables import rollup_covariates_table as V
from experiments.store.tables import rollup_overflow_table as O
from experiments.store.tables import rollup_segments_table as S

#: Per (policy version, arm), the :class:`ArmBatchSums` of the reward and of each event type, in order.
AdaptiveSums = dict[tuple[int | None, int], list[ArmBatchSums]]
_KEYS = {
    ADAPTIVE: ("policy_version", "arm", "metric"),
    SEGMENTS: ("attribute", "has_value", "segment", "arm", "type"),
    COVARIATES: ("attribute", "arm"),
}
_SUMS = {
    ADAPTIVE: ("decisions", "inv_p_sum", "inv_p2_sum", "value_sum", "value_sum_squares", "w_value_sum",
               "w2_value_sum", "w2_value_squares_sum"),
    SEGMENTS: ("decisions", "reward_sum", "reward_sum_squares", "reward_sum_cubes"),
    COVARIATES: ("decisions", "n", "sum_x", "sum_x_squares", "sum_y", "sum_y_squares", "sum_xy", "magnitude"),
}
_TABLES = {ADAPTIVE: A, SEGMENTS: S, COVARIATES: V}


def add_breakdown_change(conn: Connection, key: str, version: int, change: BreakdownChange) -> None:
    """Add one write's change of version ``version`` of ``key`` to the three tables (in that order, each
    sorted by key; rows made when missing). Segment attributes past :data:`MAX_SEGMENTS` values are
    marked overflowed and no longer kept (:func:`overflowed_attributes`)."""
    overflowed = overflowed_attributes(conn, key, version) if change.sums[SEGMENTS] else set()
    grown: set[str] = set()  # attributes a segment of which gains decisions (an outcome's change adds
    # decisions to the rows of its event type only, never to those of all types that overflow counts)
    emptied: set[tuple[str, str]] = set()  # segments decisions left (contexts dropped)
    for table, sql_table in _TABLES.items():
        rows = []
        for row_key, sums in change.rows(table):
            if table == SEGMENTS:
                if row_key[0] in overflowed:
                    continue
                if row_key[4] == ALL and sums.get("decisions", 0) > 0:
                    grown.add(row_key[0])
                if row_key[1] and sums.get("decisions", 0) < 0:
                    emptied.add((row_key[0], row_key[2]))
            row = {"experiment_key": key, "version": version, **dict(zip(_KEYS[table], row_key, strict=True))}
            if table == SEGMENTS:
                row["segment_key"] = segment_key(row["segment"])
            row.update({c: sums.get(c, 0) for c in _SUMS[table]})
            if table == ADAPTIVE:
                row["min_propensity"] = change.min_propensity.get(row_key[:2]) if row_key[2] == ALL else None
            rows.append(row)
        _upsert(conn, sql_table, rows, _SUMS[table], ("min_propensity",) if table == ADAPTIVE else ())
        if table == SEGMENTS:
            _delete_empty(conn, key, version, emptied)
            if grown:
                _mark_overflows(conn, key, version, grown)


def _delete_empty(conn: Connection, key: str, version: int, segments: set[tuple[str, str]]) -> None:
    """Delete the rows of the listed (attribute, segment text) left without decisions: a segment's text
    came from a context, and an erased context leaves no trace."""
    if segments:
        stmt = delete(S).where(
            *_where(S, key, version), S.c.attribute == bindparam("a"), S.c.has_value.is_(True),
            S.c.segment_key == bindparam("s"), S.c.decisions == 0,
        )
        conn.execute(stmt, [{"a": a, "s": segment_key(t)} for a, t in sorted(segments)])


def segment_key(text: str) -> str:
    """The key of a segment's text in ``rollup_segments``: 32 hex digits of its BLAKE2b hash."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _mark_overflows(conn: Connection, key: str, version: int, attributes: set[str]) -> None:
    """Mark the attributes with more than :data:`MAX_SEGMENTS` values (with decisions) overflowed, and
    delete their segment rows."""
    query = (
        select(S.c.attribute).where(*_where(S, key, version), S.c.attribute.in_(sorted(attributes)),
                                    S.c.has_value.is_(True), S.c.type == ALL, S.c.decisions > 0)
        .group_by(S.c.attribute).having(func.count(func.distinct(S.c.segment)) > MAX_SEGMENTS)
    )
    for attribute in conn.execute(query).scalars().all():
        mark_overflowed(conn, key, version, attribute)


def mark_overflowed(conn: Connection, key: str, version: int, attribute: str) -> None:
    """Stop keeping the segments of ``attribute`` (too many values): mark it and delete its rows."""
    row = {"experiment_key": key, "version": version, "attribute": attribute}
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(dialect.insert(O).values(row).on_conflict_do_nothing())
    conn.execute(delete(S).where(*_where(S, key, version), S.c.attribute == attribute))


def overflowed_attributes(conn: Connection, key: str, version: int) -> set[str]:
    """The version's segment attributes marked as having too many values: their segments are not kept
    (results by them read the log, :func:`experiments.store.segments.segment_arm_stats`)."""
    return set(conn.execute(select(O.c.attribute).where(*_where(O, key, version))).scalars())


def _where(table: Any, key: str, version: int) -> tuple[Any, ...]:
    return (table.c.experiment_key == key, table.c.version == version)


def stored_adaptive_sums(conn: Connection, key: str, version: int, types: Sequence[str]) -> AdaptiveSums:
    """Per (policy version, arm) with decisions, the sums of the reward and of each of ``types``."""
    rows = conn.execute(select(A).where(*_where(A, key, version))).mappings().all()
    groups = {(r["policy_version"], r["arm"]): r for r in rows if r["metric"] == ALL and r["decisions"]}
    metric_rows = {(r["policy_version"], r["arm"], r["metric"]): r for r in rows}
    out: AdaptiveSums = {}
    for (policy, arm), g in sorted(groups.items()):
        sums = []
        for metric in (ALL, *types):
            m = metric_rows.get((policy, arm, metric))
            sums.append(ArmBatchSums(
                n=int(g["decisions"]), w_sum=float(g["inv_p_sum"]), w2_sum=float(g["inv_p2_sum"]),
                min_propensity=float(g["min_propensity"]),
                **{name: 0.0 if m is None else float(m[column]) for name, column in _METRIC_FIELDS},
            ))
        out[(_read_policy(policy), int(arm))] = sums
    return out


#: Per (batch, arm) field of :class:`analysis.adaptive_log.LogArrays`, the stored column of an
#: ``rollup_adaptive`` row: the decisions' side (from the metric ``""`` row) and the metric's side.
ADAPTIVE_DECISION_COLUMNS = (("n", "decisions"), ("w_sum", "inv_p_sum"), ("w2_sum", "inv_p2_sum"),
                             ("min_propensity", "min_propensity"))


def stored_adaptive_arrays(conn: Connection, key: str, version: int, types: Sequence[str], n_arms: int
                           ) -> tuple[list[int | None], list[dict[str, np.ndarray]]]:
    """:func:`stored_adaptive_sums` as arrays: the policy versions with decisions (oldest first, the
    decisions without a policy version first) and, for the reward then each of ``types``, the fields of
    :class:`analysis.adaptive_log.LogArrays` as arrays of shape (versions, ``n_arms``) (an arm without
    decisions in a version: zeros, and a smallest propensity of 1). One query; no row object per
    (policy version, arm)."""
    columns = [A.c.policy_version, A.c.arm, A.c.metric,
               *[A.c[c] for _, c in ADAPTIVE_DECISION_COLUMNS],
               *[A.c[c] for _, c in _METRIC_FIELDS]]
    rows = conn.execute(select(*columns).where(*_where(A, key, version))).all()
    metrics = (ALL, *types)
    if not rows:
        return [], [_empty_arrays(0, n_arms) for _ in metrics]
    policy, arm, metric = (list(c) for c in zip(*(row[:3] for row in rows), strict=True))
    numbers = np.array([row[3:] for row in rows], dtype=np.float64)  # the sums, a column each
    policy_a, arm_a = np.array(policy, dtype=np.int64), np.array(arm, dtype=np.int64)
    metric_index = {m: i for i, m in enumerate(metrics)}
    which = np.array([metric_index.get(m, -1) for m in metric], dtype=np.int64)
    groups = (which == 0) & (numbers[:, 0] > 0)
    stored_versions = np.unique(policy_a[groups])  # ascending: NO_POLICY_VERSION (-1) first
    if not len(stored_versions):
        return [], [_empty_arrays(0, n_arms) for _ in metrics]
    batch = np.minimum(np.searchsorted(stored_versions, policy_a), len(stored_versions) - 1)
    has_group = np.zeros((len(stored_versions), n_arms), dtype=bool)
    has_group[batch[groups], arm_a[groups]] = True
    decision_side = {}
    for j, (field, _) in enumerate(ADAPTIVE_DECISION_COLUMNS):
        values = np.full((len(stored_versions), n_arms), 1.0 if field == "min_propensity" else 0.0)
        values[batch[groups], arm_a[groups]] = numbers[groups, j]
        decision_side[field] = values
    out = []
    for i in range(len(metrics)):
        mine = (which == i) & (stored_versions[batch] == policy_a)
        mine[mine] &= has_group[batch[mine], arm_a[mine]]
        arrays = {**decision_side}
        for j, (field, _) in enumerate(_METRIC_FIELDS):
            values = np.zeros((len(stored_versions), n_arms))
            values[batch[mine], arm_a[mine]] = numbers[mine, len(ADAPTIVE_DECISION_COLUMNS) + j]
            arrays[field] = values
        out.append(arrays)
    return [_read_policy(int(v)) for v in stored_versions], out


def _empty_arrays(batches: int, n_arms: int) -> dict[str, np.ndarray]:
    names = [f for f, _ in ADAPTIVE_DECISION_COLUMNS] + [f for f, _ in _METRIC_FIELDS]
    return {name: np.zeros((batches, n_arms)) for name in names}


_METRIC_FIELDS = (
    ("reward_sum", "value_sum"), ("reward_sum_squares", "value_sum_squares"), ("w_reward_sum", "w_value_sum"),
    ("w2_reward_sum", "w2_value_sum"), ("w2_reward_squares_sum", "w2_value_squares_sum"),
)


def stored_segment_stats(conn: Connection, key: str, version: int, attribute: str, types: Sequence[str]
                         ) -> dict[tuple[str | None, int], GroupStats] | None:
    """Per (segment text or None, arm) with decisions, the :class:`GroupStats` of the attribute's
    segments (counts of each of ``types``); None when the attribute overflowed (not kept)."""
    if attribute in overflowed_attributes(conn, key, version):
        return None
    query = select(S).where(*_where(S, key, version), S.c.attribute == attribute)
    group_to_counts: dict[tuple[str | None, int], dict[str, int]] = {}
    group_to_reward: dict[tuple[str | None, int], SampleStats] = {}
    for r in conn.execute(query).mappings():
        group = (str(r["segment"]) if r["has_value"] else None, int(r["arm"]))
        if r["type"] == ALL:
            group_to_reward[group] = SampleStats(int(r["decisions"]), float(r["reward_sum"]),
                                                 float(r["reward_sum_squares"]), float(r["reward_sum_cubes"]))
        else:
            group_to_counts.setdefault(group, {})[str(r["type"])] = int(r["decisions"])
    return {
        group: GroupStats(reward, {t: group_to_counts.get(group, {}).get(t, 0) for t in types})
        for group, reward in group_to_reward.items() if reward.n
    }


def stored_covariate_stats(conn: Connection, key: str, version: int, attribute: str
                           ) -> dict[int, CovariateStats]:
    """Per arm with decisions, the :class:`CovariateStats` of the attribute."""
    return {arm: stats for arm, (stats, _) in stored_covariate_rows(conn, key, version, attribute).items()}


def stored_covariate_rows(conn: Connection, key: str, version: int, attribute: str
                          ) -> dict[int, tuple[CovariateStats, float]]:
    """:func:`stored_covariate_stats` with each arm's rounding scale (its ``magnitude``)."""
    query = select(V).where(*_where(V, key, version), V.c.attribute == attribute).order_by(V.c.arm)
    return {
        int(r["arm"]): (CovariateStats(int(r["decisions"]), RegressionStats(
            int(r["n"]), float(r["sum_x"]), float(r["sum_y"]), float(r["sum_x_squares"]),
            float(r["sum_y_squares"]), float(r["sum_xy"]),
        )), float(r["magnitude"]))
        for r in conn.execute(query).mappings() if r["decisions"]
    }


def delete_breakdowns(conn: Connection, key: str, version: int) -> None:
    """Delete the version's breakdown rows and overflow marks (before storing them anew)."""
    for table in (*_TABLES.values(), O):
        conn.execute(delete(table).where(*_where(table, key, version)))
