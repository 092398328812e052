"""The pages in headless Chromium against a real server (uvicorn on a loopback port) seeded like the demo.

Charts count as rendered when plotly drew their SVG (``.main-svg``). Screenshots go to a temporary
folder (printed). Skipped when ``/usr/bin/chromium`` or playwright is missing, unless
``SENDLAB_REQUIRE_BROWSER=1`` (then it fails).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import ADMIN_KEY, ServerThread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000


def _unavailable() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt package chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason:
        if os.environ.get("SENDLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ui-screenshots")
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that refuses (and records) every request leaving the loopback interface."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def guard(route: Any) -> None:
        if re.match(r"^https?://127\.0\.0\.1[:/]", route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert outside == [], f"the pages asked for something off this machine: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


def _charts_rendered(tab: Any, expected: int) -> int:
    tab.wait_for_function(f"document.querySelectorAll('.main-svg').length >= {expected}")
    return tab.locator(".main-svg").count()


def test_experiment_list_shows_status_traffic_and_srm(
    page: Any, open_server: ServerThread, shots: Path
) -> None:
    page.goto(f"{open_server.base}/ui")
    rows = page.locator("#experiments tbody tr")
    assert rows.count() == 3
    text = page.locator("#experiments").inner_text()
    for key in ("spring-sale", "subject-ab", "subject-bandit"):
        assert key in text
    ab = page.locator("#experiments tbody tr", has_text="subject-ab")
    assert "running" in ab.inner_text()
    assert re.search(r"ok \(p = ", ab.inner_text())  # an A/B test gets a sample-ratio p-value
    bandit = page.locator("#experiments tbody tr", has_text="subject-bandit")
    assert "not applicable" in bandit.inner_text()
    traffic = int(ab.locator("td").nth(4).inner_text().replace(",", ""))
    assert traffic == 3 * 1500  # three sends of 1,500 recipients, every one logged
    page.screenshot(path=str(shots / "experiments.png"), full_page=True)


@pytest.mark.parametrize("key", ["subject-ab", "subject-bandit", "spring-sale"])
def test_experiment_page_draws_its_charts(
    page: Any, open_server: ServerThread, seeded: Any, shots: Path, key: str
) -> None:
    page.goto(f"{open_server.base}/ui/experiments/{key}")
    figures = page.locator("script.figure").count()
    assert figures >= 2
    # plotly draws two .main-svg layers per figure; every figure must have drawn
    assert _charts_rendered(page, 2 * figures) >= 2 * figures
    verdicts = page.locator(".verdict").all_inner_texts()
    assert verdicts and all(v.strip() for v in verdicts)
    if key == "subject-ab":
        # subject: plain (control), urgent, personal; guardrail: unsubscribe
        assert page.locator("#slot-subject table.lift tbody tr").count() >= 2
        assert page.locator("#slot-subject table.bayes tbody tr").count() >= 3
        assert page.locator("#slot-subject table.guardrails tbody tr").count() == 2
        assert page.locator("#slot-cta table.guardrails tbody tr").count() == 1
        assert "holm" in page.inner_text("main")
    if key != "subject-ab":
        version, _ = seeded.policy_state(key)
        assert version >= 4  # the first snapshot, then one learning step after each of the three sends
        assert page.locator("#policy-version").inner_text().strip() == str(version)
    if key == "subject-bandit":
        # the learning chart of each slot: drawn, one line per variant
        for slot, n_variants in [("subject", 3), ("cta", 2)]:
            assert page.locator(f"#policy-{slot} .main-svg").count() >= 2  # plotly draws two or more layers
            assert page.locator(f"#policy-{slot} .scatterlayer .trace").count() == n_variants
        assert page.locator("#explored-days tr").count() == 1 + 3  # a header, then the three send days
    if key == "spring-sale":
        # the contextual learning chart of each slot: one line per variant and one of the explored share,
        # one point per policy version that made decisions (one per send)
        learning = seeded.learning(key)
        made = [v for v in learning.versions if v.decisions]
        for slot, n_variants in [("subject", 3), ("cta", 2)]:
            chart = page.locator(f"#versions-{slot}")
            assert chart.locator(".main-svg").count() >= 2
            assert chart.locator(".scatterlayer .trace").count() == n_variants + 1
            assert chart.locator(".scatterlayer .trace").first.locator(".point").count() == len(made) == 3
            assert "decisions by policy version" in chart.locator(".gtitle").text_content()
        assert page.locator("#policy-subject").count() == 0
    if key != "subject-ab":
        learning = seeded.learning(key)
        assert page.locator("#learned").inner_text().strip() == f"{learning.learned_decisions:,}"
        assert float(page.locator("#learned-reward").inner_text()) == pytest.approx(learning.learned_reward,
                                                                                     rel=1e-5)
    page.screenshot(path=str(shots / f"experiment-{key}.png"), full_page=True)


def _answer(page: Any) -> str:
    page.wait_for_function("document.getElementById('power-answer').dataset.state === 'done'")
    return page.locator("#power-answer").inner_text()


def _per_arm(text: str) -> int:
    found = re.search(r"([\d,]+) recipients per arm", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def _power_form_answers(page: Any, base: str, headers: dict[str, str], shots: Path, name: str) -> None:
    page.goto(f"{base}/ui/power")
    first = _answer(page)
    _charts_rendered(page, 2)
    expected = httpx.post(f"{base}/v1/power/rate", headers=headers,
                          json={"baseline": 0.03, "mde": 0.1, "relative": True, "daily": 50000}).json()
    assert _per_arm(first) == expected["per_arm"]
    page.fill("input[name=mde]", "0.2")  # a larger effect needs fewer recipients
    page.wait_for_function(
        "old => !document.getElementById('power-answer').innerText.includes(old)", arg=first.splitlines()[0]
    )
    second = _answer(page)
    expected = httpx.post(f"{base}/v1/power/rate", headers=headers,
                          json={"baseline": 0.03, "mde": 0.2, "relative": True, "daily": 50000}).json()
    assert _per_arm(second) == expected["per_arm"] < _per_arm(first)
    title = page.locator("#power-chart .gtitle").text_content()
    assert "Power of a rate test" in title and "effect 0.006" in title  # redrawn for 20% of 0.03
    page.fill("input[name=baseline]", "1.5")  # a bad value: the service's message, naming the field
    page.wait_for_function("document.getElementById('power-answer').innerText.includes('baseline')")
    assert "baseline" in _answer(page)
    assert page.locator("#power-chart .main-svg").count() == 0  # no stale curve beside the error
    page.screenshot(path=str(shots / name), full_page=True)


def test_power_form_answers_as_you_type(page: Any, open_server: ServerThread, shots: Path) -> None:
    _power_form_answers(page, open_server.base, {}, shots, "power.png")


def test_reports_are_listed_and_open(
    page: Any, open_server: ServerThread, reports_folder: Path, shots: Path
) -> None:
    from simulations.column_maps import load_column_map
    from simulations.replay_files import replay_files
    from simulations.report import replay_html
    from simulations.streaming import ReplayRequest

    examples = Path(__file__).resolve().parents[2] / "simulations" / "examples"
    request = ReplayRequest(probabilities=examples / "probabilities.csv", estimators=("ips", "snips"))
    replay = replay_files(examples / "foreign_sends.csv", load_column_map(examples / "columns.yaml"), request)
    (reports_folder / "replay-example.html").write_text(replay_html(replay.replay), encoding="utf-8")
    page.goto(f"{open_server.base}/ui/reports")
    assert page.locator("#reports tbody tr").count() == 1
    page.click("text=replay-example.html")
    page.wait_for_url("**/ui/reports/replay-example.html")
    _charts_rendered(page, 1)
    page.screenshot(path=str(shots / "report.png"), full_page=True)


def test_pages_ask_for_the_admin_key(page: Any, keyed_server: ServerThread, shots: Path) -> None:
    base = keyed_server.base
    page.goto(f"{base}/ui/experiments/subject-ab")
    assert "/ui/login" in page.url
    page.fill("input[name=key]", "not-the-key")
    page.click("form.keyform button")
    assert "not the admin key" in page.locator("#login-error").inner_text()
    page.fill("input[name=key]", ADMIN_KEY)
    page.click("form.keyform button")
    page.wait_for_url("**/ui/experiments/subject-ab")  # back where it was going
    _charts_rendered(page, 2)
    _power_form_answers(page, base, {"Authorization": f"Bearer {ADMIN_KEY}"}, shots, "power-keyed.png")
    page.click("text=Forget key")
    page.goto(f"{base}/ui")
    assert "/ui/login" in page.url


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/ui/login")
    page.fill("input[name=key]", ADMIN_KEY)
    page.click("form.keyform button")
    page.wait_for_url("**/ui")


def test_the_session_cookie_is_httponly_and_not_the_key(page: Any, keyed_server: ServerThread) -> None:
    _log_in(page, keyed_server.base)
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "sendlab_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN_KEY not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # no script of the page can read it


def test_a_forged_post_without_the_csrf_token_is_refused(page: Any, keyed_server: ServerThread) -> None:
    base = keyed_server.base
    _log_in(page, base)
    statuses = page.evaluate("""async () => {
        const logout = await fetch('/ui/logout', {method: 'POST', body: new URLSearchParams({x: '1'}),
                                                  redirect: 'manual'});
        const curve = await fetch('/ui/power/curve', {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({baseline: 0.03, mde: 0.1})});
        return [logout.status, curve.status];
    }""")
    assert statuses == [403, 403]
    page.goto(f"{base}/ui")  # still in session: the forged logout changed nothing
    assert "/ui/login" not in page.url
    page.click("text=Forget key")  # the page's own form carries the token
    page.goto(f"{base}/ui")
    assert "/ui/login" in page.url


def test_every_page_sends_the_security_headers(page: Any, keyed_server: ServerThread) -> None:
    base = keyed_server.base
    _log_in(page, base)
    for path in ("/ui", "/ui/power", "/ui/experiments/subject-ab", "/ui/reports", "/ui/login"):
        headers = page.goto(f"{base}{path}").all_headers()
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self' 'unsafe-eval';" in policy, path
