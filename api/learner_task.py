"""The background learner of a ``sendlab serve`` worker, started and stopped with the app (its lifespan).

When ``settings.learner`` is on, the app's start-up launches a thread that checks every
``settings.learner_poll_seconds`` which running adaptive experiments their spec's ``design.update``
says are due, and learns them (:class:`experiments.learner.ScheduledLearner`); the app's shutdown stops
it after the check in progress. Requests never wait for it: assign and outcome posting only write.
Every worker runs one; the experiment's learning lock makes them take turns, so one learns at a time.
Turn it off (``SENDLAB_LEARNER=off``, ``sendlab serve --no-learner``) where ``sendlab learn KEY
--watch`` runs learning as its own process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from experiments.learner import LearnerThread, ScheduledLearner

#: How long the app's shutdown waits for a learning run in progress to end.
STOP_TIMEOUT_SECONDS = 30.0


def start_learner(app: FastAPI) -> LearnerThread | None:
    """Start ``app``'s background learner per its settings (None when ``learner`` is off); kept on
    ``app.state.learner``."""
    settings = app.state.settings
    if not settings.learner:
        return None
    learner = ScheduledLearner(app.state.service)
    thread = LearnerThread(learner.check_all, settings.learner_poll_seconds)
    app.state.learner = thread
    thread.start()
    return thread


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the background learner while the app serves."""
    thread = start_learner(app)
    try:
        yield
    finally:
        if thread is not None:
            thread.stop(STOP_TIMEOUT_SECONDS)
