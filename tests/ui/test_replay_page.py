"""The replay page in headless Chromium: pick an experiment and a candidate, read the estimates it shows,
then run the ``sendlab replay --json`` command the page prints (with the candidate file it prints) and
get the same numbers."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from tests.ui.conftest import ServerThread
from tests.ui.test_browser import browser, page  # noqa: F401 (fixtures)


def _shown(tab: Any, table: str) -> list[tuple[str, str, str, str]]:
    """``(policy, estimator, value text, interval text)`` of each row of a result table."""
    rows = tab.locator(f"{table} tbody tr")
    return [(rows.nth(i).get_attribute("data-policy"), rows.nth(i).get_attribute("data-estimator"),
             rows.nth(i).locator("td[data-key=value]").inner_text(),
             rows.nth(i).locator("td[data-key=ci]").inner_text()) for i in range(rows.count())]


def _run_shown_command(tab: Any, folder: Path) -> dict[str, Any]:
    """Write the page's candidate file into ``folder`` and run its command there, in process."""
    (folder / "candidate.yaml").write_text(tab.locator("#replay-candidate").inner_text(), encoding="utf-8")
    args = shlex.split(tab.locator("#replay-command").inner_text())
    assert args[:2] == ["sendlab", "replay"] and args[-1] == "--json"
    args[args.index("--policy") + 1] = str(folder / "candidate.yaml")
    result = CliRunner().invoke(cli, args[1:])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check_same(tab: Any, expected: dict[str, Any]) -> None:
    assert json.loads(tab.locator("#replay-json").text_content()) == expected
    rows = [("logged policy", expected["logged"])]
    rows += [(c["name"], e) for c in expected["candidates"] for e in c["estimates"]]
    shown = _shown(tab, "#replay-estimates")
    assert [(p, e) for p, e, *_ in shown] == [(p, e["estimator"]) for p, e in rows]
    for (_, _, value, ci), (_, e) in zip(shown, rows, strict=True):
        assert value == f"{e['value']:.4g}"
        # no interval (dm without a refit bootstrap): n/a, the warnings say why
        assert ci == ("n/a" if e["ci"][0] is None else f"{e['ci'][0]:.4g} to {e['ci'][1]:.4g}")
    lifts = [e for c in expected["candidates"] for e in c["lifts"]]
    assert [v for _, _, v, _ in _shown(tab, "#replay-lifts")] == [f"{e['value']:.4g}" for e in lifts]


def test_a_named_policy_replayed_on_the_page_equals_the_command(
    page: Any, open_server: ServerThread, tmp_path: Path  # noqa: F811
) -> None:
    page.goto(f"{open_server.base}/ui/replay")
    page.select_option("select[name=experiment]", "subject-bandit")
    page.check("input[name=candidate][value=policy]")
    page.select_option("select[name=policy]", "ucb")
    page.fill("input[name=options]", "{alpha: 1.5}")
    page.fill("input[name=seed]", "3")
    page.uncheck("input[name=estimators][value=dm]")
    page.click("#replay-form button[type=submit]")
    page.wait_for_selector("#replay-estimates")
    page.wait_for_function("document.querySelectorAll('#replay-result .main-svg').length >= 2")
    expected = _run_shown_command(page, tmp_path)
    assert [e["estimator"] for e in expected["candidates"][0]["estimates"]] == ["ips", "snips", "dr"]
    assert expected["candidates"][0]["name"] == "ucb" and expected["test_rows"] > 1000
    _check_same(page, expected)
    # the chart draws the logged policy and each estimate, with the values of the table
    drawn = page.evaluate("""() => document.querySelector('#replay-result .js-plotly-plot')._fullData
        .map(t => [t.name, t.x[0]])""")
    assert drawn == [["logged policy", expected["logged"]["value"]]] + [
        [f"ucb: {e['estimator']}", e["value"]] for e in expected["candidates"][0]["estimates"]]


def test_a_spec_replayed_on_the_page_equals_the_command(
    page: Any, open_server: ServerThread, tmp_path: Path  # noqa: F811
) -> None:
    page.goto(f"{open_server.base}/ui/replay")
    page.select_option("select[name=experiment]", "spring-sale")
    page.check("input[name=candidate][value=spec]")
    page.fill("textarea[name=spec]", "name: always urgent, shop\nvariant: subject=urgent|cta=shop\n")
    page.click("#replay-form button[type=submit]")
    page.wait_for_selector("#replay-estimates")
    expected = _run_shown_command(page, tmp_path)
    # a fixed variant is deterministic: the replay (rejection) estimator is added
    assert "replay" in [e["estimator"] for e in expected["candidates"][0]["estimates"]]
    _check_same(page, expected)


@pytest.mark.parametrize(("query", "field"), [
    ("experiment=subject-bandit&candidate=policy&policy=ucb&options=[1,2]", "options"),
    ("experiment=subject-bandit&candidate=spec&spec=", "spec"),
    ("experiment=subject-bandit&candidate=spec&spec=policy: nope", "spec"),
    ("experiment=no-such&candidate=policy&policy=ucb", "experiment"),
])
def test_a_bad_replay_form_names_its_field(
    page: Any, open_server: ServerThread, query: str, field: str  # noqa: F811
) -> None:
    response = page.goto(f"{open_server.base}/ui/replay?{query}")
    assert response.status in (404, 422)
    assert re.match(rf"^{field}\b", page.locator("#replay-error").inner_text())
    assert page.locator("#replay-estimates").count() == 0
