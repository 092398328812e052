"""The analyst's web pages at ``/ui`` (server-rendered, plotly.js served locally).

Mount with ``app.include_router(api.ui.router)``; pass ``lifespan=api.ui.lifespan`` to ``FastAPI`` to
keep their numbers warm in the background (:mod:`api.ui.lifecycle`).
"""

from api.ui import replay
from api.ui.lifecycle import lifespan
from api.ui.routes import router

router.include_router(replay.router)

__all__ = ["lifespan", "router"]
