"""One walk through the whole HTTP contract, run on TestClient and over real HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ADMIN, SEND, make_spec


def walk_the_contract(client: Any, key: str = "walk") -> dict[str, Any]:
    """Create a Thompson-sampling experiment, assign a send, post outcomes twice, learn, read results.

    ``client`` is a ``TestClient`` or an ``httpx.Client`` with a base URL. Returns what was seen.
    """
    spec = make_spec(key=key, design={"type": "bandit", "policy": "thompson"},
                     reward={"events": {"click": 1.0}, "guardrails": ["unsubscribe"]})
    created = client.post("/v1/experiments", json=spec, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1

    recipients = [{"recipient_id": f"{key}-{i}", "context": {"first_name": "Ana"}} for i in range(200)]
    batch = client.post(f"/v1/experiments/{key}/assign/batch", json={"recipients": recipients}, headers=SEND)
    assert batch.status_code == 200, batch.text
    decisions = batch.json()["decisions"]
    assert [d["recipient_id"] for d in decisions] == [r["recipient_id"] for r in recipients]
    assert all(0 < d["propensity"] <= 1 for d in decisions)

    one = client.post(f"/v1/experiments/{key}/assign", json={"recipient_id": "solo"}, headers=SEND)
    assert one.status_code == 200, one.text

    clicks = [{"event_id": f"{key}-c{i}", "decision_id": d["decision_id"], "type": "click"}
              for i, d in enumerate(decisions) if d["variants"]["subject"]["id"] == "urgent" or i % 5 == 0]
    first = client.post("/v1/outcomes", json={"events": clicks}, headers=SEND).json()
    again = client.post("/v1/outcomes", json={"events": clicks}, headers=SEND).json()
    assert first == {"accepted": len(clicks), "duplicates": 0, "orphans": 0, "erased": 0}
    assert again == {"accepted": 0, "duplicates": len(clicks), "orphans": 0, "erased": 0}

    learned = client.post(f"/v1/experiments/{key}/learn", headers=ADMIN)
    assert learned.status_code == 200, learned.text
    results = client.get(f"/v1/experiments/{key}/results?detail=false", headers=ADMIN)
    assert results.status_code == 200, results.text
    body = results.json()
    arms = {(a["slot"], a["variant"]): a for a in body["arms"]}
    subject = [a for (slot, _), a in arms.items() if slot == "subject"]
    assert sum(a["decisions"] for a in subject) + sum(body["fallbacks"].values()) == 201
    assert sum(a["events"].get("click", 0) for a in subject) == len(clicks)
    assert body["srm"]["applicable"] is False  # a bandit has no fixed split

    missing = client.get(f"/v1/experiments/{key}-missing", headers=ADMIN)
    assert missing.status_code == 404 and f"'{key}-missing'" in missing.json()["detail"]
    forbidden = client.get("/v1/experiments", headers=SEND)
    assert forbidden.status_code == 403
    return {"decisions": decisions, "clicks": clicks, "results": body}
