"""The experiment page shows what ``/results`` answers: the results by segment and CUPED-adjusted (chosen on
the page), the outcomes left out, the drift block beside "is it learning?", and for a multivariate
design the factorial table's interaction row. Read in headless Chromium against ``/results``'s JSON."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ui.conftest import ServerThread
from tests.ui.test_browser import _charts_rendered, browser, page  # noqa: F401 (fixtures)


def _results(base: str, key: str, **params: str) -> dict[str, Any]:
    reply = httpx.get(f"{base}/v1/experiments/{key}/results", params=params, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_segments_are_chosen_on_the_page_and_match_the_api(page: Any, open_server: ServerThread) -> None:  # noqa: F811
    page.goto(f"{open_server.base}/ui/experiments/subject-ab")
    page.select_option("#segment-form select[name=segment]", "device")
    page.click("#segment-form button")
    page.wait_for_selector("#segments table.segments")
    assert "segment=device" in page.url
    expected = _results(open_server.base, "subject-ab", segment="device")["segments"]
    rows = page.locator("#segments table.segments tr:has(td)")
    shown = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    wanted = [(r["segment"], r["variant"], r["metric"], r["p_value_adjusted"])
              for s in expected["by_slot"] for r in s["rows"]]
    assert [(s[0], s[1], s[2]) for s in shown] == [w[:3] for w in wanted]
    for s, w in zip(shown, wanted, strict=True):
        assert float(s[6]) == pytest.approx(w[3], rel=1e-2, abs=1e-3)


def test_cuped_is_chosen_on_the_page_and_matches_the_api(page: Any, open_server: ServerThread) -> None:  # noqa: F811
    page.goto(f"{open_server.base}/ui/experiments/subject-ab")
    page.select_option("#covariate-form select[name=covariate]", "recency_days")
    page.click("#covariate-form button")
    page.wait_for_selector("#cuped table.cuped")
    api = _results(open_server.base, "subject-ab", covariate="recency_days")
    expected = [c["variance_reduction"] for a in api["analyses"] for c in a["comparisons"]
                if c.get("variance_reduction") is not None]
    shown = page.locator("#cuped td[data-key=variance_reduction]").all_inner_texts()
    assert expected and len(shown) == len(expected)
    for text, value in zip(shown, expected, strict=True):
        assert float(text.rstrip("%")) == pytest.approx(100 * value, abs=0.051)
    assert "recency_days" in page.locator("#cuped").inner_text()


def test_a_bad_attribute_is_named_on_the_page(page: Any, open_server: ServerThread) -> None:  # noqa: F811
    response = page.goto(f"{open_server.base}/ui/experiments/subject-ab?covariate=first_name")
    assert response.status == 422
    assert page.locator("#breakdown-error").inner_text().startswith("covariate: 'first_name'")
    response = page.goto(f"{open_server.base}/ui/experiments/subject-ab?covariate=device&segment=device")
    assert response.status == 422 and "not both" in page.locator("#breakdown-error").inner_text()


@pytest.mark.parametrize("key", ["subject-ab", "subject-bandit", "spring-sale"])
def test_the_drift_block_and_the_exclusions_match_the_api(
    page: Any, open_server: ServerThread, key: str  # noqa: F811
) -> None:
    page.goto(f"{open_server.base}/ui/experiments/{key}")
    api = _results(open_server.base, key)
    drift = api["drift"]
    assert drift["points"], "the seeded sends are four days apart: some days are judged"
    alert = page.locator("#drift-alert").inner_text()
    assert ("Drift alert" in alert) == drift["alert"]
    rows = page.locator("#drift-points tbody tr")
    assert rows.count() == len(drift["points"])
    for i, p in enumerate(drift["points"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert (int(cells[0]), int(cells[1]), int(cells[2].replace(",", ""))) == (
            p["day"], p["policy_version"], p["decisions"])
        assert float(cells[3]) == pytest.approx(p["predicted"], rel=1e-3)
        assert float(cells[5]) == pytest.approx(p["residual"], rel=1e-2, abs=1e-3)
    chart = page.locator("#drift .js-plotly-plot")
    page.wait_for_function("document.querySelectorAll('#drift .main-svg').length >= 2")
    earned = page.evaluate("() => document.querySelector('#drift .js-plotly-plot')._fullData[1].y")
    assert earned == pytest.approx([p["observed"] / p["decisions"] for p in drift["points"]])
    assert chart.count() == 1
    excluded = api["excluded"]
    text = page.locator("#exclusions").inner_text()
    late = f"{excluded['late']:,} outside the reward window (timed before their decision or after the window)"
    assert late in text
    if key != "subject-ab":  # beside "is it learning?" of each slot, a word on drift
        assert page.locator("#slot-subject a[href='#drift']").count() == 1
