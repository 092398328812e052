"""Values that would break results later are refused at the door, on SQLite and PostgreSQL: a lone
surrogate in any string, an integer beyond the range of a number, a body that is not UTF-8; and the
segment and covariate answers stay 200 after the attempt."""

from __future__ import annotations

import json

import pytest

from experiments.errors import InvalidInput
from experiments.text import SURROGATE_REASON
from tests.api.conftest import ADMIN, SEND, SPEC
from tests.api.test_bad_input import any_client, problem, stored_rows  # noqa: F401 - any_client: a fixture

ASSIGN = "/v1/experiments/hello/assign"
JSON = {"Content-Type": "application/json"}


def post_raw(client, path: str, text: str, headers: dict[str, str]):
    """Post JSON text as written (escapes kept as they are spelled)."""
    return client.post(path, content=text.encode("utf-8"), headers={**headers, **JSON})


CASES = [
    (ASSIGN, r'{"recipient_id": "r", "context": {"country": "\udfff"}}', ["body", "context", "country"]),
    (ASSIGN, r'{"recipient_id": "r", "context": {"first_name": "A\ud800"}}',
     ["body", "context", "first_name"]),
    (ASSIGN, r'{"recipient_id": "\udfffr"}', ["body", "recipient_id"]),
    (ASSIGN, r'{"recipient_id": "r", "context": {"c\udc00": 1}}', ["body", "context", "c\\udc00"]),
    ("/v1/experiments/hello/assign/batch", r'{"recipients": [{"recipient_id": "a"}, {"recipient_id": "b",'
     r' "context": {"country": ["x", "\ud83d"]}}]}', ["body", "recipients", 1, "context", "country", 1]),
    ("/v1/outcomes", r'{"events": [{"event_id": "e", "decision_id": "d", "type": "cl\udfffick"}]}',
     ["body", "events", 0, "type"]),
]


@pytest.mark.parametrize(("path", "text", "loc"), CASES)
def test_a_lone_surrogate_is_422_at_its_string_and_results_stay_200(any_client, path, text, loc):  # noqa: F811
    client = any_client
    good = {"recipient_id": "ok", "context": {"country": "DE"}}
    assert client.post(ASSIGN, json=good, headers=SEND).status_code == 200
    before = stored_rows(client)
    headers = ADMIN if path == "/v1/experiments" else SEND
    assert problem(post_raw(client, path, text, headers)) == (loc, SURROGATE_REASON)
    assert stored_rows(client) == before
    for query in ("segment=country", "covariate=country"):
        response = client.get(f"/v1/experiments/hello/results?{query}", headers=ADMIN)
        assert response.status_code == 200, response.text


def test_a_surrogate_pair_and_an_escaped_backslash_are_text(any_client) -> None:  # noqa: F811
    client = any_client
    for text in (r'{"recipient_id": "r\ud83d\ude00", "context": {"country": "\ud83d\ude00"}}',
                 r'{"recipient_id": "r\\udfff", "context": {"country": "\\\\\\udfff x"}}'):
        response = post_raw(client, ASSIGN, text, SEND)
        assert response.status_code == 200, response.text
    response = client.get("/v1/experiments/hello/results?segment=country", headers=ADMIN)
    assert response.status_code == 200


@pytest.mark.parametrize("number", ["1" + "0" * 309, "-" + "9" * 400])
def test_an_integer_beyond_the_range_of_a_number_is_refused(any_client, number) -> None:  # noqa: F811
    client = any_client
    good = {"recipient_id": "ok", "context": {"country": 3}}
    assert client.post(ASSIGN, json=good, headers=SEND).status_code == 200
    text = f'{{"recipient_id": "r", "context": {{"country": {number}}}}}'
    loc, msg = problem(post_raw(client, ASSIGN, text, SEND))
    assert loc == ["body", "context", "country"] and "beyond the range of a number" in msg
    for query in ("segment=country", "covariate=country"):
        response = client.get(f"/v1/experiments/hello/results?{query}", headers=ADMIN)
        assert response.status_code == 200, response.text


def test_a_spec_string_or_name_with_a_lone_surrogate_is_refused(client) -> None:
    spec = json.dumps({**SPEC, "name": "x"})
    for text, loc in ((spec.replace('"name": "x"', r'"name": "x\udfff"'), ["body", "name"]),
                      (spec.replace('"subject":', r'"sub\ud800":'), ["body", "slots", "sub\\ud800"])):
        detail = post_raw(client, "/v1/experiments", text, ADMIN).json()["detail"]
        assert [(p["loc"], p["msg"]) for p in detail] == [(loc, SURROGATE_REASON)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_that_is_not_utf8_is_422_as_the_readme_says(client, experiment, encoding) -> None:
    body = json.dumps({"recipient_id": "r"}).encode(encoding)
    response = client.post(ASSIGN, content=body, headers={**SEND, **JSON})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert "not UTF-8" in response.json()["detail"][0]["msg"]


def test_the_core_refuses_a_stored_surrogate_or_huge_integer_without_http(client, experiment) -> None:
    service = client.app.state.service
    spec = {**SPEC, "key": "rec", "record": ["country"]}
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    for value in ("\udfff", 10**400):
        with pytest.raises(InvalidInput) as caught:
            service.assign("rec", "r", {"country": value})
        assert caught.value.field == "context.country"
