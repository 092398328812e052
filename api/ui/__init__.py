"""The analyst's web pages at ``/ui`` (server-rendered, plotly.js served locally).

Mount with ``app.include_router(api.ui.router)``.
"""

from api.ui.routes import router

__all__ = ["router"]
