"""Who may see the pages: everyone when the service runs open, otherwise whoever has a session.

A session is opened by typing the admin key into the key form (:mod:`api.sessions`); the cookie holds a
signed, expiring token, never the key, and no script can read it (HttpOnly). State-changing calls of the
pages (the power form's JSON call, forgetting the session) carry the session's CSRF token.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import HTTPException, Request

from api.auth import scopes_for_key
from api.sessions import CSRF_HEADER, SESSION_COOKIE, csrf_is_valid, session_is_valid
from api.settings import Settings

LOGIN_PATH = "/ui/login"


def key_opens_pages(settings: Settings, key: str | None) -> bool:
    """True when the pages are open (no key configured) or ``key`` is the admin key."""
    if settings.open:
        return True
    return bool(key) and "admin" in scopes_for_key(settings, key or "")


def session_opens_pages(request: Request) -> bool:
    """True when the pages are open or the request's session cookie is valid."""
    settings = request.app.state.settings
    return settings.open or session_is_valid(settings, request.cookies.get(SESSION_COOKIE))


def csrf_holds(request: Request, presented: str | None) -> bool:
    """True when the pages are open or ``presented`` is the CSRF token of the request's session."""
    settings = request.app.state.settings
    return settings.open or csrf_is_valid(settings, request.cookies.get(SESSION_COOKIE), presented)


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of the pages, else ``/ui`` (no open redirect to another site)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


def require_page_access(request: Request) -> None:
    """Dependency of the pages: redirect to the key form (303) unless the pages are open to the caller."""
    if session_opens_pages(request):
        return
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{LOGIN_PATH}?next={quote(target)}"
    raise HTTPException(303, "an admin key is needed", headers={"Location": location})


def require_call_access(request: Request) -> None:
    """Dependency of the pages' own JSON calls: 401 without a session, 403 without its CSRF token."""
    if not session_opens_pages(request):
        raise HTTPException(401, f"a session is needed: enter the admin key at {LOGIN_PATH}")
    if not csrf_holds(request, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page")
