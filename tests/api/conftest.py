"""Fixtures of the API tests: an app on a throwaway database, keys, and a small spec."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings

ADMIN_KEY = "test-admin-key"
SEND_KEY = "test-send-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SEND = {"Authorization": f"Bearer {SEND_KEY}"}

SPEC: dict[str, Any] = {
    "key": "hello",
    "name": "Subject and CTA",
    "slots": {
        "subject": {"variants": [{"id": "plain", "content": "Hello {{ first_name }}"},
                                 {"id": "urgent", "content": "Last chance"}]},
        "cta": {"variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]},
    },
    "design": {"type": "multivariate"},
    # the tests' recipients carry no consent attribute: the spec takes a missing one as consent
    "consent": {"missing": "allow"},
    "reward": {"events": {"click": 1.0, "conversion": 5.0}, "guardrails": ["unsubscribe"]},
}


def make_spec(**changes: Any) -> dict[str, Any]:
    """A copy of :data:`SPEC` with top-level fields replaced."""
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


def answer_without(answer: Any, *omit: str) -> dict[str, Any]:
    """A planning answer's ``to_dict()`` without ``omit``: the JSON of an effect or power question,
    which leaves out the arm sizes (``sizes``) that only the size question has."""
    return {k: v for k, v in answer.to_dict().items() if k not in ("sizes", *omit)}


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sendlab.db'}"


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient on a database URL, with both keys set unless told otherwise."""
    clients: list[TestClient] = []

    def build(db: str, *, admin_key: str | None = ADMIN_KEY, send_key: str | None = SEND_KEY) -> TestClient:
        client = TestClient(create_app(Settings(db=db, admin_key=admin_key, send_key=send_key)))
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
        if client.app.state.engine is not None:
            client.app.state.engine.dispose()


@pytest.fixture
def client(make_client, sqlite_url) -> TestClient:
    return make_client(sqlite_url)


@pytest.fixture
def experiment(client) -> str:
    """The key of a created multivariate experiment."""
    response = client.post("/v1/experiments", json=SPEC, headers=ADMIN)
    assert response.status_code == 201, response.text
    return SPEC["key"]


@pytest.fixture
def sent(client, experiment):
    """2,000 recipients assigned; clicks drawn at 5% for subject 'plain' and 10% for 'urgent'."""
    rng = np.random.default_rng(11)
    recipients = [{"recipient_id": f"s-{i}"} for i in range(2000)]
    decisions = client.post(f"/v1/experiments/{experiment}/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    rate = {"plain": 0.05, "urgent": 0.10}
    clicked = [rng.random() < rate[d["variants"]["subject"]["id"]] for d in decisions]
    events = [{"event_id": f"c-{i}", "decision_id": d["decision_id"], "type": "click"}
              for i, (d, c) in enumerate(zip(decisions, clicked, strict=True)) if c]
    events += [{"event_id": f"u-{i}", "decision_id": d["decision_id"], "type": "unsubscribe"}
               for i, d in enumerate(decisions[:30])]
    counts = client.post("/v1/outcomes", json={"events": events}, headers=SEND).json()
    assert counts["accepted"] == len(events)
    return decisions, clicked
