"""The experiments list's numbers: the decisions of every experiment's current version, counted by one
aggregated query instead of one summary per experiment.

The query joins each experiment to its decisions of the current version and groups them by the leading
columns of the index ``ix_decisions_summary`` (key, version, fallback, reason, day, arm), so the
database reads that index alone, in order; the groups are summed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.models import ExperimentTraffic, VariantTraffic
from experiments.results import intended_shares
from experiments.store import decisions_table as D
from experiments.store import experiments_table as E

_GROUP = ("experiment_key", "version", "fallback", "reason", "day", "arm")


def current_version_counts(conn: Connection) -> dict[str, dict[tuple[bool, str, int], int]]:
    """Per experiment key, the decisions of its current version by ``(fallback, reason, arm)``."""
    query = (
        select(*[D.c[g] for g in _GROUP], func.count().label("n"))
        .select_from(D.join(E, (E.c.key == D.c.experiment_key) & (E.c.version == D.c.version)))
        .group_by(*[D.c[g] for g in _GROUP])
    )
    out: dict[str, dict[tuple[bool, str, int], int]] = {}
    for row in conn.execute(query):
        counts = out.setdefault(row.experiment_key, {})
        key = (bool(row.fallback), str(row.reason), int(row.arm))
        counts[key] = counts.get(key, 0) + int(row.n)
    return out


def build_traffic(
    compiled: CompiledExperiment, counts: Mapping[tuple[bool, str, int], int]
) -> ExperimentTraffic:
    """An experiment's row of the list from its ``(fallback, reason, arm) -> decisions`` counts.

    A slot variant's decisions are the sum over the learnable decisions of the arms that contain it;
    its intended share is its weight's share of the slot for hash designs (A/B, multivariate) and None
    for adaptive ones (their split moves as they learn).
    """
    variant_to_n: dict[tuple[str, str], int] = {
        (s, v): 0 for s in compiled.slot_names for v in compiled.slot_ids[s]
    }
    fallbacks: dict[str, int] = {}
    for (fallback, reason, arm), n in counts.items():
        if fallback:
            fallbacks[reason] = fallbacks.get(reason, 0) + n
            continue
        for slot_variant in compiled.arm_variants(arm).items():
            variant_to_n[slot_variant] += n
    shares = {} if compiled.adaptive else intended_shares(compiled)
    arms = [VariantTraffic(s, v, n, shares.get((s, v))) for (s, v), n in variant_to_n.items()]
    return ExperimentTraffic(
        key=compiled.spec.key,
        version=compiled.version,
        design=compiled.spec.design.type,
        slots={s: list(ids) for s, ids in compiled.slot_ids.items()},
        decisions=sum(counts.values()),
        fallbacks=dict(sorted(fallbacks.items())),
        arms=arms,
    )
