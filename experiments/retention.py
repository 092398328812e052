"""Retention: stored contexts older than a configured period are dropped; the statistics stay.

A decision keeps its arm, propensity, reason and outcomes, so every count, reward and result is
unchanged; only what the recipient's context said goes (so results by segment or with a covariate count
such a decision as missing the attribute; its rollups move so in the same transaction). The period
should exceed every experiment's reward window and learning delay: a contextual policy learns from the
context stored with a decision. Versions of the feature table stored before the period go too, each
with its rows, but the latest (assignment reads it).

``sendlab db prune`` drops them on demand; a served worker's background learner also does, at most once
every :data:`PRUNE_EVERY_SECONDS`, when ``SENDLAB_RETENTION_DAYS`` is set (:class:`ScheduledPrune`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, cast, select
from sqlalchemy.engine import Engine

from experiments.store import decisions_table, to_db_time
from experiments.store.context_drops import drop_contexts, lock_for_drop
from experiments.store.features import delete_feature_version, latest_feature_version
from experiments.store.tables import feature_versions_table

log = logging.getLogger(__name__)

#: How often a worker's background learner drops the contexts past the retention period.
PRUNE_EVERY_SECONDS = 3600.0


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

    One transaction, its decisions moved to the missing segment of the breakdown rollups as their
    contexts go (:func:`experiments.store.context_drops.drop_contexts`). Idempotent: a decision whose
    context is gone is not counted again.
    """
    d = decisions_table.c
    with engine.begin() as conn:
        lock_for_drop(conn)
        ids = conn.execute(
            # a context of JSON null (a recipient without consent) has nothing to drop
            select(d.id).where(d.created_at < to_db_time(before), d.context.is_not(None),
                               cast(d.context, String) != "null")
        ).scalars().all()
        changed = drop_contexts(conn, ids)
    log.info("retention: dropped the contexts of %d decisions made before %s", changed, before.isoformat())
    return int(changed)


def prune_feature_versions(engine: Engine, before: datetime) -> int:
    """Delete every feature version stored before ``before`` (UTC) but the latest, which assignment
    reads; each version with its rows in a transaction of its own. The number of versions deleted."""
    v = feature_versions_table.c
    with engine.connect() as conn:
        latest = latest_feature_version(conn)
        old = conn.execute(
            select(v.version).where(v.created_at < to_db_time(before), v.version != latest)
            .order_by(v.version)
        ).scalars().all() if latest is not None else []
    deleted = 0
    for version in old:
        with engine.begin() as conn:
            deleted += delete_feature_version(conn, version)
    log.info("retention: deleted %d feature versions stored before %s", deleted, before.isoformat())
    return deleted


@dataclass(frozen=True)
class Pruned:
    """What one prune changed: decisions whose context was dropped, feature versions deleted."""

    decisions: int
    feature_versions: int


def prune_store(engine: Engine, before: datetime) -> Pruned:
    """:func:`prune_contexts`, then :func:`prune_feature_versions`, with the same ``before``."""
    return Pruned(prune_contexts(engine, before), prune_feature_versions(engine, before))


class ScheduledPrune:
    """Drops the contexts and feature versions older than ``days`` at most once every ``every_seconds``,
    for a loop that calls :meth:`check` often (the background learner of :mod:`api.learner_task`).

    Parameters
    ----------
    engine : sqlalchemy Engine
        The store.
    clock : callable returning an aware datetime
        The time the period is counted back from and the interval measured on.
    days : float
        The retention period (positive).
    every_seconds : float
        The least time between two prunes; the first :meth:`check` prunes at once.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        days: float,
        every_seconds: float = PRUNE_EVERY_SECONDS,
    ) -> None:
        retention_cutoff(clock(), days)  # a bad period fails here, not in the loop
        self._engine = engine
        self._clock = clock
        self._days = days
        self._every = timedelta(seconds=every_seconds)
        self._last: datetime | None = None

    def check(self) -> Pruned | None:
        """Prune if due (:func:`prune_store`): what changed, or None when not due.

        A prune that fails is not tried again before the next interval (the loop logs the error).
        """
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return None
        self._last = now
        return prune_store(self._engine, retention_cutoff(now, self._days))
