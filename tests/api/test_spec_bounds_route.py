"""Over HTTP a spec beyond the arms bound is a 422 at ``slots`` with the reason; nothing is stored."""

from __future__ import annotations

from tests.api.conftest import ADMIN, make_spec


def test_too_many_arms_is_a_422_with_the_reason_and_nothing_is_stored(client) -> None:
    slots = {f"s{i}": {"variants": [{"id": f"v{j}"} for j in range(4)]} for i in range(8)}
    response = client.post("/v1/experiments", json=make_spec(slots=slots), headers=ADMIN)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "slots"]
    assert "at most 4,096 arms" in problem["msg"] and "65,536" in problem["msg"]
    assert client.get("/v1/experiments", headers=ADMIN).json()["count"] == 0
