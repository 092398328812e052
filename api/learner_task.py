"""The background learner of a ``sendlab serve`` worker, started and stopped with the app (its lifespan).

When ``settings.learner`` is on, the app's start-up launches a thread that checks every
``settings.learner_poll_seconds`` which running adaptive experiments their spec's ``design.update``
says are due, and learns them (:class:`experiments.learner.ScheduledLearner`); the app's shutdown stops
it after the check in progress. Requests never wait for it: assign and outcome posting only write.
Every worker runs one; the experiment's learning lock makes them take turns, so one learns at a time.
Turn it off (``SENDLAB_LEARNER=off``, ``sendlab serve --no-learner``) where ``sendlab learn KEY
--watch`` runs learning as its own process.

With ``settings.retention_days`` (``SENDLAB_RETENTION_DAYS``) the same thread also drops the stored
contexts and feature versions past the retention period, at most once an hour
(:class:`experiments.retention.ScheduledPrune`); with the learner off, run ``sendlab db prune`` on a
schedule instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from experiments.learner import LearnerThread, ScheduledLearner
from experiments.retention import ScheduledPrune

log = logging.getLogger(__name__)

#: How long the app's shutdown waits for a learning run in progress to end.
STOP_TIMEOUT_SECONDS = 30.0


def start_learner(app: FastAPI) -> LearnerThread | None:
    """Start ``app``'s background learner per its settings (None when ``learner`` is off); kept on
    ``app.state.learner``."""
    settings = app.state.settings
    if not settings.learner:
        return None
    service = app.state.service
    learner = ScheduledLearner(service)
    tick: Callable[[], object] = learner.check_all
    if settings.retention_days is not None:
        prune = ScheduledPrune(service.engine, service.clock, settings.retention_days)
        tick = _learn_and_prune(learner, prune)
    thread = LearnerThread(tick, settings.learner_poll_seconds)
    app.state.learner = thread
    thread.start()
    return thread


def _learn_and_prune(learner: ScheduledLearner, prune: ScheduledPrune) -> Callable[[], None]:
    """One check of the loop: learn what is due, then drop the contexts past retention if due (a
    failing prune is logged and leaves learning to go on)."""

    def tick() -> None:
        learner.check_all()
        try:
            prune.check()
        except Exception:
            log.exception("background learner: dropping contexts past retention failed")

    return tick


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the background learner while the app serves."""
    thread = start_learner(app)
    try:
        yield
    finally:
        if thread is not None:
            thread.stop(STOP_TIMEOUT_SECONDS)
