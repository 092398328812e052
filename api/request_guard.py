"""What every request passes before a route reads it: the throttle, the key, then the body's size.

:class:`RequestGuard` is an ASGI middleware. A client that failed too many keys gets 429
(:mod:`api.throttle`). For a call under ``/v1`` (and ``/metrics`` unless it is configured open) of a
service with keys, the
``Authorization`` header must carry a configured key before one byte of the body is read (an unknown
key is a 401 at once; whether the key has the route's scope is still the route's business, a 403).
Then the body is read up to its route's cap (:func:`body_cap`): a declared ``Content-Length`` above it
is a 413 before reading, a body that grows past it while read a 413 when it does. A JSON body under
``/v1`` that is not Unicode text (UTF-16, a lone surrogate escape: :mod:`api.json_text`) is a 422.
A body that passes is given whole to the route, which parses it as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import AuthError, check_access
from api.json_text import body_problem
from api.settings import Settings
from api.throttle import FailedKeyThrottle
from experiments.limits import (
    MAX_BODY_BYTES,
    MAX_BULK_BODY_BYTES,
    MAX_FEATURES_BODY_BYTES,
    MAX_FORM_BODY_BYTES,
    MAX_PREVIEW_BODY_BYTES,
    MAX_SPEC_BODY_BYTES,
)

#: Routes with their own body cap, by path; every other route takes :data:`MAX_BODY_BYTES`.
_CAPS_BY_PATH: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^/v1/experiments/[^/]+/assign/batch/?$"), MAX_BULK_BODY_BYTES),
    (re.compile(r"^/v1/outcomes/?$"), MAX_BULK_BODY_BYTES),
    (re.compile(r"^/v1/features/compute/?$"), MAX_FEATURES_BODY_BYTES),
    (re.compile(r"^/v1/experiments/?$"), MAX_SPEC_BODY_BYTES),
    (re.compile(r"^/v1/experiments/[^/]+/preview(/report)?/?$"), MAX_PREVIEW_BODY_BYTES),
    (re.compile(r"^/ui(/|$)"), MAX_FORM_BODY_BYTES),
)


def body_cap(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    for pattern, cap in _CAPS_BY_PATH:
        if pattern.match(path):
            return cap
    return MAX_BODY_BYTES


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def too_large_reason(cap: int) -> str:
    return f"request body too large: this route takes at most {_size(cap)} ({cap:,} bytes)"


class BodyTooLarge(Exception):
    """The body passed its route's cap while it was read."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def send_json(send: Send, status: int, body: object, headers: dict[str, str] | None = None) -> None:
    """Answer a request from the middleware with a JSON body."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive, cap: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as more than ``cap`` bytes came."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` in one message, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestGuard:
    """Authenticate ``/v1`` calls before their body is read, and cap every body by route (413).

    ``settings`` is read through ``get_settings`` on each request (the app's state), so that a test or
    an embedding that swaps the settings is obeyed.
    """

    def __init__(
        self, app: ASGIApp, get_settings: Callable[[], Settings], throttle: FailedKeyThrottle
    ) -> None:
        self.app = app
        self.get_settings = get_settings
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        settings = self.get_settings()
        keyed = path.startswith("/v1/") or path == "/v1" or (path == "/metrics" and not settings.metrics_open)
        guessing = keyed or (path == "/ui/login" and scope.get("method") == "POST")
        client = (scope.get("client") or ("unknown",))[0]
        if guessing and not settings.open:
            wait = self.throttle.retry_after(client)
            if wait is not None:
                reason = f"too many failed keys from this client: try again in {wait} s"
                await send_json(send, 429, {"detail": reason}, {"Retry-After": str(wait)})
                return
        if keyed:
            authorization = _header(scope, b"authorization")
            try:
                check_access(settings, authorization, "send")
            except AuthError as exc:
                if exc.status == 401:  # any configured key passes here; a missing scope is the route's 403
                    if authorization:
                        self.throttle.record_failure(client)
                    await send_json(send, 401, {"detail": exc.message}, {"WWW-Authenticate": "Bearer"})
                    return
        cap = body_cap(path)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            await send_json(send, 413, {"detail": too_large_reason(cap)})
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") and declared is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, cap)
        except BodyTooLarge:
            await send_json(send, 413, {"detail": too_large_reason(cap)})
            return
        if body and path.startswith("/v1/") and _is_json(_header(scope, b"content-type")):
            problem = body_problem(body)
            if problem is not None:
                await send_json(send, 422, problem)
                return
        await self.app(scope, replaying(body, receive), send)


def _is_json(content_type: str | None) -> bool:
    """A body FastAPI would read as JSON: declared so, or not declared at all."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")
