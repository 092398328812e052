"""A segment or covariate attribute with a non-ASCII name is read like any other, on SQLite and
PostgreSQL (SQLite matches JSON keys as stored, escapes and all)."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, SEND, SPEC


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def segmented(request: pytest.FixtureRequest, make_client, sqlite_url: str) -> TestClient:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    client = make_client(url)
    spec = copy.deepcopy(SPEC)
    spec["record"] = ["länd", "kaufkraft_€"]
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    for i in range(60):
        context = {"länd": "DE" if i % 2 else "AT", "kaufkraft_€": i}
        body = {"recipient_id": f"r{i}", "context": context}
        response = client.post("/v1/experiments/hello/assign", json=body, headers=SEND)
        assert response.status_code == 200
    return client


def test_a_non_ascii_segment_attribute_is_found(segmented) -> None:
    body = segmented.get("/v1/experiments/hello/results?segment=länd", headers=ADMIN).json()
    segments = body["segments"]
    assert segments["missing"] == 0, segments
    assert segments["values"] == {"AT": 30, "DE": 30}


def test_a_non_ascii_covariate_attribute_is_found(segmented) -> None:
    body = segmented.get("/v1/experiments/hello/results?covariate=kaufkraft_€", headers=ADMIN).json()
    assert (body["covariate"]["observed"], body["covariate"]["missing"]) == (60, 0)
