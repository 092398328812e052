"""A whole send in one request: 100,000 recipients, 100,000 decisions in order, every one stored."""

from __future__ import annotations

from sqlalchemy import select

from experiments.store import decisions_table
from tests.api.conftest import ADMIN, SEND, make_spec

N = 100_000


def test_a_batch_of_100_000_answers_every_decision_in_order_and_stores_them_all(client):
    spec = make_spec(key="send", slots={
        "subject": {"variants": [{"id": "plain", "content": "Spring sale"},
                                 {"id": "urgent", "content": "Now"}]},
        "cta": {"variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]},
    })
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    recipients = [{"recipient_id": f"r{i}", "context": {"segment": i % 7}} for i in range(N)]
    response = client.post("/v1/experiments/send/assign/batch", json={"recipients": recipients}, headers=SEND)
    assert response.status_code == 200, response.text[:500]
    decisions = response.json()["decisions"]
    assert len(decisions) == N
    assert [d["recipient_id"] for d in decisions] == [r["recipient_id"] for r in recipients]
    assert len({d["decision_id"] for d in decisions}) == N

    with client.app.state.engine.connect() as conn:
        rows = conn.execute(
            select(decisions_table.c.id, decisions_table.c.recipient_id, decisions_table.c.variants)
            .where(decisions_table.c.experiment_key == "send")
        ).all()
    assert len(rows) == N
    stored = {row.id: (row.recipient_id, dict(row.variants)) for row in rows}
    assert stored == {d["decision_id"]: (d["recipient_id"], {s: v["id"] for s, v in d["variants"].items()})
                      for d in decisions}
