"""Typing a key into the pages' key form from a test client: show the form (its cookie holds the login
nonce), then post the key with the form's token, as a browser does."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def login_token(client: Any) -> str:
    """Show the key form; the token its hidden field carries."""
    page = client.get("/ui/login")
    found = re.search(r'name="csrf_token" id="login-csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def post_key(client: Any, key: str, next_path: str = "/ui", **options: Any) -> Any:
    """Post ``key`` through the key form, with a freshly shown form's token."""
    body = urlencode({"key": key, "next": next_path, "csrf_token": login_token(client)})
    return client.post("/ui/login", content=body, headers=FORM, **options)
