"""Opening the store for commands that work on the database directly.

The store's libraries (SQLAlchemy, the service and the statistics it imports) are imported when a store
is opened, not with this module: a command that names ``--db`` among its options but does not use it
(``sendlab replay --logs``) does not load them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.group import CliError
from api.settings import DEFAULT_DB

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from experiments.service import ExperimentService

DbOption = Annotated[
    str,
    typer.Option("--db", envvar="SENDLAB_DB", help="SQLAlchemy URL of the store (SQLite or PostgreSQL)."),
]
DEFAULT = DEFAULT_DB


def engine_for(db: str) -> Engine:
    """An engine on ``db``; a bad URL is reported against ``--db``."""
    from experiments.store import make_engine

    try:
        return make_engine(db)
    except ValueError as exc:
        raise CliError(f"--db: {exc}") from exc


def open_engine(db: str) -> Engine:
    """An engine on ``db`` with its tables created, or brought up to date."""
    from experiments.store import create_tables

    engine = engine_for(db)
    create_tables(engine)
    return engine


def open_service(
    db: str, *, seed: int | None = None, clock: Callable[[], datetime] | None = None
) -> ExperimentService:
    """A service on ``db``, its tables created if missing."""
    from experiments.service import ExperimentService

    engine = open_engine(db)
    if clock is None:
        return ExperimentService(engine, seed=seed)
    return ExperimentService(engine, seed=seed, clock=clock)
