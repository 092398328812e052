"""After a benchmark writes a log in bulk (``INSERT ... SELECT``, bypassing the service's writers):
:func:`prepare_store`, the one place that brings such a store to what its writers keep up to date."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from experiments.store.rollup_checks import rebuild_all_rollups
from experiments.store.snapshot_summaries import rebuild_snapshot_summaries


def prepare_store(engine: Engine) -> None:
    """Rebuild from the log what the writers keep as they write (the rollups of every experiment
    version, :func:`experiments.store.rollup_checks.rebuild_all_rollups`; the policy snapshots' learned
    rewards, which the learner adds up; any summary table kept up to date with the log belongs here
    too), then gather the statistics autovacuum would after a bulk load (``VACUUM ANALYZE`` on
    PostgreSQL, the visibility map included; ``ANALYZE`` on SQLite)."""
    with engine.begin() as conn:
        rebuild_all_rollups(conn)
        rebuild_snapshot_summaries(conn)
    dialect = engine.dialect.name
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE")
