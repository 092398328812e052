"""The feature table: ``feature_versions`` (one row per stored computation), ``features`` (each
recipient's attributes in a version) and ``decisions.feature_version`` (the version a decision's context
was filled from; NULL in the rows made before it). Each is made only where missing.

Revision ID: 0003_feature_table
Revises: 0002_send_time
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_feature_table"
down_revision = "0002_send_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "feature_versions" not in tables:
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
    if "features" not in tables:
        op.create_table(
            "features",
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("recipient_id", sa.String(128), primary_key=True),
            sa.Column("attributes", sa.JSON, nullable=False),
        )
    if "feature_version" not in {c["name"] for c in inspector.get_columns("decisions")}:
        op.add_column("decisions", sa.Column("feature_version", sa.Integer))


def downgrade() -> None:
    op.drop_column("decisions", "feature_version")
    op.drop_table("features")
    op.drop_table("feature_versions")
