"""The ``drift`` block of ``/results`` and the drift gauge of ``/metrics``, through HTTP, on a driven clock:
one send a day, clicks drawn from known rates, a learning run after each send."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import api.ui.routes
from api.app import create_app
from api.cli import app as cli
from api.settings import Settings
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY
from tests.ui.login import post_key

DAYS = 14
VARIANTS = ("plain", "urgent")
SIZE = 300


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'drift.db'}"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def timed(tmp_path) -> Iterator[tuple[TestClient, Clock]]:
    engine = make_engine(db_url(tmp_path))
    create_tables(engine)
    clock = Clock()
    app = create_app(Settings(db="sqlite://", admin_key=ADMIN_KEY, send_key=SEND_KEY),
                     service=ExperimentService(engine, clock=clock, seed=3))
    yield TestClient(app), clock
    engine.dispose()


def spec(key: str, design: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "slots": {"subject": {"variants": [{"id": v, "content": f"Subject {v}"} for v in VARIANTS]}},
        "design": {**design, "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "window_hours": 24},
        "consent": {"missing": "allow"},  # the recipients carry no consent attribute
    }


def run_days(client: TestClient, clock: Clock, key: str, design: Mapping[str, Any],
             rate: Callable[[int, str], float], *, seed: int, days: range = range(DAYS)) -> None:
    """One send of :data:`SIZE` a day for each of ``days`` (all :data:`DAYS` by default; the experiment
    is created on day 0), clicks at ``rate(day, variant)``, learning after each send (bandits); then the
    clock moves past the last reward window."""
    if days.start == 0:
        created = client.post("/v1/experiments", json=spec(key, design), headers=ADMIN)
        assert created.status_code == 201, created.text
    rng = np.random.default_rng(seed)
    event = days.start * SIZE
    for day in days:
        recipients = [{"recipient_id": f"{key}-{day}-{i}"} for i in range(SIZE)]
        answer = client.post(f"/v1/experiments/{key}/assign/batch", json={"recipients": recipients},
                             headers=SEND)
        assert answer.status_code == 200, answer.text
        events = []
        for decision in answer.json()["decisions"]:
            if rng.random() < rate(day, decision["variants"]["subject"]["id"]):
                event += 1
                events.append({"event_id": f"{key}-e{event}", "decision_id": decision["decision_id"],
                               "type": "click"})
        assert client.post("/v1/outcomes", json={"events": events}, headers=SEND).status_code == 200
        if design["type"] == "bandit":
            assert client.post(f"/v1/experiments/{key}/learn", headers=ADMIN).status_code == 200
        clock.now += timedelta(days=1)
    clock.now += timedelta(days=2)


def drift(client: TestClient, key: str) -> dict[str, Any]:
    answer = client.get(f"/v1/experiments/{key}/results", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["drift"]


def stationary(day: int, variant: str) -> float:
    return {"plain": 0.10, "urgent": 0.20}[variant]


def changing(day: int, variant: str) -> float:
    """urgent is the better subject for the first week, then it falls well below plain."""
    if day < 7:
        return stationary(day, variant)
    return {"plain": 0.10, "urgent": 0.03}[variant]


BANDIT = {"type": "bandit", "policy": "thompson"}
AB = {"type": "ab"}


@pytest.mark.parametrize("design", [BANDIT, AB], ids=["bandit", "ab"])
def test_stationary_rates_raise_no_alert(timed, design) -> None:
    client, clock = timed
    run_days(client, clock, "calm", design, stationary, seed=11)
    block = drift(client, "calm")
    assert block["alert"] is False and block["first_alarm_day"] is None
    assert block["detector"] == "two-sided CUSUM of standardised residuals"
    # bandit: day 0 is chosen by the prior alone; fixed split: day 0 has no earlier days
    assert [p["day"] for p in block["points"]] == list(range(1, DAYS))
    assert all(p["decisions"] == SIZE for p in block["points"])
    total_observed = sum(p["observed"] for p in block["points"])
    total_predicted = sum(p["predicted"] for p in block["points"])
    assert abs(total_observed - total_predicted) < 0.1 * total_predicted
    if design is BANDIT:  # each day judged by the snapshot that chose it: one version a day
        assert len({p["policy_version"] for p in block["points"]}) == DAYS - 1


@pytest.mark.parametrize("design", [BANDIT, AB], ids=["bandit", "ab"])
def test_rates_that_change_raise_the_alert_after_the_change(timed, design) -> None:
    client, clock = timed
    run_days(client, clock, "shift", design, changing, seed=11)
    block = drift(client, "shift")
    assert block["alert"] is True
    assert 7 <= block["first_alarm_day"] <= 9
    before = [p for p in block["points"] if p["day"] < 7]
    assert not any(p["alarm"] for p in before)
    # the residual after the change is strongly negative: the policy expected more than it earned
    assert next(p for p in block["points"] if p["day"] == 7)["residual"] < -2


def test_days_whose_window_is_open_are_not_judged(timed) -> None:
    client, clock = timed
    run_days(client, clock, "open", BANDIT, stationary, seed=5)
    clock.now -= timedelta(days=2)  # the last send's 24-hour window is still open
    assert max(p["day"] for p in drift(client, "open")["points"]) == DAYS - 2


def test_an_experiment_without_decisions_has_an_empty_block(timed) -> None:
    client, _ = timed
    assert client.post("/v1/experiments", json=spec("empty", BANDIT), headers=ADMIN).status_code == 201
    block = drift(client, "empty")
    assert block["alert"] is False and block["points"] == []


def test_metrics_hold_a_drift_gauge_per_experiment(timed) -> None:
    client, clock = timed
    run_days(client, clock, "calm", BANDIT, stationary, seed=11)
    run_days(client, clock, "shift", AB, changing, seed=11)
    text = client.get("/metrics", headers=SEND).text  # either key reads the metrics
    assert "# TYPE sendlab_drift_alert gauge" in text
    assert 'sendlab_drift_alert{experiment="calm"} 0' in text.splitlines()
    assert 'sendlab_drift_alert{experiment="shift"} 1' in text.splitlines()


def test_the_drift_gauge_turns_on_when_the_alert_appears(timed) -> None:
    client, clock = timed

    def gauge() -> str:
        lines = client.get("/metrics", headers=SEND).text.splitlines()
        return next(line for line in lines if line.startswith('sendlab_drift_alert{experiment="turn"}'))

    run_days(client, clock, "turn", AB, changing, seed=11, days=range(7))  # before urgent falls
    assert gauge().endswith(" 0")
    run_days(client, clock, "turn", AB, changing, seed=11, days=range(7, DAYS))
    assert drift(client, "turn")["alert"] is True
    assert gauge().endswith(" 1")  # days later: the alert held from the first scrape has expired


def test_analyze_prints_the_drift_table_and_json(timed, tmp_path) -> None:
    client, clock = timed
    run_days(client, clock, "shift", BANDIT, changing, seed=11)
    runner = CliRunner()
    table = runner.invoke(cli, ["analyze", "shift", "--db", db_url(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "CUSUM +" in table.output and "ALARM" in table.output
    assert "drift: ALERT from day " in table.output
    data = json.loads(runner.invoke(cli, ["analyze", "shift", "--db", db_url(tmp_path), "--json"]).output)
    assert data["drift"]["alert"] is True
    assert data["drift"]["points"] == drift(client, "shift")["points"]


def test_a_fixed_split_watches_each_arm_on_its_own(timed, tmp_path) -> None:
    client, clock = timed
    run_days(client, clock, "arms", AB, changing, seed=11)
    run_days(client, clock, "policy", BANDIT, changing, seed=11)
    block = drift(client, "arms")
    plain, urgent = block["arms"]
    assert (plain["variants"], urgent["variants"]) == ({"subject": "plain"}, {"subject": "urgent"})
    # urgent falls on day 7: its own detector alarms within two sends, plain's stays quiet
    assert urgent["alert"] is True and urgent["first_alarm_day"] in (7, 8)
    assert plain["alert"] is False
    assert all(p["decisions"] < SIZE for p in urgent["points"])  # the arm's share of each send
    assert block["alert"] is True and block["first_alarm_day"] <= urgent["first_alarm_day"]
    assert urgent["false_alarm_rate"] == pytest.approx(block["false_alarm_rate"] / 4)
    assert drift(client, "policy")["arms"] == []  # a bandit's days are judged by what it learned
    table = CliRunner().invoke(cli, ["analyze", "arms", "--db", db_url(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "  subject=plain: no alert over 13 judged days" in table.output
    assert f"  subject=urgent: ALERT from day {urgent['first_alarm_day']}" in table.output


def test_the_page_lists_the_last_judged_days_and_says_how_many_more(timed, monkeypatch) -> None:
    client, clock = timed
    run_days(client, clock, "long", AB, stationary, seed=2)
    points = drift(client, "long")["points"]
    monkeypatch.setattr(api.ui.routes, "DRIFT_TABLE_ROWS", 5)
    assert post_key(client, ADMIN_KEY).status_code in (200, 303)
    page = client.get("/ui/experiments/long")
    assert page.status_code == 200
    table = page.text.split('id="drift-points"')[1].split("</table>")[0]
    days = [int(d) for d in re.findall(r'<tr><td class="r">(\d+)</td>', table)]
    assert days == [p["day"] for p in points[-5:]]  # the last five, in order
    note = re.sub(r"\s+", " ", page.text.split('id="drift-points-note">')[1].split("</p>")[0])
    assert f"the last 5 of the {len(points)} judged days" in note
    monkeypatch.setattr(api.ui.routes, "DRIFT_TABLE_ROWS", len(points))
    del client.app.state.ui_pages  # the page cache: draw the page anew
    page = client.get("/ui/experiments/long")
    assert 'id="drift-points-note"' not in page.text  # all shown: no note
