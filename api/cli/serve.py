"""``sendlab serve``: the HTTP service under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from api.cli.db import DEFAULT, DbOption, open_engine
from api.settings import settings_from_env


def serve(
    db: DbOption = DEFAULT,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes (use PostgreSQL for more than one).", min=1)
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (OpenAPI page at /docs). Keys come from SENDLAB_ADMIN_KEY / SENDLAB_SEND_KEY."""
    os.environ["SENDLAB_DB"] = db  # every worker builds its app from the environment
    settings = settings_from_env()  # fails here, on one line, if SENDLAB_CONFIG is unusable
    open_engine(settings.db).dispose()  # tables created once, before the workers race to create them
    os.environ["SENDLAB_CREATE_TABLES"] = "0"
    if workers > 1 and settings.db.startswith("sqlite"):
        typer.echo("warning: several workers on SQLite serialise their writes; prefer PostgreSQL", err=True)
    run_server("api.app:app_from_env", host=host, port=port, workers=workers, log_level=log_level)


def run_server(factory: str, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Run the app that the factory ``module:function`` builds under uvicorn, as ``sendlab serve`` does.

    The one server configuration: ``benchmarks/service.py`` runs its floor (a bare FastAPI app) through
    it too, so the floor and the service are measured under the same server settings.
    """
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, log_level=log_level)
