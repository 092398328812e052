"""The experiment page of a learning policy shows the adaptive estimates beside the as-allocated rates."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analysis.adaptive import AS_ALLOCATED_NOTE
from experiments.adaptive_block import adaptive_results
from tests.ui.conftest import build_app


@pytest.fixture(scope="module")
def client(seeded: Any) -> TestClient:
    return TestClient(build_app(seeded, keys=False))


def test_bandit_page_shows_the_adaptive_section_and_labels_the_rest(client: TestClient, seeded: Any) -> None:
    key = "subject-bandit"
    page = html.unescape(client.get(f"/ui/experiments/{key}").text)
    expected = adaptive_results(seeded, seeded.summarize(key))
    assert expected is not None
    assert 'id="adaptive"' in page and "Estimates if every eligible recipient got each variant" in page
    assert "Policy value" in page and "uniform split" in page and "as run" in page
    decision = expected.slots[0].decision
    assert f"Decision: {decision.verdict}" in page and decision.reason in page
    assert f"this section are {AS_ALLOCATED_NOTE}" in " ".join(page.split())


def test_fixed_split_page_has_no_adaptive_section(client: TestClient) -> None:
    page = client.get("/ui/experiments/subject-ab").text
    assert 'id="adaptive"' not in page and "Policy value" not in page


def test_contextual_page_shows_the_cross_fitted_estimates(client: TestClient) -> None:
    page = html.unescape(client.get("/ui/experiments/spring-sale").text)
    assert 'id="adaptive"' in page and "AIPW" in page and "cross-fitted" in page
