"""Who may see the pages: everyone when the service runs open, otherwise whoever holds the admin key.

The key is typed once into the key form and kept in the ``sendlab_key`` cookie (``SameSite=Strict``).
The cookie is readable by the page's own script on purpose: the power form sends it as the bearer key of
``POST /v1/power/rate``, which accepts only the ``Authorization`` header.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import HTTPException, Request

from api.auth import scopes_for_key
from api.settings import Settings

COOKIE = "sendlab_key"
LOGIN_PATH = "/ui/login"


def key_opens_pages(settings: Settings, key: str | None) -> bool:
    """True when the pages are open (no key configured) or ``key`` is the admin key."""
    if settings.open:
        return True
    return bool(key) and "admin" in scopes_for_key(settings, key or "")


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of the pages, else ``/ui`` (no open redirect to another site)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


def require_page_access(request: Request) -> None:
    """Dependency of the pages: redirect to the key form (303) unless the pages are open to the caller."""
    if key_opens_pages(request.app.state.settings, request.cookies.get(COOKIE)):
        return
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{LOGIN_PATH}?next={quote(target)}"
    raise HTTPException(303, "an admin key is needed", headers={"Location": location})


def require_call_access(request: Request) -> None:
    """Dependency of the pages' own JSON calls: 401 unless the pages are open to the caller."""
    if not key_opens_pages(request.app.state.settings, request.cookies.get(COOKIE)):
        raise HTTPException(401, f"an admin key is needed: enter it at {LOGIN_PATH}")
