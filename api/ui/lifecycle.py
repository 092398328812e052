"""The pages' background refresher, started and stopped with the app (FastAPI's lifespan).

When ``settings.ui_refresh_seconds`` is above 0, the app's start-up launches a :class:`Refresher` that
recomputes the experiments' numbers at once and then every ``ui_refresh_seconds``, and pre-renders each
experiment page's default view; the app's shutdown stops it. While it runs, a cached value counts as
fresh for half of the stale limit, so visitors are answered from the cache and only a refresher that
fell far behind makes a request wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.ui.numbers import ExperimentNumbers, refresh_numbers
from api.ui.refresher import Refresher
from api.ui.routes import STALE_SECONDS, experiment_context, page_cache, page_key, results_cache

DEFAULT_VIEW = (0.05, "holm")  # the experiment page's alpha and correction without query parameters


def make_refresher(app: FastAPI, interval_seconds: float) -> Refresher:
    """A refresher (not started) of ``app``'s numbers: every experiment's, and the default view of each
    experiment page."""
    service = app.state.service

    def prerender(numbers: ExperimentNumbers) -> None:
        alpha, correction = DEFAULT_VIEW
        page_cache(app).remember(page_key(numbers, alpha, correction),
                                 lambda: experiment_context(numbers, alpha, correction))

    def refresh() -> None:
        refresh_numbers(service, results_cache(app), idle_after_seconds=STALE_SECONDS / 4,
                        after_each=prerender)

    return Refresher(refresh, interval_seconds)


def start_refresher(app: FastAPI) -> Refresher | None:
    """Start the refresher of ``app`` per its settings (None when ``ui_refresh_seconds`` is 0); kept on
    ``app.state.ui_refresher``."""
    seconds = app.state.settings.ui_refresh_seconds
    if not seconds:
        return None
    refresher = make_refresher(app, seconds)
    results_cache(app).ttl_seconds = STALE_SECONDS / 2  # the refresher keeps values far younger
    app.state.ui_refresher = refresher
    refresher.start()
    return refresher


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the pages' refresher while the app serves."""
    refresher = start_refresher(app)
    try:
        yield
    finally:
        if refresher is not None:
            refresher.stop()
