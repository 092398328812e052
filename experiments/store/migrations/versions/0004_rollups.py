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

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_rollups"
down_revision = "0003_feature_table"
branch_labels = None
depends_on = None


def _version_key() -> list[sa.Column]:
    """The columns every rollup table's key starts with: the spec version its rows sum."""
    return [sa.Column("experiment_key", sa.String(64), primary_key=True), _int_key("version")]


def _int_key(name: str) -> sa.Column:
    """An integer key column whose values are given (autoincrement off)."""
    return sa.Column(name, sa.Integer, primary_key=True, autoincrement=False)


def _required(type_: Any, *names: str) -> list[sa.Column]:
    """A non-null column of ``type_`` per name: the counts and sums of a rollup row."""
    return [sa.Column(name, type_, nullable=False) for name in names]


def _cell_key() -> list[sa.Column]:
    """The key of a rollup group (``rollups``, ``rollup_events``)."""
    return [
        *_version_key(),
        sa.Column("fallback", sa.Boolean, primary_key=True),
        sa.Column("reason", sa.String(32), primary_key=True),
        _int_key("arm"),
        sa.Column("day", sa.Date, primary_key=True),
        _int_key("policy_version"),
    ]


def _tables() -> dict[str, tuple[sa.Column, ...]]:
    """Each table's columns, as this revision made them, in the order they are made."""
    return {
        "rollups": (
            *_cell_key(),
            *_required(sa.Integer, "decisions", "explored", "learned"),
            *_required(sa.Float, "reward_sum", "reward_sum_squares", "reward_sum_cubes"),
        ),
        "rollup_events": (
            *_cell_key(),
            sa.Column("type", sa.String(64), primary_key=True),
            *_required(sa.Integer, "decisions"),
        ),
        "rollup_counts": (
            *_version_key(),
            sa.Column("kind", sa.String(16), primary_key=True),
            sa.Column("type", sa.String(64), primary_key=True),
            *_required(sa.Integer, "outcomes"),
        ),
        # the breakdowns (experiments.store.breakdown_rollups)
        "rollup_adaptive": (
            *_version_key(),
            _int_key("policy_version"),
            _int_key("arm"),
            sa.Column("metric", sa.String(64), primary_key=True),
            *_required(sa.Integer, "decisions"),
            *_required(sa.Float, "inv_p_sum", "inv_p2_sum"),
            sa.Column("min_propensity", sa.Float, nullable=True),
            *_required(sa.Float, "value_sum", "value_sum_squares", "w_value_sum", "w2_value_sum",
                       "w2_value_squares_sum"),
        ),
        "rollup_segments": (
            *_version_key(),
            sa.Column("attribute", sa.String(64), primary_key=True),
            sa.Column("has_value", sa.Boolean, primary_key=True),
            sa.Column("segment_key", sa.String(32), primary_key=True),
            _int_key("arm"),
            sa.Column("type", sa.String(64), primary_key=True),
            sa.Column("segment", sa.Text, nullable=False),
            *_required(sa.Integer, "decisions"),
            *_required(sa.Float, "reward_sum", "reward_sum_squares", "reward_sum_cubes"),
        ),
        "rollup_segment_overflow": (
            *_version_key(),
            sa.Column("attribute", sa.String(64), primary_key=True),
        ),
        "rollup_covariates": (
            *_version_key(),
            sa.Column("attribute", sa.String(64), primary_key=True),
            _int_key("arm"),
            *_required(sa.Integer, "decisions", "n"),
            *_required(sa.Float, "sum_x", "sum_x_squares", "sum_y", "sum_y_squares", "sum_xy", "magnitude"),
        ),
        # what the drift monitor reads (experiments.store.drift_rollups)
        "drift_rollups": (
            *_version_key(),
            sa.Column("day", sa.Date, primary_key=True),
            _int_key("policy_version"),
            _int_key("learned_version"),
            _int_key("arm"),
            *_required(sa.Integer, "decisions"),
            *_required(sa.Float, "reward_sum", "reward_sum_squares"),
        ),
    }


def upgrade() -> None:
    for name, columns in _tables().items():
        op.create_table(name, *columns)
    _backfill(op.get_bind())


def _backfill(conn: sa.engine.Connection) -> None:
    """Fill the rollups of every stored spec version from its log."""
    from experiments.store.rollup_checks import rebuild_all_rollups

    rebuild_all_rollups(conn)


def downgrade() -> None:
    for name in reversed(_tables()):
        op.drop_table(name)
