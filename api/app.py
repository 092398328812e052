"""The FastAPI application factory.

``create_app(settings)`` builds everything when it is called, never at import time. ``uvicorn`` runs
``api.app:app_from_env`` as a factory, so each worker reads the same environment.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import api.learner_task
import api.ui
from api.auth import warn_if_open
from api.docs_page import mount_docs
from api.handlers import install_error_handlers
from api.metrics import ServiceMetrics
from api.request_guard import RequestGuard
from api.routes import (
    assign,
    decisions,
    experiments,
    features,
    health,
    insight,
    outcomes,
    power,
    recipients,
    results,
)
from api.security_headers import SecurityHeaders
from api.settings import Settings, settings_from_env
from api.throttle import FailedKeyThrottle
from api.warm_up import build_routes, start_warm_up
from experiments.drift_block import DriftAlertCache
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine

DESCRIPTION = """
SendLab chooses, per recipient and at send time, the variants of an email (subject line, call to
action, ...) by an A/B or multivariate design or by a bandit, logs each decision with its propensity,
takes outcomes back, learns, and reports what worked.

Authenticate with `Authorization: Bearer <key>`: the admin key may do everything, the send key may
only assign and post outcomes.
"""


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(template, status, time.perf_counter() - start)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's background threads: the pages' refresher and the learner (each per its settings)."""
    async with api.ui.lifespan(app), api.learner_task.lifespan(app):
        yield


def create_app(settings: Settings, *, service: ExperimentService | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings : Settings
        Database URL and keys.
    service : ExperimentService, optional
        An already built service (tests, embedding); by default one is built on ``settings.db``
        and its tables are created if missing (unless ``settings.create_tables`` is off).

    Returns
    -------
    FastAPI
        Routes under ``/v1``, ``/healthz``, ``/metrics``, the pages under ``/ui``, the OpenAPI page at
        ``/docs``; ``app.state`` holds ``settings``, ``service``, ``engine``, ``metrics`` and
        ``drift_alerts``. While the
        app runs (its lifespan), a thread refreshes the pages' numbers (``ui_refresh_seconds``) and
        another learns what the experiments' update schedules call for (``learner``).
    """
    engine = None
    if service is None:
        engine = make_engine(settings.db)
        if settings.create_tables:
            create_tables(engine)
        service = ExperimentService(engine)
    warn_if_open(settings)
    # the lifespan runs the pages' refresher and the learner (settings.ui_refresh_seconds, .learner)
    app = FastAPI(title="SendLab", version="1", description=DESCRIPTION.strip(), lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # /docs from local files (api.docs_page), no CDN
    mount_docs(app)
    app.state.settings = settings
    app.state.service = service
    app.state.engine = engine  # None when the service was passed in
    app.state.metrics = ServiceMetrics(settings.metrics_dir)
    app.state.drift_alerts = DriftAlertCache(ttl_seconds=60.0)  # /metrics: each log read once a minute
    install_error_handlers(app)
    routers = (experiments, assign, outcomes, decisions, results, power, features, health, insight,
               recipients)
    for module in routers:
        app.include_router(module.router)
    app.include_router(api.ui.router)  # the analyst's pages at /ui (their own key check, by cookie)
    app.include_router(power.ui_router)  # the power page's calculators, by the pages' session
    # keys and body caps before any route reads a body; the metrics (outermost) count their answers too
    app.state.throttle = FailedKeyThrottle()
    app.add_middleware(RequestGuard, get_settings=lambda: app.state.settings, throttle=app.state.throttle)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeaders)  # outermost: every answer, the guard's and errors' included
    return app


SERVER_GC_THRESHOLDS = (50_000, 20, 20)
"""CPython's cyclic collector thresholds in a served process (the default is ``(700, 10, 10)``)."""


def tune_garbage_collector() -> None:
    """Set :data:`SERVER_GC_THRESHOLDS` for this process.

    A 100,000-recipient batch allocates millions of objects (parsed body, decisions, rows, the answer)
    and almost none of them form cycles; with the default thresholds CPython interrupts it for
    thousands of collections, some of them over the whole heap. Measured in process on SQLite, the
    batch takes about a sixth less time with these (``benchmarks/api.py``). Cyclic garbage waits
    for at most 50,000 new objects. Process-wide, so only the served process calls it.
    """
    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def app_from_env() -> FastAPI:
    """The app configured by the environment (``SENDLAB_DB``, the key variables, ``SENDLAB_CONFIG``).

    This is the factory ``sendlab serve`` runs in each worker; it also tunes the worker's garbage
    collector (:func:`tune_garbage_collector`), builds its routes and warms the compiled kernels its
    experiments' policies need, in a background thread (:mod:`api.warm_up`).
    """
    tune_garbage_collector()
    app = create_app(settings_from_env())
    build_routes(app)
    start_warm_up(app.state.service)
    return app
