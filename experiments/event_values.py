"""Values posted on events that the reward does not count, so that results can say so.

The spec's reward adds up the values of the event types in ``reward.value_event_types`` (``value_types``,
default: the type named by ``value``). A value posted on any other event type (a ``conversion`` with its
order value, when only ``revenue`` events carry value) is stored but counted nowhere: the results warn
with the counts per type instead of silently showing a value of 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.store.rollup_tables import UNCOUNTED_VALUE, stored_outcome_counts


def uncounted_value_counts(conn: Connection, compiled: CompiledExperiment) -> dict[str, int]:
    """Per event type, the outcomes of the version that carry a value the reward does not count (as
    the rollups count them; :func:`experiments.store.summaries.log_outcome_counts` from the log)."""
    counts = stored_outcome_counts(conn, compiled.spec.key, compiled.version)
    return {t: n for (kind, t), n in sorted(counts.items()) if kind == UNCOUNTED_VALUE}


def uncounted_values_warning(counts: Mapping[str, int], valued: list[str]) -> str | None:
    """One sentence on the values left uncounted (None when there are none).

    Examples
    --------
    >>> print(uncounted_values_warning({"conversion": 12}, ["revenue"]))  # doctest: +NORMALIZE_WHITESPACE
    values were posted on 12 events of types that carry none in this spec's reward (conversion: 12): they
    are not counted; the reward counts the values of revenue events (set reward.value_types to count
    others)
    """
    total = sum(counts.values())
    if not total:
        return None
    by_type = ", ".join(f"{kind}: {n:,}" for kind, n in counts.items())
    counted = (
        f"the reward counts the values of {', '.join(valued)} events" if valued
        else "the reward counts no values (set reward.value)"
    )
    return (
        f"values were posted on {total:,} events of types that carry none in this spec's reward ({by_type}): "
        f"they are not counted; {counted} (set reward.value_types to count others)"
    )
