"""Retention: stored contexts older than a configured period are dropped; the statistics stay.

A decision keeps its arm, propensity, reason and outcomes, so every count, reward and result is
unchanged; only what the recipient's context said goes (so results by segment or with a covariate count
such a decision as missing the attribute). The period should exceed every experiment's reward window
and learning delay: a contextual policy learns from the context stored with a decision.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import String, cast, null, update
from sqlalchemy.engine import Engine

from experiments.store import decisions_table, to_db_time

log = logging.getLogger(__name__)


def retention_cutoff(now: datetime, days: float) -> datetime:
    """The moment before which contexts are dropped: ``days`` before ``now``.

    Raises
    ------
    ValueError
        ``days`` is not a positive number.
    """
    if not days > 0:
        raise ValueError(f"the retention period must be a positive number of days, got {days!r}")
    return now - timedelta(days=days)


def prune_contexts(engine: Engine, before: datetime) -> int:
    """Drop the context of every decision made before ``before`` (UTC); the number of decisions changed.

    Idempotent: a decision whose context is gone is not counted again.
    """
    d = decisions_table.c
    with engine.begin() as conn:
        changed = conn.execute(
            update(decisions_table)
            # a context of JSON null (a recipient without consent) has nothing to drop
            .where(d.created_at < to_db_time(before), d.context.is_not(None),
                   cast(d.context, String) != "null")
            .values(context=null())
        ).rowcount
    log.info("retention: dropped the contexts of %d decisions made before %s", changed, before.isoformat())
    return int(changed)
