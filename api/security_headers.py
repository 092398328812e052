"""Security headers on every answer: no sniffing, no framing, and a content security policy.

The pages (``/ui``) load scripts and styles from the service itself only (no inline script runs;
plotly.js compiles some functions from strings, hence ``'unsafe-eval'``, and draws with inline
styles); the replay and simulation reports they serve are self-contained HTML with inline scripts, so
they run sandboxed (an opaque origin: no cookie, no call to the service). Every other answer may not be
framed either.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
REPORT_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; frame-ancestors 'none'"
)
OTHER_POLICY = "frame-ancestors 'none'"


def policy_for(path: str) -> str:
    """The ``Content-Security-Policy`` of an answer to ``path``."""
    if path.startswith("/ui/reports/"):
        return REPORT_POLICY
    if path == "/ui" or path.startswith("/ui/"):
        return PAGE_POLICY
    return OTHER_POLICY


class SecurityHeaders:
    """Add ``Content-Security-Policy``, ``X-Frame-Options``, ``X-Content-Type-Options`` and
    ``Referrer-Policy`` to every HTTP answer (a route's own value of one of them is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [
            (b"content-security-policy", policy_for(scope["path"]).encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
