"""``/docs``: the OpenAPI page, served with Swagger UI's files from the installed ``swagger-ui-bundle``
package (Apache-2.0), so that it works without the internet. Without that package there is no
``/docs`` page (``/openapi.json`` stays); nothing is ever loaded from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"


def swagger_ui_folder() -> Path | None:
    """The folder of Swagger UI's files in the installed package, or None when it is not installed."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def mount_docs(app: FastAPI) -> bool:
    """Serve ``/docs`` from local files; return whether it could."""
    folder = swagger_ui_folder()
    if folder is None:
        return False
    app.mount(ASSETS_PATH, StaticFiles(directory=folder), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )

    return True
