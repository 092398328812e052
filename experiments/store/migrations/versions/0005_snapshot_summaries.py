"""What the pages show of a policy snapshot, kept in its row: ``policy_snapshots.learned_reward`` (the
reward the spec version's policy had learned from in all) and ``policy_snapshots.arm_probabilities`` (a
bandit's distribution over the arms in the state). Existing snapshots are filled from their states and
the log (:func:`experiments.store.snapshot_summaries.rebuild_snapshot_summaries`): every snapshot's
probabilities, and the learned reward of the latest snapshot of each spec version, the one the pages
read and the learner adds to.

Revision ID: 0005_snapshot_summaries
Revises: 0004_rollups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from experiments.store.snapshot_summaries import rebuild_snapshot_summaries

revision = "0005_snapshot_summaries"
down_revision = "0004_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("policy_snapshots")}
    if "learned_reward" not in present:
        op.add_column("policy_snapshots", sa.Column("learned_reward", sa.Float))
    if "arm_probabilities" not in present:
        op.add_column("policy_snapshots", sa.Column("arm_probabilities", sa.JSON))
    rebuild_snapshot_summaries(op.get_bind())


def downgrade() -> None:
    op.drop_column("policy_snapshots", "arm_probabilities")
    op.drop_column("policy_snapshots", "learned_reward")
