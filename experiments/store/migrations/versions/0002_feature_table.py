"""The feature table: ``feature_versions`` (one row per stored computation), ``features`` (each
recipient's attributes in a version) and ``decisions.feature_version`` (the version a decision's context
was filled from; NULL in the rows made before it).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_versions",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("as_of", sa.DateTime(timezone=False), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("model", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_table(
        "features",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("recipient_id", sa.String(128), primary_key=True),
        sa.Column("attributes", sa.JSON, nullable=False),
    )
    op.add_column("decisions", sa.Column("feature_version", sa.Integer))


def downgrade() -> None:
    op.drop_column("decisions", "feature_version")
    op.drop_table("features")
    op.drop_table("feature_versions")
