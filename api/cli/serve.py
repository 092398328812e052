"""``sendlab serve``: the HTTP service under uvicorn."""

from __future__ import annotations

import errno
import inspect
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from api.cli.db import DEFAULT, DbOption, open_engine
from api.cli.group import CliError
from api.metrics_files import clear_directory
from api.settings import settings_from_env


def serve(
    db: DbOption = DEFAULT,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes (use PostgreSQL for more than one).", min=1)
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    learner: Annotated[
        bool | None,
        typer.Option("--learner/--no-learner", help="Run the background learner in each worker (default: "
                     "SENDLAB_LEARNER, on); off where `sendlab learn KEY --watch` runs it.",
                     show_default=False),
    ] = None,
) -> None:
    """Run the HTTP API (OpenAPI page at /docs). Keys come from SENDLAB_ADMIN_KEY / SENDLAB_SEND_KEY."""
    os.environ["SENDLAB_DB"] = db  # every worker builds its app from the environment
    if learner is not None:
        os.environ["SENDLAB_LEARNER"] = "on" if learner else "off"
    settings = settings_from_env()  # fails here, on one line, if SENDLAB_CONFIG is unusable
    check_address(host, port)  # before the store is opened: uvicorn would fail after, with its log lines
    open_engine(settings.db).dispose()  # tables created once, before the workers race to create them
    os.environ["SENDLAB_CREATE_TABLES"] = "0"
    if workers > 1 and settings.db.startswith("sqlite"):
        typer.echo("warning: several workers on SQLite serialise their writes; prefer PostgreSQL", err=True)
    with metrics_directory(settings.metrics_dir) as directory:
        os.environ["SENDLAB_METRICS_DIR"] = directory  # the workers' metrics meet there; /metrics sums
        run_server("api.app:app_from_env", host=host, port=port, workers=workers, log_level=log_level)


def check_address(host: str, port: int) -> None:
    """Fail with one line if the server could not listen on ``host:port`` (a port in use, a host that is
    not this machine's), by binding it as uvicorn will, then letting it go."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise CliError(f"--host {host}: {exc.strerror}") from exc
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"--port {port}: address already in use") from exc
            raise CliError(f"--host {host} --port {port}: {exc.strerror}") from exc


def run_server(factory: str, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Run the app that the factory ``module:function`` builds under uvicorn, as ``sendlab serve`` does.

    The one server configuration: ``benchmarks/api.py`` runs its floor (a bare FastAPI app) through
    it too, so the floor and the service are measured under the same server settings.
    """
    uvicorn.run(
        factory, factory=True, host=host, port=port, workers=workers, log_level=log_level,
        **_healthcheck_option(),
    )


WORKER_HEALTHCHECK_SECONDS = 60
"""How long uvicorn's supervisor waits for a worker to answer its ping before it kills and replaces it.

A worker answers from a thread while it imports the application (numpy, scipy, statsmodels, ...), and
extension modules hold the interpreter lock while they load: on a busy two-core host the import took
12 to 17 s and uvicorn's default of 5 s killed every new worker before it could serve.
"""


def _healthcheck_option() -> dict[str, int]:
    """``timeout_worker_healthcheck`` for uvicorn versions that have it (0.30 pinged with a fixed 5 s)."""
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        return {"timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS}
    return {}


@contextmanager
def metrics_directory(configured: str | None) -> Iterator[str]:
    """The directory where this server's workers share their metrics.

    A configured one (``SENDLAB_METRICS_DIR`` or ``metrics_dir`` in the config file) is created if
    missing and emptied of a previous run's files; otherwise a fresh temporary one, removed at exit.
    """
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        clear_directory(configured)
        yield configured
        return
    directory = tempfile.mkdtemp(prefix="sendlab-metrics-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
