"""Bearer keys and scopes, below HTTP (the HTTP matrix is in test_routes_auth.py)."""

from __future__ import annotations

import logging

import pytest

from api.auth import AuthError, bearer_key, check_access, warn_if_open
from api.settings import Settings

KEYS = Settings(admin_key="admin-secret", send_key="send-secret")


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        ("abc", None),
    ],
)
def test_bearer_key_parsing(header, key):
    assert bearer_key(header) == key


@pytest.mark.parametrize(
    ("header", "scope", "status"),
    [
        (None, "send", 401),
        ("Bearer wrong", "send", 401),
        ("Bearer send-secret", "admin", 403),
        ("Bearer admin-secret-and-more", "admin", 401),
    ],
)
def test_refusals(header, scope, status):
    with pytest.raises(AuthError) as info:
        check_access(KEYS, header, scope)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("header", "scope"),
    [("Bearer admin-secret", "admin"), ("Bearer admin-secret", "send"), ("Bearer send-secret", "send")],
)
def test_grants(header, scope):
    check_access(KEYS, header, scope)


def test_send_key_alone_still_protects_admin_routes():
    settings = Settings(send_key="only-send")
    with pytest.raises(AuthError) as info:
        check_access(settings, "Bearer only-send", "admin")
    assert info.value.status == 403


def test_open_service_allows_everything_and_warns(caplog):
    check_access(Settings(), None, "admin")
    with caplog.at_level(logging.WARNING, logger="sendlab.api"):
        warn_if_open(Settings())
        warn_if_open(KEYS)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "OPEN" in caplog.records[0].getMessage()
