"""Machine-made outcomes (a flag on the event, or a user agent the spec lists) over HTTP and the CLI:
left out of results by default and counted, included on request, never learned from."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import ADMIN, SEND

SPEC = {
    "key": "bots",
    "slots": {"subject": {"variants": [{"id": "plain", "content": "Hello"},
                                       {"id": "urgent", "content": "Now"}]}},
    "consent": {"missing": "allow"},
    "design": {"type": "ab"},
    "reward": {"events": {"click": 1.0}, "window_hours": 24,
               "machine_user_agents": ["Barracuda", "mimecast"]},
}
SCANNER = "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def events_for(decision_ids: list[str]) -> list[dict]:
    """10 human clicks, 5 flagged machine clicks, 3 clicks by a listed scanner (one spelled in lower
    case), a click by a phone, a human click and a flagged click two days late: on 21 decisions."""
    late = (datetime.now(UTC) + timedelta(hours=48)).isoformat()
    d = decision_ids
    events = [{"event_id": f"human-{i}", "decision_id": d[i], "type": "click"} for i in range(10)]
    events += [{"event_id": f"flag-{i}", "decision_id": d[i], "type": "click", "machine": True}
               for i in range(10, 15)]
    events += [{"event_id": f"ua-{i}", "decision_id": d[i], "type": "click", "user_agent": SCANNER}
               for i in range(15, 17)]
    events += [{"event_id": "ua-17", "decision_id": d[17], "type": "click",
                "user_agent": "MIMECAST link checker"}]
    events += [{"event_id": "phone", "decision_id": d[18], "type": "click", "user_agent": PHONE}]
    events += [{"event_id": "late", "decision_id": d[19], "type": "click", "timestamp": late}]
    events += [{"event_id": "late-bot", "decision_id": d[20], "type": "click", "timestamp": late,
                "machine": True}]
    return events


def clicks(body: dict) -> int:
    return sum(arm["events"].get("click", 0) for arm in body["arms"])


def test_machine_events_over_http(client):
    assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
    recipients = [{"recipient_id": f"r{i}"} for i in range(40)]
    decisions = client.post("/v1/experiments/bots/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    answer = client.post("/v1/outcomes", json={"events": events_for([x["decision_id"] for x in decisions])},
                         headers=SEND)
    assert answer.json() == {"accepted": 21, "duplicates": 0, "orphans": 0, "erased": 0}

    default = client.get("/v1/experiments/bots/results?detail=false", headers=ADMIN).json()
    assert clicks(default) == 11  # 10 human clicks and the phone's
    assert default["excluded"] == {"machine": 9, "late": 1}  # 5 flagged + 3 scanners + the late bot
    assert default["machine_events"] == {"count": 9, "included": False}

    included = client.get("/v1/experiments/bots/results?detail=false&include_machine=true",
                          headers=ADMIN).json()
    assert clicks(included) == 19  # and the 8 machine clicks inside the window
    assert included["excluded"] == {"machine": 0, "late": 2}  # both late clicks, the bot's too
    assert included["machine_events"] == {"count": 9, "included": True}

    page = client.get("/v1/experiments/bots/report", headers=ADMIN)
    assert page.status_code == 200
    assert "outcomes left out: 9 machine-made (include them with include_machine), 1 outside the reward " \
           "window (timed before their decision or after the window)" in page.text
    page = client.get("/v1/experiments/bots/report?include_machine=true", headers=ADMIN)
    assert ("outcomes left out: 2 outside the reward window (timed before their decision or after the "
            "window); 9 machine-made events are counted") in page.text
    bad = client.get("/v1/experiments/bots/results?include_machine=perhaps", headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "include_machine"]


@pytest.mark.parametrize(
    ("event", "loc"),
    [
        ({"user_agent": "x" * 1025}, ["body", "events", 0, "user_agent"]),
        ({"user_agent": 7}, ["body", "events", 0, "user_agent"]),
        ({"machine": "sometimes"}, ["body", "events", 0, "machine"]),
        ({"agent": "Barracuda"}, ["body", "events", 0, "agent"]),  # unknown fields are still refused
    ],
)
def test_bad_machine_fields_are_422_naming_the_field(client, event, loc):
    body = {"events": [{"event_id": "e", "decision_id": "d", "type": "click", **event}]}
    response = client.post("/v1/outcomes", json=body, headers=SEND)
    assert response.status_code == 422
    assert loc in [p["loc"] for p in response.json()["detail"]]


def test_machine_events_through_the_cli(tmp_path):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def sendlab(*args: str):
        return runner.invoke(app, [*args, "--db", db])

    spec = tmp_path / "bots.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    assert sendlab("experiments", "create", str(spec)).exit_code == 0
    send = tmp_path / "send.csv"
    send.write_text("recipient_id\n" + "".join(f"r{i}\n" for i in range(40)))
    out = tmp_path / "decisions.jsonl"
    assert sendlab("assign", "bots", "--file", str(send), "--out", str(out)).exit_code == 0
    ids = [json.loads(line)["decision_id"] for line in out.read_text().splitlines()]
    path = tmp_path / "events.csv"
    columns = ["event_id", "decision_id", "type", "timestamp", "machine", "user_agent"]
    with path.open("w", newline="") as handle:  # empty cells: no value given
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for e in events_for(ids):
            writer.writerow({**e, "machine": "true" if e.get("machine") else ""})
    recorded = sendlab("outcomes", str(path), "--json")
    assert json.loads(recorded.output) == {"accepted": 21, "duplicates": 0, "orphans": 0, "erased": 0}

    default = json.loads(sendlab("analyze", "bots", "--json").output)
    assert clicks(default) == 11
    assert default["excluded"] == {"machine": 9, "late": 1}
    included = json.loads(sendlab("analyze", "bots", "--json", "--include-machine").output)
    assert clicks(included) == 19
    assert included["excluded"] == {"machine": 0, "late": 2}
    assert included["machine_events"] == {"count": 9, "included": True}
    text = sendlab("analyze", "bots").output
    assert "outcomes left out: 9 machine-made (include them with include_machine), 1 outside the " \
           "reward window (timed before their decision or after the window)" in text

    numeric = tmp_path / "more.jsonl"  # a user agent that looks like a number stays text
    numeric.write_text(json.dumps({"event_id": "n", "decision_id": ids[30], "type": "click",
                                   "user_agent": 123}))
    assert json.loads(sendlab("outcomes", str(numeric), "--json").output)["accepted"] == 1
    too_long = tmp_path / "long.jsonl"
    too_long.write_text(json.dumps({"event_id": "l", "decision_id": ids[31], "type": "click",
                                    "user_agent": "x" * 2000}))
    result = sendlab("outcomes", str(too_long))
    assert result.exit_code == 1
    assert "row 1: user_agent: String should have at most 1024 characters" in result.output
