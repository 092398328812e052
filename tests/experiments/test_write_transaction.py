"""Outcome posts write in one :func:`experiments.store.writes.write_transaction`: all or nothing on both
databases, and on PostgreSQL pipelined, so that a post waits only for the answers it needs."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine
from experiments.store.writes import write_transaction
from tests.experiments.conftest import make_spec


def _stored(engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT x FROM t ORDER BY x"))]


def test_a_write_transaction_commits_all_or_nothing(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1  # its own write, midway
        raise RuntimeError("the rollups could not be computed")
    assert _stored(engine) == []
    with write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        conn.execute(text("INSERT INTO t VALUES (3)"))
    assert _stored(engine) == [2, 3]
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(("consent", "round_trips"), [
    ({"attribute": None}, 4),  # no attribute stored: no segments
    ({"missing": "allow"}, 5),  # the consent attribute stored: a segment attribute, its overflow marks read
])
def test_a_post_of_one_outcome_waits_only_for_the_answers_it_needs(pg_url, tmp_path, clock, consent,
                                                                   round_trips):
    # one round trip per read whose answer it needs (the decision, its attributed outcomes, the insert's
    # accepted ids, the segment attributes marked overflowed) and one for the rollups' writes with
    # COMMIT; fifteen and seventeen before the writes were pipelined
    engine = make_engine(pg_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=7)
    service.create(make_spec(design={"type": "bandit", "policy": "thompson"}, consent=consent,
                             reward={"events": {"click": 1.0}, "guardrails": ["unsubscribe"]}))
    decision = service.assign("spring", "u1", {"consent": True})
    trace = tmp_path / "protocol.txt"

    def traced(dbapi_connection, *_args):
        dbapi_connection.pgconn.trace(out.fileno())

    with trace.open("w") as out:
        event.listen(engine, "checkout", traced)
        try:
            click = OutcomeEvent("e1", decision.decision_id, "click", None, clock.now)
            counts = service.record_outcomes([click])
        finally:
            event.remove(engine, "checkout", traced)
            engine.dispose()  # the traced connection goes with the pool
    assert (counts.accepted, counts.duplicates) == (1, 0)
    # libpq's trace: a line per message, "time, direction, length, kind, ..." (tab-separated); a round
    # trip ends with the client's Sync (extended protocol) or is one simple Query
    messages = [line.split("\t")[1:4] for line in trace.read_text().splitlines()]
    waits = [m for m in messages if len(m) == 3 and m[0] == "F" and m[2] in ("Sync", "Query")]
    assert len(waits) == round_trips
