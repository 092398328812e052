"""Fixtures of the page tests: a seeded service, the app with the pages mounted, a real server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings
from experiments.service import ExperimentService
from tests.ui.seed import seeded_service

ADMIN_KEY = "ui-admin-key"
SEND_KEY = "ui-send-key"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> ExperimentService:
    """The three demo experiments after three simulated sends (SQLite file, shared by the session)."""
    folder = tmp_path_factory.mktemp("ui-db")
    return seeded_service(f"sqlite:///{folder / 'ui.db'}")


def build_app(service: ExperimentService, *, keys: bool, reports: Path | None = None) -> FastAPI:
    """The service's app (pages mounted at /ui), reading reports from ``reports``."""
    settings = Settings(db="sqlite://", admin_key=ADMIN_KEY if keys else None,
                        send_key=SEND_KEY if keys else None,
                        reports_dir=str(reports) if reports is not None else "reports")
    return create_app(settings, service=service)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving ``app`` on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("the uvicorn thread did not answer /healthz")
            time.sleep(0.05)

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def reports_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-reports")


@pytest.fixture(scope="session")
def open_server(seeded: ExperimentService, reports_folder: Path) -> Iterator[ServerThread]:
    with ServerThread(build_app(seeded, keys=False, reports=reports_folder)) as server:
        yield server


@pytest.fixture(scope="session")
def keyed_server(seeded: ExperimentService, reports_folder: Path) -> Iterator[ServerThread]:
    with ServerThread(build_app(seeded, keys=True, reports=reports_folder)) as server:
        yield server
