"""One colour per variant: every chart of every page and of the HTML report, read back from what plotly
drew in headless Chromium (its full trace data and the SVG legend swatches), gives a variant the
Okabe-Ito colour of its position in the spec."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.palette import OKABE_ITO
from tests.ui.conftest import ServerThread
from tests.ui.test_browser import _charts_rendered, browser, page  # noqa: F401 (fixtures)

# api/examples/spring-sale.yaml, shared by the three seeded experiments
SLOT_TO_VARIANTS = {"subject": ["plain", "urgent", "personal"], "cta": ["shop", "see"]}
EXPECTED = {(slot, v): OKABE_ITO[k] for slot, vs in SLOT_TO_VARIANTS.items() for k, v in enumerate(vs)}

# each drawn chart: its title, and per trace its name and the colour it was drawn in
_READ_CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  title: (gd._fullLayout.title && gd._fullLayout.title.text) || '',
  traces: gd._fullData.filter(t => t.type === 'bar' || t.type === 'scatter').map(t => ({
    name: t.name, legend: t.showlegend,
    colour: t.type === 'bar' || !t.line ? t.marker.color : t.line.color})),
  swatches: Array.from(gd.querySelectorAll('.legend .traces')).map(item => {
    const path = item.querySelector('.legendlines path, .legendfill path, .legendpoints path');
    return {name: item.querySelector('.legendtext').textContent,
            colour: path ? (path.style.stroke !== 'none' && path.style.stroke ? path.style.stroke
                                                                             : path.style.fill) : null};
  }),
}))"""


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def _variant_colours(tab: Any) -> list[tuple[str, str, str, str]]:
    """``(chart title, variant, drawn colour, legend swatch colour)`` of every variant line or bar."""
    found = []
    for chart in tab.evaluate(_READ_CHARTS):
        slot = chart["title"].split(":")[0]
        swatch = {s["name"]: s["colour"] for s in chart["swatches"]}
        for t in chart["traces"]:
            if (slot, t["name"]) in EXPECTED and t["legend"] is not False:
                found.append((chart["title"], t["name"], t["colour"], swatch.get(t["name"])))
    return found


def _check(found: list[tuple[str, str, str, str]]) -> set[str]:
    for title, variant, colour, swatch in found:
        slot = title.split(":")[0]
        assert colour.upper() == EXPECTED[(slot, variant)], (title, variant, colour)
        assert swatch == _rgb(EXPECTED[(slot, variant)]), (title, variant, swatch)
    return {title for title, *_ in found}


@pytest.mark.parametrize("key", ["subject-ab", "subject-bandit", "spring-sale"])
def test_a_variant_has_one_colour_on_every_chart_of_the_page_and_report(
    page: Any, open_server: ServerThread, key: str  # noqa: F811
) -> None:
    page.goto(f"{open_server.base}/ui/experiments/{key}")
    figures = page.locator("script.figure").count()
    _charts_rendered(page, 2 * figures)
    titles = _check(_variant_colours(page))
    # the allocation, cumulative-rate and posterior charts of both slots, and the learning charts
    for slot in SLOT_TO_VARIANTS:
        assert any(t.startswith(f"{slot}: allocation") for t in titles), titles
        assert any(t.startswith(f"{slot}: cumulative") for t in titles), titles
        assert any(t.startswith(f"{slot}: posterior") for t in titles), titles
        if key == "subject-bandit":
            assert f"{slot}: policy probabilities by version" in titles
        if key == "spring-sale":
            assert f"{slot}: decisions by policy version" in titles
    page.goto(f"{open_server.base}/v1/experiments/{key}/report")
    _charts_rendered(page, 2)
    report_titles = _check(_variant_colours(page))
    for slot in SLOT_TO_VARIANTS:
        assert any(t.startswith(f"{slot}: posterior") for t in report_titles), report_titles
