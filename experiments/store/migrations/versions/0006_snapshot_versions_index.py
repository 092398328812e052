"""An index of ``policy_snapshots`` holding every column the pages read of a snapshot but its state and
the arm probabilities: (experiment_key, version, spec_version, created_at, cursor, learned_decisions).

The policy history and the learning summary read those columns of every snapshot; on SQLite a row's
columns after its state (a contextual policy's is over 100 KB) are read by walking the state's overflow
pages, so without this index those reads grew with the size of the states. With it they read the index
alone.

Revision ID: 0006_snapshot_versions_index
Revises: 0005_snapshot_summaries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_snapshot_versions_index"
down_revision = "0005_snapshot_summaries"
branch_labels = None
depends_on = None

NAME = "ix_policy_snapshots_versions"
COLUMNS = ["experiment_key", "version", "spec_version", "created_at", "cursor", "learned_decisions"]


def upgrade() -> None:
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("policy_snapshots")}
    if NAME not in present:
        op.create_index(NAME, "policy_snapshots", COLUMNS)


def downgrade() -> None:
    op.drop_index(NAME, table_name="policy_snapshots")
