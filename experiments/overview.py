"""The experiments list's numbers: the decisions of every experiment's current version, counted on
ranges of the covering index ``ix_decisions_summary`` instead of one summary per experiment.

Per experiment: the fallbacks by reason (a ``GROUP BY`` over the fallback range only), and the learnable
decisions as plain ``count(*)`` over index ranges: one range for adaptive designs (their split is not
checked), one per arm for hash designs (the sample-ratio check needs each variant's count). Counting a
range is the cheapest pass a database makes over an index (no grouping per row: SQLite about 50 ns per
decision against about 200 ns for the summary's ``GROUP BY``), so the list stays fast with several
experiments of a million decisions each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.models import FALLBACK_REASONS, ExperimentTraffic, Reason, VariantTraffic
from experiments.results import intended_shares
from experiments.store import decisions_table as D

#: Reasons of the decisions that are learned from and counted in the arm statistics.
LEARNABLE_REASONS = tuple(sorted(frozenset(get_args(Reason)) - FALLBACK_REASONS))

#: ``(fallback, reason, arm)`` of a count of :func:`version_counts`.
CountKey = tuple[bool, str | None, int | None]


def version_counts(conn: Connection, compiled: CompiledExperiment) -> dict[CountKey, int]:
    """The decisions of a spec version: ``(True, reason, None)`` per fallback reason; for hash designs
    ``(False, None, arm)`` per arm, for adaptive designs ``(False, None, None)`` for all learnable ones."""
    key, version = compiled.spec.key, compiled.version
    in_version = (D.c.experiment_key == key, D.c.version == version)
    out: dict[CountKey, int] = {}
    fallbacks = (
        select(D.c.reason, func.count())
        .where(*in_version, D.c.fallback.is_(True))
        .group_by(D.c.reason)
    )
    for reason, n in conn.execute(fallbacks):
        out[(True, str(reason), None)] = int(n)
    learnable = select(func.count()).where(
        *in_version, D.c.fallback.is_(False), D.c.reason.in_(LEARNABLE_REASONS)
    )
    if compiled.adaptive:
        out[(False, None, None)] = int(conn.execute(learnable).scalar_one())
        return out
    for arm in range(compiled.n_arms):
        out[(False, None, arm)] = int(conn.execute(learnable.where(D.c.arm == arm)).scalar_one())
    return out


def build_traffic(
    compiled: CompiledExperiment, counts: Mapping[CountKey, int]
) -> ExperimentTraffic:
    """An experiment's row of the list from its :func:`version_counts`.

    A slot variant's decisions are the sum over the arms that contain it, with its intended share (its
    weight's share of the slot) for hash designs; adaptive designs (whose split moves as they learn)
    list their variants without counts or shares.
    """
    variant_to_n: dict[tuple[str, str], int] = {
        (s, v): 0 for s in compiled.slot_names for v in compiled.slot_ids[s]
    }
    fallbacks: dict[str, int] = {}
    for (fallback, reason, arm), n in counts.items():
        if fallback and reason is not None:
            fallbacks[reason] = fallbacks.get(reason, 0) + n
        elif arm is not None:
            for slot_variant in compiled.arm_variants(arm).items():
                variant_to_n[slot_variant] += n
    shares = {} if compiled.adaptive else intended_shares(compiled)
    arms = [] if compiled.adaptive else [
        VariantTraffic(s, v, n, shares[(s, v)]) for (s, v), n in variant_to_n.items()
    ]
    return ExperimentTraffic(
        key=compiled.spec.key,
        version=compiled.version,
        design=compiled.spec.design.type,
        slots={s: list(ids) for s, ids in compiled.slot_ids.items()},
        decisions=sum(counts.values()),
        fallbacks=dict(sorted(fallbacks.items())),
        arms=arms,
    )
