"""Sessions of the pages (``/ui``): a signed, expiring token in a cookie, and the CSRF token tied to it.

Typing the admin key into the key form opens a session: the ``sendlab_session`` cookie (HttpOnly,
``SameSite=Strict``, ``Secure`` over HTTPS) holds ``<expires>.<nonce>.<signature>``, never the key. The
signature is an HMAC-SHA256 under a secret derived from the admin key, so every worker process checks
a token without shared state, a token cannot be forged or extended, it lapses after
:data:`SESSION_SECONDS`, and changing the admin key ends every session at once. Each session has a
CSRF token (an HMAC of the session token under the same secret): every form of the pages carries it,
and the pages' own JSON calls send it as ``X-CSRF-Token``; a state-changing call without it is refused.

The key form comes before any session, so it has its own token: showing the form sets the
``sendlab_login`` cookie (a random nonce, HttpOnly, ``SameSite=Strict``, sent only to the form's
path) and the form carries the nonce's HMAC; a typed key is checked only when both match, so another
site cannot post its own key into this browser's pages (login CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from api.settings import Settings

SESSION_COOKIE = "sendlab_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_COOKIE = "sendlab_login"
#: How long a shown key form may be sent (one hour).
LOGIN_FORM_SECONDS = 3600
#: How long a session lasts after the key was typed (eight hours).
SESSION_SECONDS = 8 * 3600


def _secret(settings: Settings) -> bytes:
    key = settings.admin_key or ""
    return hmac.new(key.encode(), b"sendlab ui session v1", hashlib.sha256).digest()


def _sign(settings: Settings, text: str, purpose: bytes) -> str:
    digest = hmac.new(_secret(settings), purpose + text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_session(settings: Settings, now: float | None = None) -> str:
    """A new session token, valid for :data:`SESSION_SECONDS` from ``now``."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    payload = f"{expires}.{secrets.token_urlsafe(18)}"
    return f"{payload}.{_sign(settings, payload, b'session:')}"


def session_is_valid(settings: Settings, token: str | None, now: float | None = None) -> bool:
    """True when ``token`` was issued under this admin key and has not expired."""
    if not token or not settings.admin_key or token.count(".") != 2:
        return False
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _sign(settings, payload, b"session:").encode()):
        return False
    expires = payload.split(".", 1)[0]
    return expires.isdigit() and int(expires) > (time.time() if now is None else now)


def csrf_token(settings: Settings, session: str | None) -> str:
    """The CSRF token of a session ('' without one: the pages are open then)."""
    return _sign(settings, session, b"csrf:") if session else ""


def csrf_is_valid(settings: Settings, session: str | None, presented: str | None) -> bool:
    """True when ``presented`` is the CSRF token of a valid ``session``."""
    if not presented or not session_is_valid(settings, session):
        return False
    return hmac.compare_digest(presented.encode(), csrf_token(settings, session).encode())


def issue_login_nonce() -> str:
    """A fresh nonce for the key form's cookie."""
    return secrets.token_urlsafe(18)


def login_token(settings: Settings, nonce: str | None) -> str:
    """The key form's CSRF token of ``nonce`` ('' without one)."""
    return _sign(settings, nonce, b"login:") if nonce else ""


def login_token_is_valid(settings: Settings, nonce: str | None, presented: str | None) -> bool:
    """True when ``presented`` is the key form's token of the ``nonce`` in the browser's cookie."""
    if not nonce or not presented:
        return False
    return hmac.compare_digest(presented.encode(), login_token(settings, nonce).encode())
