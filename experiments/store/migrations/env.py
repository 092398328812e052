"""Alembic's environment: SendLab passes the open connection in ``config.attributes["connection"]``
(:mod:`experiments.store.schema`); there is no ``alembic.ini`` and no offline (SQL script) mode."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import experiments.store.tables  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("SendLab's migrations run through `sendlab db upgrade` (or create_tables), "
                       "which pass the connection")
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
