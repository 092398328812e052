"""The store as SendLab made it before migrations (December 2026), and the in-place upgrades it did then.

A new store gets every table; a store made by an earlier SendLab (no ``alembic_version`` table) keeps its
rows and gets what it lacks: the tables, the columns added to ``decisions`` and ``outcomes`` after their
first release, the indexes; the retired index is dropped.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=False), nullable=nullable)


def _tables() -> dict[str, tuple]:
    """Each table's columns and constraints, as this revision made them."""
    return {
        "experiments": (
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("spec", sa.String, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("apprentice", sa.Boolean, nullable=False),
            sa.Column("warnings", sa.JSON, nullable=False),
            _time("created_at"), _time("updated_at"),
        ),
        "experiment_versions": (
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True),
            sa.Column("spec", sa.String, nullable=False),
            _time("created_at"),
        ),
        "decisions": (
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("experiment_key", sa.String(64), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("recipient_id", sa.String, nullable=False),
            sa.Column("variants", sa.JSON, nullable=False),
            sa.Column("arm", sa.Integer, nullable=False),
            sa.Column("propensity", sa.Float, nullable=False),
            sa.Column("policy_version", sa.Integer),
            sa.Column("explored", sa.Boolean, nullable=False),
            sa.Column("fallback", sa.Boolean, nullable=False),
            sa.Column("reason", sa.String(32), nullable=False),
            sa.Column("context", sa.JSON),
            _time("created_at"),
            sa.Column("day", sa.Date, nullable=False),
            sa.Column("learned_version", sa.Integer),
            sa.Column("agreement", sa.Float),
            *_added_decision_columns(),
        ),
        "outcomes": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("event_id", sa.String(128), nullable=False, unique=True),
            sa.Column("decision_id", sa.String(36), nullable=False),
            sa.Column("experiment_key", sa.String(64), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("type", sa.String(64), nullable=False),
            sa.Column("value", sa.Float),
            _time("time"), _time("received_at"),
            sa.Column("machine", sa.Boolean, nullable=False),
            sa.Column("attributed", sa.Boolean, nullable=False),
            sa.Column("learned_version", sa.Integer),
            sa.Column("after_learning", sa.String(16)),
            sa.Column("arm", sa.Integer, nullable=False),
            sa.Column("fallback", sa.Boolean, nullable=False),
            sa.Column("reason", sa.String(32), nullable=False),
            sa.Column("day", sa.Date, nullable=False),
        ),
        "orphan_outcomes": (
            sa.Column("event_id", sa.String(128), primary_key=True),
            sa.Column("decision_id", sa.String, nullable=False),
            sa.Column("type", sa.String(64), nullable=False),
            sa.Column("value", sa.Float),
            _time("time"), _time("received_at"),
            sa.Column("machine", sa.Boolean, nullable=False),
        ),
        "policy_snapshots": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("experiment_key", sa.String(64), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("spec_version", sa.Integer, nullable=False),
            sa.Column("state", sa.LargeBinary, nullable=False),
            sa.Column("cursor", sa.Integer, nullable=False),
            sa.Column("learned_decisions", sa.Integer, nullable=False),
            _time("created_at"),
            sa.UniqueConstraint("experiment_key", "version", name="uq_policy_snapshot_version"),
        ),
    }


def _added_decision_columns() -> tuple[sa.Column, ...]:
    """Columns added to ``decisions`` after its first release (NULL in the rows made before them)."""
    return (
        sa.Column("send_id", sa.String(128)),
        _time("send_at", nullable=True),
        sa.Column("learned_weight", sa.Float),
    )


def _pending() -> sa.ColumnElement[bool]:
    c = sa.column
    return sa.and_(c("learned_version").is_(None), c("attributed").is_(True), c("machine").is_(False),
                   c("fallback").is_(False))


def _indexes() -> list[tuple[str, str, list[str], dict]]:
    """(table, name, columns, options) of every index."""
    send = sa.text("send_id IS NOT NULL")
    after = sa.column("after_learning").is_not(None)
    return [
        ("decisions", "ix_decisions_summary",
         ["experiment_key", "version", "fallback", "reason", "arm", "day", "policy_version", "explored",
          "learned_version", "agreement"], {}),
        ("decisions", "ix_decisions_learn",
         ["experiment_key", "version", "learned_version", "created_at"], {}),
        ("decisions", "ix_decisions_adaptive",
         ["experiment_key", "version", "fallback", "policy_version", "arm", "propensity"], {}),
        ("decisions", "uq_decisions_send", ["experiment_key", "send_id", "recipient_id"],
         {"unique": True, "sqlite_where": send, "postgresql_where": send}),
        ("outcomes", "ix_outcomes_experiment", ["experiment_key", "decision_id"], {}),
        ("outcomes", "ix_outcomes_summary",
         ["experiment_key", "version", "attributed", "decision_id", "arm", "day", "reason", "fallback",
          "type", "value", "machine"], {}),
        ("outcomes", "ix_outcomes_pending", ["experiment_key", "version", "day"],
         {"sqlite_where": _pending(), "postgresql_where": _pending()}),
        ("outcomes", "ix_outcomes_after_learning", ["experiment_key", "version", "after_learning"],
         {"sqlite_where": after, "postgresql_where": after}),
    ]


#: Indexes earlier versions created and nothing reads any more (``ix_decisions_summary`` replaced them).
RETIRED_INDEXES = ("ix_decisions_arm",)


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for name, parts in _tables().items():
        if name not in present:
            op.create_table(name, *parts)
    if "decisions" in present:
        _add_missing_columns("decisions", _added_decision_columns())
    if "outcomes" in present:
        _add_outcome_learning_columns()
    inspector = sa.inspect(bind)
    for table, name, columns, options in _indexes():
        if name not in {i["name"] for i in inspector.get_indexes(table)}:
            op.create_index(name, table, columns, **options)
    for name in RETIRED_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def _add_missing_columns(table: str, columns: tuple[sa.Column, ...]) -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    for column in columns:
        if column.name not in present:
            op.add_column(table, column)


def _add_outcome_learning_columns() -> None:
    """``learned_version`` and ``after_learning`` for an outcomes table made before them: the outcomes of
    decisions already learned are marked learned by the same snapshot (the old loop learned each decision
    once with the outcomes present then; later ones were not learned and are not recoverable)."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outcomes")}
    if "learned_version" in present:
        return
    op.add_column("outcomes", sa.Column("learned_version", sa.Integer))
    op.add_column("outcomes", sa.Column("after_learning", sa.String(16)))
    op.execute(
        "UPDATE outcomes SET learned_version = (SELECT decisions.learned_version FROM decisions "
        "WHERE decisions.id = outcomes.decision_id) WHERE outcomes.attributed"
        + (" = 1" if op.get_bind().dialect.name == "sqlite" else "")
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline has nothing below it: restore a backup to go back")
