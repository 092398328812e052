"""Warm start over HTTP and the CLI: the apprentice flag, its agreement in the results, graduation."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import ADMIN, SEND, SPEC

WARM = {
    "key": "warm",
    "slots": {"subject": {"variants": [{"id": "x", "content": "X"}, {"id": "y", "content": "Y"}]}},
    "consent": {"missing": "allow"},
    "design": {"type": "contextual", "policy": "linear_ts", "context": ["device"],
               "warm_start": {"agreement": 0.9, "min_decisions": 10_000}},
    "default": {"subject": "y"},
    "reward": {"events": {"click": 1.0}},
}


def test_graduate_over_http(client):
    assert client.post("/v1/experiments", json=WARM, headers=ADMIN).status_code == 201
    assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
    assert client.get("/v1/experiments/warm", headers=ADMIN).json()["apprentice"] is True
    recipients = [{"recipient_id": f"r{i}", "context": {"device": "mobile"}} for i in range(20)]
    decisions = client.post("/v1/experiments/warm/assign/batch", json={"recipients": recipients},
                            headers=SEND).json()["decisions"]
    assert {(d["reason"], d["variants"]["subject"]["id"], d["propensity"]) for d in decisions} == {
        ("apprentice", "y", 1.0)}
    results = client.get("/v1/experiments/warm/results?detail=false", headers=ADMIN).json()
    assert results["apprentice"]["decisions"] == 20
    assert 0.3 < results["apprentice"]["agreement"] < 0.7  # untrained: an even draw between x and y

    assert client.post("/v1/experiments/warm/graduate", headers=SEND).status_code == 403
    graduated = client.post("/v1/experiments/warm/graduate", headers=ADMIN)
    assert graduated.status_code == 200, graduated.text
    assert graduated.json()["apprentice"] is False and graduated.json()["key"] == "warm"
    assert client.get("/v1/experiments/warm", headers=ADMIN).json()["apprentice"] is False
    after = client.post("/v1/experiments/warm/assign", json=recipients[0], headers=SEND).json()
    assert after["reason"] == "policy"
    assert client.post("/v1/experiments/warm/graduate", headers=ADMIN).json()["apprentice"] is False

    hashed = client.post("/v1/experiments/hello/graduate", headers=ADMIN)
    assert hashed.status_code == 409 and "no policy to graduate" in hashed.json()["detail"]
    missing = client.post("/v1/experiments/nope/graduate", headers=ADMIN)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_graduate_through_the_cli(tmp_path):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def sendlab(*args: str):
        return runner.invoke(app, [*args, "--db", db])

    spec = tmp_path / "warm.json"
    spec.write_text(json.dumps(WARM))
    assert sendlab("experiments", "create", str(spec)).exit_code == 0
    assert json.loads(sendlab("experiments", "show", "warm", "--json").output)["apprentice"] is True
    assert "apprentice  True" in sendlab("experiments", "show", "warm").output.splitlines()
    decision = json.loads(sendlab("assign", "warm", "-r", "ana", "-c", "device=mobile", "--json").output)
    assert decision["reason"] == "apprentice"
    text = sendlab("analyze", "warm").output
    assert "apprentice: the policy would have chosen as the incumbent did on " in text
    assert "% of 1 decisions" in text

    graduated = sendlab("experiments", "graduate", "warm", "--json")
    assert graduated.exit_code == 0 and json.loads(graduated.output)["apprentice"] is False
    decision = json.loads(sendlab("assign", "warm", "-r", "bo", "-c", "device=mobile", "--json").output)
    assert decision["reason"] == "policy"
    missing = sendlab("experiments", "graduate", "nope")
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == ["error: experiment 'nope' not found"]


def test_graduating_a_policy_without_a_warm_start_is_a_409_and_changes_nothing(client, tmp_path):
    cold = {**WARM, "key": "cold", "design": {k: v for k, v in WARM["design"].items() if k != "warm_start"}}
    assert client.post("/v1/experiments", json=cold, headers=ADMIN).status_code == 201
    before = client.get("/v1/experiments/cold", headers=ADMIN).json()
    refused = client.post("/v1/experiments/cold/graduate", headers=ADMIN)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == ("experiment 'cold' has no warm start (design.warm_start): its policy "
                                        "chooses from the first decision, there is nothing to graduate")
    assert client.get("/v1/experiments/cold", headers=ADMIN).json() == before

    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    spec = tmp_path / "cold.json"
    spec.write_text(json.dumps(cold))
    assert runner.invoke(app, ["experiments", "create", str(spec), "--db", db]).exit_code == 0
    result = runner.invoke(app, ["experiments", "graduate", "cold", "--db", db])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {refused.json()['detail']}"]


def test_graduating_twice_changes_nothing_the_second_time(client):
    assert client.post("/v1/experiments", json=WARM, headers=ADMIN).status_code == 201
    first = client.post("/v1/experiments/warm/graduate", headers=ADMIN)
    assert first.status_code == 200 and first.json()["apprentice"] is False
    again = client.post("/v1/experiments/warm/graduate", headers=ADMIN)
    assert again.status_code == 200 and again.json() == first.json()  # updated_at included
