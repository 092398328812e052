"""``/v1/recipients/{id}`` and ``sendlab recipients show|erase``: a recipient's data and its erasure."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.settings import Settings
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY, SPEC

SECRET = "a server secret of enough bytes"


def _results(client: TestClient) -> dict:
    response = client.get(f"/v1/experiments/{SPEC['key']}/results", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_show_and_erase_a_recipient_over_http(sqlite_url: str) -> None:
    settings = Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY, erasure_secret=SECRET)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
        recipients = [{"recipient_id": f"r{i}", "context": {"device": "ios"}} for i in range(40)]
        recipients.append({"recipient_id": "ana", "context": {"device": "android"}})
        batch = f"/v1/experiments/{SPEC['key']}/assign/batch"
        decisions = client.post(batch, json={"recipients": recipients}, headers=SEND).json()["decisions"]
        events = [{"event_id": f"e{i}", "decision_id": d["decision_id"], "type": "click"}
                  for i, d in enumerate(decisions) if i % 2 == 0]
        assert client.post("/v1/outcomes", json={"events": events}, headers=SEND).status_code == 200
        shown = client.get("/v1/recipients/ana", headers=ADMIN).json()
        assert shown["recipient_id"] == "ana" and len(shown["decisions"]) == 1
        assert shown["decisions"][0]["outcomes"][0]["type"] == "click"
        assert client.get("/v1/recipients/ana", headers=SEND).status_code == 403
        assert client.delete("/v1/recipients/ana", headers=SEND).status_code == 403
        before = _results(client)
        erased = client.delete("/v1/recipients/ana", headers=ADMIN)
        assert erased.status_code == 200 and erased.json() == {"decisions": 1, "outcomes": 1, "features": 0}
        assert client.get("/v1/recipients/ana", headers=ADMIN).json()["decisions"] == []
        assert _results(client) == before


def test_a_bad_recipient_id_in_the_path_is_a_422_at_the_path_with_its_reason(sqlite_url: str) -> None:
    settings = Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY, erasure_secret=SECRET)
    with TestClient(create_app(settings)) as client:
        for path, reason in (("%00", "must not contain a NUL character (\\u0000)"),
                             ("a%00b", "must not contain a NUL character (\\u0000)"),
                             ("x" * 129, "must be a non-empty string of at most 128 chars")):
            for call in (client.get, client.delete):
                response = call(f"/v1/recipients/{path}", headers=ADMIN)
                assert response.status_code == 422, response.text
                assert response.json()["detail"] == [{"loc": ["path", "recipient_id"], "msg": reason}]


def test_erasure_needs_the_server_secret(client: TestClient) -> None:
    refused = client.delete("/v1/recipients/ana", headers=ADMIN)
    assert refused.status_code == 409 and "SENDLAB_ERASURE_SECRET" in refused.json()["detail"]


def test_the_cli_shows_and_erases_a_recipient(sqlite_url: str, monkeypatch) -> None:
    settings = Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
        client.post(f"/v1/experiments/{SPEC['key']}/assign", json={"recipient_id": "bo", "context": {}},
                    headers=SEND)
    runner = CliRunner()
    shown = runner.invoke(cli_app, ["recipients", "show", "bo", "--db", sqlite_url, "--json"])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.output)["decisions"]) == 1
    monkeypatch.delenv("SENDLAB_ERASURE_SECRET", raising=False)
    refused = runner.invoke(cli_app, ["recipients", "erase", "bo", "--db", sqlite_url])
    assert refused.exit_code != 0 and "SENDLAB_ERASURE_SECRET" in refused.output
    monkeypatch.setenv("SENDLAB_ERASURE_SECRET", SECRET)
    erased = runner.invoke(cli_app, ["recipients", "erase", "bo", "--db", sqlite_url, "--json"])
    assert erased.exit_code == 0
    assert json.loads(erased.output) == {"decisions": 1, "outcomes": 0, "features": 0}
    empty = runner.invoke(cli_app, ["recipients", "show", "bo", "--db", sqlite_url])
    assert empty.exit_code == 0 and "nothing is stored about 'bo'" in empty.output
    bad = runner.invoke(cli_app, ["recipients", "show", "x" * 200, "--db", sqlite_url])
    assert bad.exit_code != 0 and "recipient_id" in bad.output and "Traceback" not in bad.output


def test_a_decision_shows_the_feature_version_its_context_came_from(sqlite_url: str) -> None:
    from tests.api.test_routes_feature_table import body, features_spec

    settings = Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/features/refresh", json=body(), headers=ADMIN).status_code == 201
        assert client.post("/v1/features/refresh", json=body(), headers=ADMIN).json()["version"] == 2
        assert client.post("/v1/experiments", json=features_spec(key="vip"), headers=ADMIN).status_code == 201
        assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
        filled = client.post("/v1/experiments/vip/assign", json={"recipient_id": "ann"}, headers=SEND).json()
        plain = client.post(f"/v1/experiments/{SPEC['key']}/assign",
                            json={"recipient_id": "ann", "context": {}}, headers=SEND).json()
        assert (filled["feature_version"], plain["feature_version"]) == (2, None)
        explained = client.get(f"/v1/decisions/{filled['decision_id']}", headers=ADMIN).json()
        assert explained["feature_version"] == 2
        assert {"decision_id", "experiment", "version", "recipient_id", "variants", "arm", "propensity",
                "policy_version", "reason", "explored", "created_at", "explanation", "features",
                "features_method"} < explained.keys()  # every field it had
        unfilled = client.get(f"/v1/decisions/{plain['decision_id']}", headers=ADMIN).json()
        assert unfilled["feature_version"] is None
        shown = client.get("/v1/recipients/ann", headers=ADMIN).json()["decisions"]
        assert {d["decision_id"]: d["feature_version"] for d in shown} == {
            filled["decision_id"]: 2, plain["decision_id"]: None}
    runner = CliRunner()
    as_json = runner.invoke(cli_app, ["recipients", "show", "ann", "--db", sqlite_url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [d["feature_version"] for d in json.loads(as_json.output)["decisions"]] == [
        d["feature_version"] for d in shown]
    as_text = runner.invoke(cli_app, ["recipients", "show", "ann", "--db", sqlite_url])
    header, *lines = as_text.output.splitlines()
    assert as_text.exit_code == 0 and "feature version" in header
    start = header.index("feature version")
    ids = {filled["decision_id"], plain["decision_id"]}
    column = {line[:36]: line[start:start + len("feature version")].strip() for line in lines
              if line[:36] in ids}
    assert column == {filled["decision_id"]: "2", plain["decision_id"]: "-"}


def test_an_erasure_over_http_stops_the_service_answering_from_kept_features(sqlite_url: str) -> None:
    from tests.api.test_routes_feature_table import BUYERS, body, features_spec

    settings = Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY, erasure_secret=SECRET)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/features/refresh", json=body(), headers=ADMIN).status_code == 201
        spec = features_spec(eligibility=BUYERS)
        assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201

        def assign(recipient: str) -> str:
            answer = client.post("/v1/experiments/hello/assign", json={"recipient_id": recipient},
                                 headers=SEND)
            assert answer.status_code == 200, answer.text
            return answer.json()["reason"]

        assert (assign("ann"), assign("hal")) == ("assigned", "assigned")  # their rows are now kept
        erased = client.delete("/v1/recipients/ann", headers=ADMIN).json()
        assert erased == {"decisions": 1, "outcomes": 0, "features": 1}
        assert (assign("ann"), assign("hal")) == ("no_features", "assigned")
