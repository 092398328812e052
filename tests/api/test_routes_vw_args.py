"""A spec's ``vw_args`` cannot reach the server's files over HTTP, refused or accepted."""

from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN, make_spec


def _contextual(vw_args: str) -> dict:
    return make_spec(key="vw-probe", design={"type": "contextual", "policy": "vw", "vw_args": vw_args,
                                             "context": ["segment"]})


@pytest.mark.parametrize("form", ["-f{path}", "-f {path}", "--final_regressor={path}", "-p{path}",
                                  "--output_feature_regularizer_text {path}", "-r {path}", "{path}"])
def test_a_spec_naming_the_store_is_refused_and_the_store_survives(form, make_client, tmp_path) -> None:
    store = tmp_path / "sendlab.db"
    client = make_client(f"sqlite:///{store}")
    before = store.read_bytes()
    for spec in (_contextual("--cb_explore_adf " + form.format(path=store)),
                 {**_contextual("--cb_explore_adf " + form.format(path=store)), "holdout": 7}):
        answer = client.post("/v1/experiments", json=spec, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert any(error["loc"][-1] == "vw_args" for error in answer.json()["detail"]), answer.json()
    assert store.read_bytes() == before
    assert client.get("/v1/experiments", headers=ADMIN).status_code == 200


def test_an_allowed_spec_is_created_and_assigns(make_client, sqlite_url) -> None:
    client = make_client(sqlite_url)
    answer = client.post("/v1/experiments", json=_contextual("--cb_explore_adf --epsilon=0.1 -qUA"),
                         headers=ADMIN)
    assert answer.status_code == 201, answer.text
    decision = client.post("/v1/experiments/vw-probe/assign", headers=ADMIN,
                           json={"recipient_id": "r1", "context": {"segment": "a"}})
    assert decision.status_code == 200, decision.text
    assert 0 < decision.json()["propensity"] <= 1
