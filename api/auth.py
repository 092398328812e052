"""Bearer-key authentication with two scopes: ``admin`` (everything) and ``send`` (assign, outcomes)."""

from __future__ import annotations

import hmac
import logging
from typing import Literal

from api.settings import Settings

Scope = Literal["admin", "send"]

logger = logging.getLogger("sendlab.api")


class AuthError(Exception):
    """A request's key is missing, unknown (``status`` 401) or lacks the scope (``status`` 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _same(a: str | None, b: str) -> bool:
    return bool(a) and hmac.compare_digest(a.encode(), b.encode())  # type: ignore[union-attr]


def scopes_for_key(settings: Settings, key: str) -> frozenset[Scope]:
    """The scopes a presented key grants; empty when it matches no configured key."""
    if _same(settings.admin_key, key):
        return frozenset({"admin", "send"})
    if _same(settings.send_key, key):
        return frozenset({"send"})
    return frozenset()


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or ``None`` when absent or malformed."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def check_access(settings: Settings, authorization: str | None, needed: Scope) -> None:
    """Raise :class:`AuthError` unless the header's key grants ``needed`` (always allowed when open)."""
    if settings.open:
        return
    key = bearer_key(authorization)
    if key is None:
        raise AuthError(401, "missing credentials: send 'Authorization: Bearer <key>'")
    scopes = scopes_for_key(settings, key)
    if not scopes:
        raise AuthError(401, "unknown API key")
    if needed not in scopes:
        raise AuthError(403, f"this key may not do this: the {needed!r} scope is needed")


def warn_if_open(settings: Settings) -> None:
    """Log a warning when the service runs without any key."""
    if settings.open:
        logger.warning(
            "SENDLAB_ADMIN_KEY and SENDLAB_SEND_KEY are both unset: the service is OPEN, "
            "every request is allowed"
        )
