"""What the adaptive analysis of a bandit or contextual experiment reads from the store.

Two reads, each one query written here:

- :func:`read_adaptive_log`: per (policy version, arm) of the learnable decisions, the inverse-propensity
  sums of :class:`analysis.adaptive_log.ArmBatchSums`, for the reward and for every event type of the
  spec (an event is a 0/1 reward: its rate). They are read from the rollups
  (:mod:`experiments.store.breakdown_rollups`, kept in the write transactions); computed from the log in
  full (:func:`log_adaptive_sums`, the rollups' reference) with machine events included. There, the
  decisions' side (``COUNT``, ``SUM(1/p)``,
  ``SUM(1/p^2)``, ``MIN(p)``) is one ``GROUP BY`` over the decisions' covering index
  ``ix_decisions_adaptive`` (:func:`decision_sums`); the rewards' side is one
  ``GROUP BY`` over the attributed outcomes joined to their decisions (decisions without outcomes add
  nothing to reward sums). No row leaves the database.
- :func:`read_decision_rows`: for a contextual design, the decisions themselves (policy version, arm,
  propensity, context hashed to a few numbers, reward and event flags), for the cross-fitted AIPW of
  :mod:`analysis.adaptive_aipw`. Read in chunks into preallocated arrays, and only up to
  :data:`MAX_AIPW_ROWS` decisions: above that the sums of the first read are used (bounded memory).

Fallback decisions (holdout, ineligible, paused) are not the policy's and are left out of both.
Batches are policy versions, oldest first (decisions made before any snapshot, version NULL, first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Float, Select, cast, func, literal, select
from sqlalchemy.engine import Connection

from analysis.adaptive_aipw import DecisionRows
from analysis.adaptive_log import EMPTY_SUMS, ArmBatchSums, ArrayLog, LogArrays, PolicyBatch
from bandit.features import FeatureHasher
from bandit.options import default_min_share
from experiments.assignment import CompiledExperiment
from experiments.limits import MAX_CONTEXT_NUMBER
from experiments.store import decisions_table as D
from experiments.store.breakdown_tables import AdaptiveSums, stored_adaptive_arrays
from experiments.store.summaries import attribution, event_types

#: The metric name of the spec's reward (the other metrics are event types).
REWARD = "reward"
#: Contextual designs: the most decisions read as rows for the cross-fitted AIPW.
MAX_AIPW_ROWS = 50_000
#: Width of the hashed context the AIPW reward model regresses on (intercept included).
AIPW_FEATURE_DIM = 32
#: Rows fetched from the database at a time by :func:`read_decision_rows`.
CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class AdaptiveLog:
    """The log of a learning policy as sums, per metric.

    ``arms`` are the arm labels in arm (combination) order: the variant id for a one-slot design,
    ``slot=variant,slot=variant`` otherwise; ``arm_to_variants`` gives each arm's variant per slot.
    ``metric_to_log`` holds, for ``"reward"`` and each event type, the batches oldest first.
    """

    arms: tuple[str, ...]
    arm_to_variants: dict[str, dict[str, str]]
    metric_to_log: dict[str, Sequence[PolicyBatch]]
    decisions: int


def arm_labels(compiled: CompiledExperiment) -> tuple[str, ...]:
    """Each arm's label, in arm order (see :class:`AdaptiveLog`)."""
    if len(compiled.slot_names) == 1:
        return tuple(compiled.arm_variants(a)[compiled.slot_names[0]] for a in range(compiled.n_arms))
    return tuple(
        ",".join(f"{s}={v}" for s, v in compiled.arm_variants(a).items()) for a in range(compiled.n_arms)
    )


def _metric_names(types: list[str]) -> list[str]:
    return [REWARD, *types]


def decision_sums(compiled: CompiledExperiment) -> Select[Any]:
    """The decisions' side of the log: per (policy version, arm) of the learnable decisions, ``COUNT``,
    ``SUM(1/p)``, ``SUM(1/p^2)`` and ``MIN(p)``, read from the covering index ``ix_decisions_adaptive``
    in its order."""
    one = literal(1.0, Float)
    p = cast(D.c.propensity, Float)
    return (
        select(D.c.policy_version, D.c.arm, func.count().label("n"), func.sum(one / p).label("w"),
               func.sum(one / (p * p)).label("w2"), func.min(p).label("min_p"))
        .where(D.c.experiment_key == compiled.spec.key, D.c.version == compiled.version,
               D.c.fallback.is_(False))
        .group_by(D.c.policy_version, D.c.arm)
    )


def log_adaptive_sums(
    conn: Connection, compiled: CompiledExperiment, *, include_machine: bool = False
) -> AdaptiveSums:
    """The per-(policy version, arm) sums of every metric from the log in full (module docstring): two
    ``GROUP BY``. The reference the rollups (:func:`stored_adaptive_sums`) are kept equal to, and what
    ``include_machine`` reads."""
    counts = decision_sums(compiled)
    p = cast(D.c.propensity, Float)
    att = attribution(compiled, include_machine=include_machine)
    per_decision = (
        select(D.c.policy_version, D.c.arm, p.label("p"), att.reward.label("r"),
               *[flag.label(f"f{j}") for j, flag in enumerate(att.flags)])
        .select_from(att.sub.join(D, D.c.id == att.sub.c.decision_id))
        .where(att.sub.c.fallback.is_(False))
        .subquery("adaptive_rewards")
    )
    c = per_decision.c
    columns = []
    for name, value in [("r", c.r), *[(f"f{j}", c[f"f{j}"]) for j in range(len(att.types))]]:
        columns += [
            func.sum(value).label(f"{name}_s"),
            func.sum(value * value).label(f"{name}_ss"),
            func.sum(value / c.p).label(f"{name}_w"),
            func.sum(value / (c.p * c.p)).label(f"{name}_w2"),
            func.sum(value * value / (c.p * c.p)).label(f"{name}_w2s"),
        ]
    sums_query = select(c.policy_version, c.arm, *columns).group_by(c.policy_version, c.arm)
    sums = {(row.policy_version, int(row.arm)): row._mapping for row in conn.execute(sums_query)}
    keys = ["r"] + [f"f{j}" for j in range(len(att.types))]
    out: AdaptiveSums = {}
    for row in conn.execute(counts):
        version = None if row.policy_version is None else int(row.policy_version)
        m = sums.get((row.policy_version, int(row.arm)))
        per_metric = []
        for key in keys:
            s, ss, w, w2, w2s = (float(m[f"{key}_{x}"] or 0.0) if m is not None else 0.0
                                 for x in ("s", "ss", "w", "w2", "w2s"))
            per_metric.append(ArmBatchSums(
                n=int(row.n), reward_sum=s, reward_sum_squares=ss, w_sum=float(row.w), w_reward_sum=w,
                w2_sum=float(row.w2), w2_reward_sum=w2, w2_reward_squares_sum=w2s,
                min_propensity=float(row.min_p),
            ))
        out[(version, int(row.arm))] = per_metric
    return out


def adaptive_log(compiled: CompiledExperiment, sums: AdaptiveSums) -> AdaptiveLog:
    """The :class:`AdaptiveLog` of per-(policy version, arm) sums (stored or from the log)."""
    labels = arm_labels(compiled)
    metrics = _metric_names(event_types(compiled))
    version_to_arms: dict[int | None, dict[str, list[ArmBatchSums]]] = {}
    for (version, arm), per_metric in sums.items():
        version_to_arms.setdefault(version, {})[labels[arm]] = per_metric
    order = sorted(version_to_arms, key=lambda v: (v is not None, v or 0))
    # every arm in every batch (empty sums where it had no decision), so that the log names all arms
    metric_to_log = {
        metric: [PolicyBatch(v, {arm: version_to_arms[v][arm][i] if arm in version_to_arms[v] else EMPTY_SUMS
                                 for arm in labels})
                 for v in order]
        for i, metric in enumerate(metrics)
    }
    return AdaptiveLog(
        arms=labels,
        arm_to_variants={labels[a]: compiled.arm_variants(a) for a in range(compiled.n_arms)},
        metric_to_log=metric_to_log,
        decisions=sum(per_metric[0].n for per_metric in sums.values()),
    )


def stored_adaptive_log(conn: Connection, compiled: CompiledExperiment) -> AdaptiveLog:
    """The :class:`AdaptiveLog` of the rollups read as arrays
    (:func:`experiments.store.breakdown_tables.stored_adaptive_arrays`): each metric's batches an
    :class:`analysis.adaptive_log.ArrayLog`, equal to :func:`adaptive_log` of
    :func:`experiments.store.breakdown_tables.stored_adaptive_sums`."""
    labels = arm_labels(compiled)
    metrics = _metric_names(event_types(compiled))
    versions, per_metric = stored_adaptive_arrays(conn, compiled.spec.key, compiled.version,
                                                  event_types(compiled), compiled.n_arms)
    decisions = int(per_metric[0]["n"].sum())
    metric_to_log: dict[str, Sequence[PolicyBatch]] = {
        metric: ArrayLog(LogArrays(arms=labels, versions=tuple(versions), **arrays)) if versions else []
        for metric, arrays in zip(metrics, per_metric, strict=True)
    }
    return AdaptiveLog(
        arms=labels,
        arm_to_variants={labels[a]: compiled.arm_variants(a) for a in range(compiled.n_arms)},
        metric_to_log=metric_to_log,
        decisions=decisions,
    )


def read_adaptive_log(
    conn: Connection, compiled: CompiledExperiment, *, include_machine: bool = False
) -> AdaptiveLog:
    """The :class:`AdaptiveLog` of the version: its sums read from the rollups as arrays
    (:func:`stored_adaptive_log`, a few rows per policy version and arm), or with machine events
    included (the rollups leave them out) from the log in full (:func:`log_adaptive_sums`)."""
    if include_machine:
        return adaptive_log(compiled, log_adaptive_sums(conn, compiled, include_machine=True))
    return stored_adaptive_log(conn, compiled)


@dataclass(frozen=True)
class AdaptiveRows:
    """The decisions of a contextual design as :class:`analysis.adaptive_aipw.DecisionRows`, per metric
    (the arrays of batch, arm, propensity and features are shared; only the reward differs)."""

    metric_to_rows: dict[str, DecisionRows]
    #: decisions whose context holds a number beyond :data:`~experiments.limits.MAX_CONTEXT_NUMBER` (logged
    #: before that bound): a reward model of such contexts overflows, so none is fitted
    out_of_range: int = 0


def read_decision_rows(
    conn: Connection, compiled: CompiledExperiment, decisions: int, *, include_machine: bool = False,
    dim: int = AIPW_FEATURE_DIM, chunk_rows: int = CHUNK_ROWS,
) -> AdaptiveRows | None:
    """The learnable decisions as rows for the cross-fitted AIPW; None above :data:`MAX_AIPW_ROWS` or
    without any decision.

    ``decisions`` is the count :func:`read_adaptive_log` found (the arrays are allocated once; rows
    logged since are left out). The context attributes of ``design.context`` are hashed by
    :class:`bandit.features.FeatureHasher` into ``dim`` columns, the intercept column dropped.
    """
    if decisions <= 0 or decisions > MAX_AIPW_ROWS:
        return None
    att = attribution(compiled, include_machine=include_machine)
    spec = compiled.spec
    query = (
        select(D.c.policy_version, D.c.arm, D.c.propensity, D.c.context,
               func.coalesce(att.reward, 0.0).label("r"),
               *[func.coalesce(flag, 0).label(f"f{j}") for j, flag in enumerate(att.flags)])
        .select_from(D.outerjoin(att.sub, D.c.id == att.sub.c.decision_id))
        .where(D.c.experiment_key == spec.key, D.c.version == compiled.version, D.c.fallback.is_(False))
        .order_by(D.c.created_at, D.c.id)
        .limit(decisions)
    )
    names = list(spec.design.context)
    hasher = FeatureHasher(dim)
    versions = np.empty(decisions, dtype=np.int64)
    arm = np.empty(decisions, dtype=np.int64)
    propensity = np.empty(decisions)
    features = np.empty((decisions, dim - 1))
    metric_values = np.empty((len(att.types) + 1, decisions))
    filled = out_of_range = 0
    result = conn.execution_options(stream_results=True).execute(query)
    while chunk := result.fetchmany(chunk_rows):
        end = filled + len(chunk)
        versions[filled:end] = [-1 if r.policy_version is None else int(r.policy_version) for r in chunk]
        arm[filled:end] = [int(r.arm) for r in chunk]
        propensity[filled:end] = [float(r.propensity) for r in chunk]
        contexts = [{k: (r.context or {}).get(k) for k in names} for r in chunk]
        out_of_range += sum(map(_out_of_range, contexts))
        features[filled:end] = hasher.encode(contexts)[:, 1:]
        for j, row in enumerate(zip(*[tuple(r)[4:] for r in chunk], strict=True)):
            metric_values[j, filled:end] = row
        filled = end
    if filled == 0:
        return None
    _, batch = np.unique(versions[:filled], return_inverse=True)  # versions ascend, NULL (-1) first
    shared: dict[str, Any] = {
        "arms": arm_labels(compiled), "batch": batch.astype(np.int64), "arm": arm[:filled],
        "propensity": propensity[:filled], "features": features[:filled],
    }
    return AdaptiveRows({
        metric: DecisionRows(reward=metric_values[j, :filled].astype(float), **shared)
        for j, metric in enumerate(_metric_names(att.types))
    }, out_of_range)


def _out_of_range(context: dict[str, Any]) -> bool:
    """Whether a number of ``context`` lies beyond :data:`~experiments.limits.MAX_CONTEXT_NUMBER`."""
    return any(type(v) in (int, float) and abs(v) > MAX_CONTEXT_NUMBER for v in context.values())


@dataclass(frozen=True)
class AdaptiveData:
    """Everything the adaptive analysis reads for one experiment version.

    ``default_arm`` is the label of the default combination; ``floor`` the policy's minimum share per
    arm (``design.options.min_share``, or the policies' default).
    """

    design: str
    log: AdaptiveLog
    rows: AdaptiveRows | None
    default_arm: str
    floor: float | None


def read_adaptive(
    conn: Connection, compiled: CompiledExperiment, *, include_machine: bool = False
) -> AdaptiveData:
    """:func:`read_adaptive_log`, and for a contextual design :func:`read_decision_rows`, on ``conn``."""
    log = read_adaptive_log(conn, compiled, include_machine=include_machine)
    design = compiled.spec.design
    rows = None
    if design.type == "contextual":
        rows = read_decision_rows(conn, compiled, log.decisions, include_machine=include_machine)
    floor = design.options.get("min_share", default_min_share(compiled.n_arms))
    return AdaptiveData(
        design=design.type, log=log, rows=rows, default_arm=arm_labels(compiled)[compiled.default_arm],
        floor=float(floor) if floor and 0 < float(floor) < 1 else None,
    )
