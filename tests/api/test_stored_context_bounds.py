"""A recorded context value is bounded (string length, nesting, items), on SQLite and PostgreSQL:
a 422 at its field, and nothing of the call is stored."""

from __future__ import annotations

from typing import Any

import pytest

from experiments.limits import MAX_CONTEXT_DEPTH, MAX_CONTEXT_ITEMS, MAX_CONTEXT_STRING_LENGTH
from tests.api.conftest import SEND
from tests.api.test_bad_input import any_client, problem, stored_rows  # noqa: F401 - any_client: a fixture

ASSIGN = "/v1/experiments/hello/assign"
BATCH = "/v1/experiments/hello/assign/batch"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD = [
    ("x" * (MAX_CONTEXT_STRING_LENGTH + 1), f"at most {MAX_CONTEXT_STRING_LENGTH:,} characters"),
    (["x" * (MAX_CONTEXT_STRING_LENGTH + 1)], f"at most {MAX_CONTEXT_STRING_LENGTH:,} characters"),
    (list(range(MAX_CONTEXT_ITEMS + 1)), f"at most {MAX_CONTEXT_ITEMS:,} items"),
    (nested(MAX_CONTEXT_DEPTH + 1), f"at most {MAX_CONTEXT_DEPTH} levels"),
]


@pytest.mark.parametrize(("value", "reason"), BAD)
def test_a_recorded_value_beyond_the_bounds_is_422_and_nothing_is_stored(any_client, value, reason):  # noqa: F811
    client = any_client
    before = stored_rows(client)
    single = {"recipient_id": "r", "context": {"country": value}}
    loc, msg = problem(client.post(ASSIGN, json=single, headers=SEND))
    assert loc == ["body", "context", "country"] and reason in msg
    body = {"recipients": [{"recipient_id": "a"}, {"recipient_id": "b", "context": {"country": value}}]}
    loc, msg = problem(client.post(BATCH, json=body, headers=SEND))
    assert loc == ["body", "recipients", 1, "context", "country"] and reason in msg
    assert stored_rows(client) == before


def test_values_at_the_bounds_are_stored(any_client) -> None:  # noqa: F811
    client = any_client
    at_bounds = ("é" * MAX_CONTEXT_STRING_LENGTH, list(range(MAX_CONTEXT_ITEMS)),
                 nested(MAX_CONTEXT_DEPTH - 1))
    for value in at_bounds:
        body = {"recipient_id": "r", "context": {"country": value}}
        response = client.post(ASSIGN, json=body, headers=SEND)
        assert response.status_code == 200, response.text
