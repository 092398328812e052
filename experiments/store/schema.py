"""The store's schema, kept by Alembic migrations (:mod:`experiments.store.migrations`).

Three kinds of store meet :func:`create_tables` (every ``sendlab serve`` start) and :func:`upgrade_store`
(``sendlab db upgrade``):

- an empty database: the tables are made from the models and stamped with the newest revision (the
  migrations' end state equals the models; a test compares them);
- a store at an older revision, or one made before migrations (it has tables but no ``alembic_version``):
  the migrations run from where it is, in one transaction on PostgreSQL;
- a store at the newest revision: one query, nothing else.

On PostgreSQL the work runs under an advisory lock, so API workers starting together take turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from experiments.store.tables import (
    decisions_table,
    drift_rollups_table,
    experiments_table,
    feature_versions_table,
    features_table,
    frequency_table,
    orphans_table,
    outcomes_table,
    rollup_adaptive_table,
    rollup_counts_table,
    rollup_covariates_table,
    rollup_events_table,
    rollup_overflow_table,
    rollup_segments_table,
    rollups_table,
    snapshots_table,
    versions_table,
)

#: The tables the migrations own, in the order they are made.
TABLES = (
    experiments_table, versions_table, decisions_table, outcomes_table, orphans_table, snapshots_table,
    frequency_table, feature_versions_table, features_table, rollups_table, rollup_events_table,
    rollup_counts_table, rollup_adaptive_table, rollup_segments_table, rollup_overflow_table,
    rollup_covariates_table, drift_rollups_table,
)
#: ``pg_advisory_xact_lock`` key of schema changes (any constant that no other lock of SendLab's uses).
MIGRATION_LOCK = 0x53454E444C4142


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade_store` did: the revision before (None: an empty database, or one made before
    migrations when ``tables_before`` is true) and after."""

    before: str | None
    after: str
    tables_before: bool

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "experiments.store:migrations")
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision in ``migrations/versions``."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The store's revision (None: empty, or made before migrations)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade_store(engine: Engine) -> Upgrade:
    """Bring the store at ``engine`` to the newest revision (see the module's docstring)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        before = current_revision(conn)
        head = head_revision()
        if before == head:
            return Upgrade(before, head, True)
        tables_before = inspect(conn).has_table(decisions_table.name)
        config = _config(conn)
        if before is None and not tables_before:
            SQLModel.metadata.create_all(conn, tables=list(TABLES))
            command.stamp(config, "head")
        else:
            command.upgrade(config, "head")
        return Upgrade(before, head, tables_before)


def create_tables(engine: Engine) -> None:
    """Make the store's tables, or bring an older store up to date (:func:`upgrade_store`)."""
    upgrade_store(engine)
