"""The breakdown rollups rebuilt from the log and compared with it: the reference of each is the full
scan its reader used before rollups (:func:`experiments.adaptive_reader.log_adaptive_sums`,
:func:`experiments.store.segments.segment_arm_stats`, :func:`experiments.store.segments.covariate_arm_stats`),
so there is one way to compute each from the log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy.engine import Connection

from experiments.adaptive_reader import log_adaptive_sums
from experiments.assignment import CompiledExperiment
from experiments.breakdown_deltas import ADAPTIVE, ALL, COVARIATES, SEGMENTS, BreakdownChange
from experiments.limits import MAX_SEGMENTS
from experiments.rollup_deltas import within_tolerance
from experiments.store.breakdown_tables import (
    add_breakdown_change,
    delete_breakdowns,
    mark_overflowed,
    stored_adaptive_sums,
    stored_covariate_rows,
    stored_segment_stats,
)
from experiments.store.segment_values import covariate_attributes, segment_attributes
from experiments.store.segments import covariate_arm_stats, segment_arm_stats
from experiments.store.summaries import event_types
from experiments.store.tables import NO_POLICY_VERSION

_ARM_SUMS = ("reward_sum", "reward_sum_squares", "w_reward_sum", "w2_reward_sum", "w2_reward_squares_sum")
_WEIGHTED = ("value_sum", "value_sum_squares", "w_value_sum", "w2_value_sum", "w2_value_squares_sum")


def log_breakdowns(conn: Connection, compiled: CompiledExperiment) -> BreakdownChange:
    """The version's breakdown rows computed from the log in full, as one change to empty tables (the
    segment attributes with more than :data:`MAX_SEGMENTS` values in ``overflowed``, not kept)."""
    types = event_types(compiled)
    change = BreakdownChange()
    adaptive = change.sums[ADAPTIVE]
    for (policy, arm), per_metric in log_adaptive_sums(conn, compiled).items():
        stored_policy = NO_POLICY_VERSION if policy is None else policy
        first = per_metric[0]
        change.min_propensity[(stored_policy, arm)] = first.min_propensity
        adaptive[(stored_policy, arm, ALL)] = {
            "decisions": first.n, "inv_p_sum": first.w_sum, "inv_p2_sum": first.w2_sum,
            **{c: getattr(first, f) for c, f in zip(_WEIGHTED, _ARM_SUMS, strict=True)},
        }
        for t, sums in zip(types, per_metric[1:], strict=True):
            adaptive[(stored_policy, arm, t)] = {c: getattr(sums, f) for c, f in zip(_WEIGHTED, _ARM_SUMS,
                                                                                     strict=True)}
    for attribute in segment_attributes(compiled):
        groups = segment_arm_stats(conn, compiled, attribute)
        if len({segment for segment, _ in groups if segment is not None}) > MAX_SEGMENTS:
            change.overflowed.add(attribute)
            continue
        for (segment, arm), stats in groups.items():
            key = (attribute, segment is not None, "" if segment is None else segment, arm)
            r = stats.reward
            change.sums[SEGMENTS][(*key, ALL)] = {
                "decisions": r.n, "reward_sum": r.sum, "reward_sum_squares": r.sum_squares,
                "reward_sum_cubes": r.sum_cubes,
            }
            for t, n in stats.event_counts.items():
                change.sums[SEGMENTS][(*key, t)] = {"decisions": n}
    for attribute in covariate_attributes(compiled):
        for arm, cov in covariate_arm_stats(conn, compiled, attribute).items():
            xy = cov.xy
            change.sums[COVARIATES][(attribute, arm)] = {
                "decisions": cov.decisions, "n": xy.n, "sum_x": xy.sum_x, "sum_x_squares": xy.sum_x_squares,
                "sum_y": xy.sum_y, "sum_y_squares": xy.sum_y_squares, "sum_xy": xy.sum_xy,
                "magnitude": (abs(xy.sum_x) + xy.sum_x_squares + abs(xy.sum_y) + xy.sum_y_squares
                              + abs(xy.sum_xy)),
            }
    return change


def rebuild_breakdowns(conn: Connection, compiled: CompiledExperiment) -> None:
    """Replace the version's breakdown rows by :func:`log_breakdowns` (no other writer meanwhile)."""
    key, version = compiled.spec.key, compiled.version
    delete_breakdowns(conn, key, version)
    change = log_breakdowns(conn, compiled)
    for attribute in sorted(change.overflowed):
        mark_overflowed(conn, key, version, attribute)
    add_breakdown_change(conn, key, version, change)


def _compare(where: str, a: Mapping[str, Any], b: Mapping[str, Any], lines: list[str], scale: float = 0.0
             ) -> None:
    """Append a line per field that differs: integers exactly, floats within the tolerance (relative
    to ``scale`` too: the magnitude of what was summed)."""
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name, 0), b.get(name, 0)
        equal = x == y if isinstance(x, int) and isinstance(y, int) else within_tolerance(
            float(x), float(y), scale)
        if not equal:
            lines.append(f"{where}: {name} rollup {x!r} != log {y!r}")


def compare_breakdowns(conn: Connection, compiled: CompiledExperiment) -> list[str]:
    """Each difference between the version's stored breakdowns and the log's, one line each."""
    key, version, types = compiled.spec.key, compiled.version, event_types(compiled)
    lines: list[str] = []
    stored = stored_adaptive_sums(conn, key, version, types)
    logged = log_adaptive_sums(conn, compiled)
    for group in sorted(set(stored) | set(logged), key=lambda g: (g[0] is not None, g[0] or 0, g[1])):
        for metric, a, b in zip(["reward", *types], stored.get(group, [None] * (len(types) + 1)),
                                logged.get(group, [None] * (len(types) + 1)), strict=True):
            _compare(f"adaptive policy_version={group[0]} arm={group[1]} metric={metric}",
                     {} if a is None else asdict(a), {} if b is None else asdict(b), lines)
    for attribute in segment_attributes(compiled):
        a_groups = stored_segment_stats(conn, key, version, attribute, types)
        if a_groups is None:  # overflowed: not kept, results by it read the log
            continue
        b_groups = segment_arm_stats(conn, compiled, attribute)
        order = sorted(set(a_groups) | set(b_groups), key=lambda g: (g[0] is not None, g[0] or "", g[1]))
        for group in order:
            a, b = a_groups.get(group), b_groups.get(group)
            _compare(f"segment {attribute}={group[0]!r} arm={group[1]}",
                     {} if a is None else _group_fields(a), {} if b is None else _group_fields(b), lines)
    for attribute in covariate_attributes(compiled):
        a_arms = stored_covariate_rows(conn, key, version, attribute)
        b_arms = covariate_arm_stats(conn, compiled, attribute)
        for arm in sorted(set(a_arms) | set(b_arms)):
            a, scale = a_arms.get(arm, (None, 0.0))
            b = b_arms.get(arm)
            _compare(f"covariate {attribute} arm={arm}", {} if a is None else _covariate_fields(a),
                     {} if b is None else _covariate_fields(b), lines, scale)
    return lines


def _group_fields(stats: Any) -> dict[str, Any]:
    r = stats.reward
    return {"decisions": r.n, "reward_sum": r.sum, "reward_sum_squares": r.sum_squares,
            "reward_sum_cubes": r.sum_cubes, **{f"events[{t}]": n for t, n in stats.event_counts.items()}}


def _covariate_fields(cov: Any) -> dict[str, Any]:
    return {"decisions": cov.decisions, **asdict(cov.xy)}
