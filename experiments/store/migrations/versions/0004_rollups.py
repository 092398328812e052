"""Rollups: the cells results read (``rollups``, ``rollup_events``), the outcome counts per spec
version (``rollup_counts``), the breakdowns (``rollup_adaptive``, ``rollup_segments``,
``rollup_covariates``: the adaptive inverse-propensity sums, the decisions by segment and the CUPED sums
by covariate, :mod:`experiments.store.breakdown_rollups`) and the drift monitor's sums
(``drift_rollups``), made and filled from the log of every stored spec version
(:func:`experiments.store.rollup_checks.rebuild_all_rollups`), so an upgraded store answers as before.

Revision ID: 0004_rollups
Revises: 0003_feature_table
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_rollups"
down_revision = "0003_feature_table"
branch_labels = None
depends_on = None


def _cell_key() -> list[sa.Column]:
    return [
        sa.Column("experiment_key", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("fallback", sa.Boolean, primary_key=True),
        sa.Column("reason", sa.String(32), primary_key=True),
        sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("policy_version", sa.Integer, primary_key=True, autoincrement=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rollups",
        *_cell_key(),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("explored", sa.Integer, nullable=False),
        sa.Column("learned", sa.Integer, nullable=False),
        sa.Column("reward_sum", sa.Float, nullable=False),
        sa.Column("reward_sum_squares", sa.Float, nullable=False),
        sa.Column("reward_sum_cubes", sa.Float, nullable=False),
    )
    op.create_table(
        "rollup_events",
        *_cell_key(),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("decisions", sa.Integer, nullable=False),
    )
    op.create_table(
        "rollup_counts",
        sa.Column("experiment_key", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("outcomes", sa.Integer, nullable=False),
    )
    _create_breakdowns()
    _create_drift_rollups()
    _backfill(op.get_bind())


def _create_breakdowns() -> None:
    def key() -> list[sa.Column]:
        return [
            sa.Column("experiment_key", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        ]

    floats = ("value_sum", "value_sum_squares", "w_value_sum", "w2_value_sum", "w2_value_squares_sum")
    op.create_table(
        "rollup_adaptive",
        *key(),
        sa.Column("policy_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("inv_p_sum", sa.Float, nullable=False),
        sa.Column("inv_p2_sum", sa.Float, nullable=False),
        sa.Column("min_propensity", sa.Float, nullable=True),
        *[sa.Column(name, sa.Float, nullable=False) for name in floats],
    )
    op.create_table(
        "rollup_segments",
        *key(),
        sa.Column("attribute", sa.String(64), primary_key=True),
        sa.Column("has_value", sa.Boolean, primary_key=True),
        sa.Column("segment_key", sa.String(32), primary_key=True),
        sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("segment", sa.Text, nullable=False),
        sa.Column("decisions", sa.Integer, nullable=False),
        *[sa.Column(name, sa.Float, nullable=False)
          for name in ("reward_sum", "reward_sum_squares", "reward_sum_cubes")],
    )
    op.create_table(
        "rollup_segment_overflow",
        *key(),
        sa.Column("attribute", sa.String(64), primary_key=True),
    )
    op.create_table(
        "rollup_covariates",
        *key(),
        sa.Column("attribute", sa.String(64), primary_key=True),
        sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        *[sa.Column(name, sa.Float, nullable=False)
          for name in ("sum_x", "sum_x_squares", "sum_y", "sum_y_squares", "sum_xy", "magnitude")],
    )


def _create_drift_rollups() -> None:
    """``drift_rollups``: what the drift monitor reads (:mod:`experiments.store.drift_rollups`)."""
    op.create_table(
        "drift_rollups",
        sa.Column("experiment_key", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("policy_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("learned_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("reward_sum", sa.Float, nullable=False),
        sa.Column("reward_sum_squares", sa.Float, nullable=False),
    )


def _backfill(conn: sa.engine.Connection) -> None:
    """Fill the rollups of every stored spec version from its log."""
    from experiments.store.rollup_checks import rebuild_all_rollups

    rebuild_all_rollups(conn)


def downgrade() -> None:
    for table in ("rollup_covariates", "rollup_segment_overflow", "rollup_segments", "rollup_adaptive"):
        op.drop_table(table)
    op.drop_table("drift_rollups")
    op.drop_table("rollup_counts")
    op.drop_table("rollup_events")
    op.drop_table("rollups")
