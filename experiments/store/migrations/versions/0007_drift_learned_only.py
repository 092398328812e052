"""The drift rollups keep the cells of learned decisions only: those of decisions not learned yet are
derived from the main rollups on read (:mod:`experiments.store.drift_rollups`), so their stored rows go.

Revision ID: 0007_drift_learned_only
Revises: 0006_snapshot_versions_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_drift_learned_only"
down_revision = "0006_snapshot_versions_index"
branch_labels = None
depends_on = None

#: ``drift_rollups.learned_version`` of a cell of decisions not learned yet
#: (:data:`experiments.store.tables.NO_LEARNED_VERSION`, written here as it was stored).
NOT_LEARNED = -1


def upgrade() -> None:
    delete = sa.text("DELETE FROM drift_rollups WHERE learned_version = :none")
    op.execute(delete.bindparams(none=NOT_LEARNED))


def downgrade() -> None:
    """Store again the cells of decisions not learned yet, as derived from the main rollups."""
    from experiments.store.drift_rollups import stored_drift_cells
    from experiments.store.tables import NO_POLICY_VERSION, drift_rollups_table, versions_table

    conn = op.get_bind()
    for key, version in conn.execute(sa.select(versions_table.c.key, versions_table.c.version)).all():
        rows = [
            {"experiment_key": key, "version": version, "day": c.day,
             "policy_version": NO_POLICY_VERSION if c.policy_version is None else c.policy_version,
             "learned_version": NOT_LEARNED, "arm": c.arm, "decisions": c.decisions,
             "reward_sum": c.reward_sum, "reward_sum_squares": c.reward_sum_squares}
            for c in stored_drift_cells(conn, key, version) if c.learned_version is None
        ]
        if rows:
            conn.execute(drift_rollups_table.insert(), rows)
