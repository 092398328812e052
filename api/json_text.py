"""JSON bodies that are not Unicode text, found in their bytes before any route parses them.

A JSON body is UTF-8 (RFC 8259). Python's parser also reads UTF-16 and UTF-32 bytes, and turns an
escaped lone surrogate (``"\\udfff"``) into a string that no store keeps and no answer can hold; both
are refused here with a 422 on ``body`` (a surrogate at the path of its string).
"""

from __future__ import annotations

import json
import re
from typing import Any

from experiments.text import SURROGATE_REASON, has_lone_surrogate

NOT_UTF8_REASON = "not UTF-8 text: a JSON body is UTF-8 (UTF-16 and UTF-32 are refused)"

#: A high surrogate escape not followed by a low one, or a low one not preceded by a high one. It may
#: also match text that only looks so (an escaped backslash before ``udfff``): a match is confirmed by
#: parsing the body.
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD])[c-fC-F][0-9a-fA-F]{2})"
)


def is_utf8_json_text(body: bytes) -> bool:
    """Whether ``body`` is UTF-8 text that could be JSON: no NUL byte (UTF-16 and UTF-32 put one next
    to every ASCII character, and JSON text never holds one raw) and valid UTF-8."""
    if b"\x00" in body:
        return False
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def lone_surrogate_path(body: bytes) -> list[str | int] | None:
    """The path (``["recipients", 3, "context", "city"]``) of a string or key of the JSON ``body`` that
    holds a lone surrogate, or None when it holds none or is not JSON (the route says so). The body is
    parsed only when its bytes seem to spell a lone surrogate escape."""
    if not _LONE_SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if has_lone_surrogate(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if has_lone_surrogate(key):
                    return [*path, key.encode("utf-8", "backslashreplace").decode()]
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(value))
    return None


def body_problem(body: bytes) -> dict[str, Any] | None:
    """The 422 answer for a JSON body that is not Unicode text, or None when it is."""
    if not is_utf8_json_text(body):
        return {"detail": [{"loc": ["body"], "msg": NOT_UTF8_REASON}]}
    path = lone_surrogate_path(body)
    if path is None:
        return None
    return {"detail": [{"loc": ["body", *path], "msg": SURROGATE_REASON}]}
