"""The pages at phone width (390 px) and by keyboard: nothing wider than the screen, every form field named
by a label, a calculator driven from the keyboard alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import ServerThread
from tests.ui.test_browser import browser  # noqa: F401 (fixture)

PHONE = {"width": 390, "height": 844}
PAGES = ["/ui", "/ui/experiments/subject-ab", "/ui/experiments/subject-bandit", "/ui/experiments/spring-sale",
         "/ui/power", "/ui/reports", "/ui/replay", "/ui/login",
         "/ui/replay?experiment=subject-bandit&candidate=policy&policy=thompson&train=true",
         "/ui/experiments/subject-ab?segment=device", "/v1/experiments/subject-ab/report"]


@pytest.fixture
def phone(browser: Any) -> Any:  # noqa: F811
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_a_page_fits_a_phone_screen(phone: Any, open_server: ServerThread, path: str) -> None:
    phone.goto(f"{open_server.base}{path}")
    phone.wait_for_load_state("load")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px screen"


def test_every_power_field_is_labelled_and_the_form_works_by_keyboard(
    phone: Any, open_server: ServerThread
) -> None:
    phone.goto(f"{open_server.base}/ui/power")
    unnamed = phone.evaluate("""() => Array.from(document.querySelectorAll('input, select'))
        .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')).map(el => el.name)""")
    assert unnamed == []
    phone.wait_for_function("document.getElementById('power-answer').dataset.state === 'done'")
    before = phone.locator("#power-total").inner_text()
    phone.focus("input[name=baseline]")
    phone.keyboard.press("Tab")  # to the effect field
    assert phone.evaluate("document.activeElement.name") == "mde"
    phone.keyboard.press("Control+A")
    phone.keyboard.type("0.2")
    phone.wait_for_function("old => document.getElementById('power-total')?.innerText !== old", arg=before)
    assert "recipients per arm" in phone.locator("#power-total").inner_text()


@pytest.mark.parametrize("path", [p for p in PAGES if p.startswith("/ui")])
def test_every_field_of_a_page_is_labelled(phone: Any, open_server: ServerThread, path: str) -> None:
    phone.goto(f"{open_server.base}{path}")
    unnamed = phone.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
        .map(el => el.name)""")
    assert unnamed == []


def test_the_replay_form_works_by_keyboard(phone: Any, open_server: ServerThread) -> None:
    phone.goto(f"{open_server.base}/ui/replay")
    phone.focus("select[name=experiment]")
    phone.keyboard.press("End")  # the last experiment in the list
    phone.focus("#replay-form button[type=submit]")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#replay-estimates")
    assert "experiment=" in phone.url


# WCAG 2.1 contrast of each text element's colour against the background it is drawn on
_LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = el => { for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor); if (c.length === 3 || c[3] > 0) return c; }
    return [255, 255, 255]; };
  const low = [];
  document.querySelectorAll('body *').forEach(el => {
    if (el.closest('.js-plotly-plot, script, style') || !el.offsetParent) return;
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) return;
    const style = getComputedStyle(el);
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) low.push([el.tagName, el.textContent.trim().slice(0, 30), ratio.toFixed(2)]);
  });
  return low;
}"""


@pytest.mark.parametrize("path", ["/ui", "/ui/experiments/subject-ab", "/ui/experiments/subject-bandit",
                                  "/ui/power", "/ui/replay", "/ui/reports"])
def test_text_has_enough_contrast(phone: Any, open_server: ServerThread, path: str) -> None:
    phone.goto(f"{open_server.base}{path}")
    phone.wait_for_load_state("load")
    assert phone.evaluate(_LOW_CONTRAST) == []
