"""``/v1/experiments``: create (JSON and YAML), list, get, pause / resume / archive, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.api.conftest import ADMIN, SPEC, make_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "api" / "examples" / "spring-sale.yaml"


def test_create_answers_201_with_key_version_status_warnings(client):
    response = client.post("/v1/experiments", json=SPEC, headers=ADMIN)
    assert response.status_code == 201
    body = response.json()
    assert body["key"] == "hello"
    assert body["version"] == 1
    assert body["status"] == "running"
    assert isinstance(body["warnings"], list)


def test_create_from_yaml_with_its_content_type(client):
    response = client.post(
        "/v1/experiments", content=EXAMPLE.read_bytes(), headers={**ADMIN, "Content-Type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["key"] == yaml.safe_load(EXAMPLE.read_text())["key"]


def test_list_and_get_show_the_spec(client, experiment):
    listed = client.get("/v1/experiments", headers=ADMIN).json()
    assert listed["count"] == 1
    assert [e["key"] for e in listed["experiments"]] == [experiment]
    one = client.get(f"/v1/experiments/{experiment}", headers=ADMIN).json()
    assert one["spec"]["slots"]["cta"]["variants"][1]["id"] == "see"
    assert one["name"] == SPEC["name"]


def test_pause_resume_archive(client, experiment):
    for action, status in [("pause", "paused"), ("resume", "running"), ("archive", "archived")]:
        response = client.post(f"/v1/experiments/{experiment}/{action}", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    assert client.get(f"/v1/experiments/{experiment}", headers=ADMIN).json()["status"] == "archived"


def test_unknown_experiment_is_404_naming_it(client):
    for method, path in [("get", "/v1/experiments/nope"), ("post", "/v1/experiments/nope/pause"),
                         ("post", "/v1/experiments/nope/learn"), ("get", "/v1/experiments/nope/results")]:
        response = client.request(method.upper(), path, headers=ADMIN)
        assert response.status_code == 404, path
        assert "'nope'" in response.json()["detail"]


def test_spec_problems_are_422_with_loc_and_msg_for_each(client):
    spec = make_spec(default={"subject": "missing"}, design={"type": "bandit"})
    spec["slots"]["cta"]["variants"].append({"id": "shop"})
    response = client.post("/v1/experiments", json=spec, headers=ADMIN)
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p["msg"] for p in response.json()["detail"]}
    assert "unknown variant 'missing'" in problems[("body", "default", "subject")]
    assert "duplicate id 'shop'" in problems[("body", "slots", "cta", "variants", 2, "id")]
    assert "needs a policy" in problems[("body", "design", "policy")]


def test_structural_problems_are_422_too(client):
    spec = make_spec(holdout=1.5)
    del spec["design"]
    response = client.post("/v1/experiments", json=spec, headers=ADMIN)
    assert response.status_code == 422
    locs = [tuple(p["loc"]) for p in response.json()["detail"]]
    assert ("body", "holdout") in locs
    assert ("body", "design") in locs


def test_bodies_that_are_not_specs_are_422_never_500(client):
    for content, content_type in [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b"key: [unclosed", "application/yaml"),
        (b"\xff\xfe", "application/yaml"),
    ]:
        headers = {**ADMIN, "Content-Type": content_type}
        response = client.post("/v1/experiments", content=content, headers=headers)
        assert response.status_code == 422, (content, response.text)
        assert response.json()["detail"][0]["msg"]


def test_unsupported_content_type_is_415(client):
    response = client.post(
        "/v1/experiments", content=json.dumps(SPEC), headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]


def test_openapi_page_documents_the_contract(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ["/v1/experiments", "/v1/experiments/{key}", "/v1/experiments/{key}/assign",
                 "/v1/experiments/{key}/assign/batch", "/v1/outcomes", "/v1/experiments/{key}/results",
                 "/v1/power/rate", "/healthz", "/metrics"]:
        assert path in paths, path
    create = paths["/v1/experiments"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/yaml"} <= set(create)
    assert client.get("/docs").status_code == 200
