"""A store as SendLab made it before migrations, from one made now: what the tests of in-place upgrades
start from."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import text

from experiments.store.schema import _config


def as_made_before_migrations(engine: Any) -> None:
    """Undo every revision after the baseline (``0001``) and drop ``alembic_version``: the layout of a
    store made before migrations, with its rows."""
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
