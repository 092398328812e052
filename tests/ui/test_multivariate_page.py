"""A multivariate experiment's page in headless Chromium: the factorial table with its interaction row (as
``/results`` answers it), and each variant in the colour it has on every other page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import ServerThread, build_app
from tests.ui.seed import seeded_service
from tests.ui.test_browser import _charts_rendered, browser, page  # noqa: F401 (fixtures)
from tests.ui.test_colours import SLOT_TO_VARIANTS, _check, _variant_colours


@pytest.fixture(scope="module")
def factorial_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    folder: Path = tmp_path_factory.mktemp("ui-factorial")
    service = seeded_service(f"sqlite:///{folder / 'mv.db'}", rounds=2, multivariate=True)
    with ServerThread(build_app(service, keys=False, reports=folder)) as server:
        yield server


def test_the_multivariate_page_shows_the_interaction_row(page: Any, factorial_server: ServerThread) -> None:  # noqa: F811
    base = factorial_server.base
    page.goto(f"{base}/ui/experiments/subject-cta")
    factorials = httpx.get(f"{base}/v1/experiments/subject-cta/results", timeout=60).json()["factorials"]
    (click,) = [f for f in factorials if f["metric"] == "click"]
    interactions = [r for r in click["rows"] if r["kind"] == "interaction"]
    assert [r["term"] for r in interactions] == ["subject=urgent x cta=see", "subject=personal x cta=see"]
    table = page.locator("#factorial-click table.factorial-table")
    shown = table.locator("tr.interaction")
    assert shown.count() == len(interactions)
    for i, r in enumerate(interactions):
        cells = shown.nth(i).locator("td").all_inner_texts()
        assert cells[0] == r["term"] and cells[1] == "interaction"
        assert float(cells[2].replace(",", "")) == pytest.approx(r["odds_ratio"], rel=1e-3)


def test_a_variant_keeps_its_colour_on_the_multivariate_page(
    page: Any, factorial_server: ServerThread  # noqa: F811
) -> None:
    page.goto(f"{factorial_server.base}/ui/experiments/subject-cta")
    _charts_rendered(page, 2 * page.locator("script.figure").count())
    titles = _check(_variant_colours(page))  # the colours of every other page (test_colours.EXPECTED)
    for slot in SLOT_TO_VARIANTS:
        assert any(t.startswith(f"{slot}: allocation") for t in titles), titles
