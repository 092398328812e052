"""Every calculator of the power page answers in headless Chromium, and what it shows is the API's JSON for
the same request, written for people (thousands separators, no exponents)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.ui.conftest import ServerThread
from tests.ui.test_browser import browser, page  # noqa: F401 (fixtures)

# calculator section -> the answers it must show
CALCULATORS = {
    "rate-mde": ["mde_absolute", "mde_relative", "treatment_rate"],
    "rate-power": ["power", "mde_absolute"],
    "mean-size": ["per_arm", "total", "days"],
    "mean-mde": ["mde_absolute", "effect_size"],
    "mean-power": ["power", "effect_size"],
    "test-then-send": ["per_arm", "test_share", "expected_conversions"],
    "sequential": ["inflation", "sequential_n", "expected_sample_ratio"],
    "bandit-plan": ["losing_share_bandit", "losing_share_fixed", "prob_bandit_picks_best"],
}


def _read(tab: Any, section: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The request the calculator sent and its shown answers (key -> text), once it answered."""
    answer = f"#{section} .calc-answer"
    tab.wait_for_function(f"document.querySelector('{answer}').dataset.state === 'done'")
    body = json.loads(tab.locator(answer).get_attribute("data-body"))
    cells = tab.locator(f"{answer} td[data-key]")
    shown = {cells.nth(i).get_attribute("data-key"): cells.nth(i).text_content()
             for i in range(cells.count())}
    headline = tab.locator(f"{answer} > table td[data-key]")
    first = [headline.nth(i).get_attribute("data-key") for i in range(headline.count())]
    assert first == tab.locator(f"#{section} form").get_attribute("data-answer").split(","), first
    return body, shown


def _matches(text: str, value: Any) -> bool:
    if value is None:
        return text == "n/a"
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, str):
        return text == value
    if isinstance(value, list):
        parts = text.split(", ")
        return len(parts) == len(value) and all(_matches(p, v) for p, v in zip(parts, value, strict=True))
    if "e" in text.lower():
        return False  # 5.318e+04 is not how people write numbers
    return float(text.replace(",", "")) == pytest.approx(value, rel=1e-3, abs=1e-12)


def test_every_power_calculator_answers_as_the_api(page: Any, open_server: ServerThread) -> None:  # noqa: F811
    page.goto(f"{open_server.base}/ui/power")
    for section, needed in CALCULATORS.items():
        body, shown = _read(page, section)
        endpoint = page.locator(f"#{section} form").get_attribute("data-endpoint")
        reply = httpx.post(f"{open_server.base}{endpoint}", json=body, timeout=60)
        assert reply.status_code == 200, (section, reply.text)
        expected = reply.json()
        for key in needed:
            assert key in shown, (section, key, shown)
        for key, text in shown.items():
            assert _matches(text, expected[key]), (section, key, text, expected[key])
        assert page.locator(f"#{section} .method").inner_text() == expected["method"]


def test_a_calculator_answers_again_as_you_type_and_names_a_bad_field(
    page: Any, open_server: ServerThread  # noqa: F811
) -> None:
    page.goto(f"{open_server.base}/ui/power")
    _, first = _read(page, "mean-size")
    page.fill("#mean-size input[name=mde]", "0.1")  # twice the effect: about a quarter of the recipients
    page.wait_for_function(
        "old => document.querySelector('#mean-size td[data-key=per_arm]')?.innerText !== old",
        arg=first["per_arm"],
    )
    _, second = _read(page, "mean-size")
    before, after = (int(s["per_arm"].replace(",", "")) for s in (first, second))
    assert after == pytest.approx(before / 4, rel=0.01)
    page.fill("#mean-size input[name=sd]", "-1")
    page.wait_for_function("document.querySelector('#mean-size .calc-answer').classList.contains('warn')")
    assert page.locator("#mean-size .calc-answer").inner_text().startswith("sd")  # the service's message
    assert page.locator("#mean-size td[data-key]").count() == 0  # no stale answer beside the error


def _drawn(tab: Any, section: str) -> list[dict[str, Any]]:
    """The traces plotly drew in a calculator's chart, once it answered: name, x and y."""
    tab.wait_for_function(f"document.querySelector('#{section} .calc-chart').dataset.state === 'done'")
    return tab.evaluate(f"""() => document.querySelector('#{section} .calc-chart')._fullData
        .map(t => ({{name: t.name, x: Array.from(t.x), y: Array.from(t.y)}}))""")


# calculator section -> (the curve it draws, over what) for the power calculators
CURVES = {"rate-mde": ("/v1/power/rate/curve", "effect"), "rate-power": ("/v1/power/rate/curve", "n"),
          "mean-size": ("/v1/power/mean/curve", "n"), "mean-mde": ("/v1/power/mean/curve", "effect"),
          "mean-power": ("/v1/power/mean/curve", "n")}


def test_every_calculator_draws_its_chart_from_the_api(page: Any, open_server: ServerThread) -> None:  # noqa: F811
    page.goto(f"{open_server.base}/ui/power")
    for section in CALCULATORS:
        body, _ = _read(page, section)
        traces = _drawn(page, section)
        endpoint = page.locator(f"#{section} form").get_attribute("data-endpoint")
        reply = httpx.post(f"{open_server.base}{endpoint}", json=body, timeout=60).json()
        assert page.locator(f"#{section} .calc-chart .main-svg").count() >= 1, section
        # the method line stands just above the chart
        assert page.locator(f"#{section} .calc-answer + .calc-chart").count() == 1
        assert page.locator(f"#{section} .method").inner_text() == reply["method"]
        if section in CURVES:
            curve_endpoint, over = CURVES[section]
            request = json.loads(page.locator(f"#{section} .calc-chart").get_attribute("data-body"))
            assert request["over"] == over and "daily" not in request
            assert {k: v for k, v in request.items() if k != "over"}.items() <= body.items()
            curve = httpx.post(f"{open_server.base}{curve_endpoint}", json=request, timeout=60).json()
            assert traces[0]["x"] == pytest.approx(curve["x"])
            assert traces[0]["y"] == pytest.approx(curve["power"])
            assert traces[1]["x"][0] == pytest.approx(curve["x_at_target"])
            # the calculator's own answer is marked on its curve
            marked = {"rate-mde": (reply.get("mde_absolute"), body.get("power")),
                      "rate-power": (body.get("n_per_arm"), reply.get("power")),
                      "mean-size": (reply.get("per_arm"), body.get("power")),
                      "mean-mde": (reply.get("mde_absolute"), body.get("power")),
                      "mean-power": (body.get("n_per_arm"), reply.get("power"))}[section]
            assert (traces[2]["x"][0], traces[2]["y"][0]) == pytest.approx(marked)
        elif section == "test-then-send":
            assert traces[0]["x"] == pytest.approx(reply["shares"])
            assert traces[0]["y"] == pytest.approx(reply["expected_by_share"])
            assert (traces[1]["x"][0], traces[1]["y"][0]) == pytest.approx(
                (reply["test_share"], reply["expected_conversions"]))
        elif section == "sequential":
            fixed = reply["fixed_n"]
            assert traces[0]["y"] == pytest.approx(
                [fixed, fixed * reply["inflation"], fixed * reply["expected_sample_ratio"]])
        else:
            assert traces[0]["y"] == pytest.approx(reply["losing_share_by_batch"])
            assert traces[1]["y"] == pytest.approx([reply["losing_share_fixed"]] * 2)
