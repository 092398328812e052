"""The experiments list's numbers: the decisions of every experiment's current version, summed from its
rollups (:func:`experiments.store.rollup_tables.stored_decision_counts`, a few rows per arm and day,
whatever the size of the log) instead of one summary per experiment.

Per experiment: the fallbacks by reason, and the learnable decisions: in total for adaptive designs
(their split is not checked), per arm for hash designs (the sample-ratio check needs each variant's
count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.models import FALLBACK_REASONS, ExperimentTraffic, Reason, VariantTraffic
from experiments.results import intended_shares
from experiments.store.rollup_tables import stored_decision_counts

#: Reasons of the decisions that are learned from and counted in the arm statistics.
LEARNABLE_REASONS = tuple(sorted(frozenset(get_args(Reason)) - FALLBACK_REASONS))

#: ``(fallback, reason, arm)`` of a count of :func:`version_counts`.
CountKey = tuple[bool, str | None, int | None]


def version_counts(conn: Connection, compiled: CompiledExperiment) -> dict[CountKey, int]:
    """The decisions of a spec version: ``(True, reason, None)`` per fallback reason; for hash designs
    ``(False, None, arm)`` per arm, for adaptive designs ``(False, None, None)`` for all learnable ones."""
    out: dict[CountKey, int] = {}
    learnable: dict[int, int] = dict.fromkeys(range(compiled.n_arms), 0)
    counts = stored_decision_counts(conn, compiled.spec.key, compiled.version)
    for (fallback, reason, arm), n in sorted(counts.items()):
        if fallback:
            out[(True, reason, None)] = out.get((True, reason, None), 0) + n
        elif reason in LEARNABLE_REASONS:
            learnable[arm] = learnable.get(arm, 0) + n
    if compiled.adaptive:
        out[(False, None, None)] = sum(learnable.values())
        return out
    for arm in range(compiled.n_arms):
        out[(False, None, arm)] = learnable[arm]
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
