"""Send time and frequency caps: the chosen hour's own propensity on each decision, and the recent send
times of each recipient per frequency-cap scope.

Revision ID: 0002_send_time
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_send_time"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("send_time_propensity", sa.Float))
    op.create_table(
        "frequency_counts",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("recipient_id", sa.String, primary_key=True),
        sa.Column("sends", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("frequency_counts")
    op.drop_column("decisions", "send_time_propensity")
