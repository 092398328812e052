"""Idempotent sends: a repeat of (experiment, send_id, recipient_id) answers the stored decision and logs
nothing, on SQLite and PostgreSQL, within one call, across calls and across workers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine

from experiments.errors import InvalidInput
from experiments.models import Decision
from experiments.service import ExperimentService
from experiments.store import create_tables, decisions_table, make_engine
from tests.experiments.conftest import Clock, make_spec


def bandit_spec() -> Any:
    """Thompson sampling over two subjects with a templated one: every draw is random."""
    return make_spec(
        key="send",
        slots={"subject": {"variants": [
            {"id": "plain", "content": "Spring sale"},
            {"id": "named", "content": "Hi {{ first_name }}"},
        ]}},
        design={"type": "bandit", "policy": "thompson"},
        reward={"events": {"click": 1.0}},
    )


def answer(d: Decision) -> tuple[Any, ...]:
    """What a caller sees of a decision (content included)."""
    return (
        d.decision_id, d.recipient_id, tuple((s, v.id, v.content) for s, v in d.variants.items()),
        d.propensity, d.policy_version, d.reason, d.explored, d.created_at,
    )


def count_decisions(engine: Engine, **where: Any) -> int:
    query = select(func.count()).select_from(decisions_table)
    for column, value in where.items():
        query = query.where(decisions_table.c[column] == value)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def recipients(n: int, prefix: str = "r") -> list[tuple[str, dict[str, Any]]]:
    return [(f"{prefix}{i}", {"first_name": f"N{i}"}) for i in range(n)]


def test_the_same_batch_posted_twice_is_logged_once_and_answered_identically(
    service: ExperimentService, engine: Engine, clock: Clock
) -> None:
    service.create(bandit_spec())
    send = recipients(300)
    first = service.assign_batch("send", send, send_id="mon-newsletter")
    clock.advance(hours=1)
    again = service.assign_batch("send", send, send_id="mon-newsletter")
    assert count_decisions(engine) == 300
    assert [answer(d) for d in again] == [answer(d) for d in first]
    # the draws were random: a repeat made without a send id would not give the same variants
    assert len({d.variants["subject"].id for d in first}) == 2


def test_a_repeat_single_assign_returns_the_original_decision(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(bandit_spec())
    first = service.assign("send", "ann", {"first_name": "Ann"}, send_id="s1")
    batch = service.assign_batch("send", [("ann", {"first_name": "Ann"}), ("bob", {})], send_id="s1")
    again = service.assign("send", "ann", {"first_name": "Ann"}, send_id="s1")
    assert answer(batch[0]) == answer(first) == answer(again)
    assert count_decisions(engine) == 2


def test_a_recipient_repeated_within_one_batch_is_answered_once(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(bandit_spec())
    send = recipients(40) + recipients(40) + recipients(5)
    decisions = service.assign_batch("send", send, send_id="dup")
    assert count_decisions(engine) == 40
    assert [answer(d) for d in decisions[40:80]] == [answer(d) for d in decisions[:40]]
    assert [answer(d) for d in decisions[80:]] == [answer(d) for d in decisions[:5]]


def test_another_send_or_no_send_id_logs_new_decisions(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(bandit_spec())
    send = recipients(50)
    a = service.assign_batch("send", send, send_id="monday")
    b = service.assign_batch("send", send, send_id="tuesday")
    assert {d.decision_id for d in a}.isdisjoint(d.decision_id for d in b)
    # without a send id each call logs anew (today's behaviour): a retried send counts twice
    service.assign_batch("send", send)
    service.assign_batch("send", send)
    assert count_decisions(engine) == 200
    assert count_decisions(engine, send_id="monday") == 50


def test_the_same_send_id_in_another_experiment_is_another_send(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(bandit_spec())
    service.create(make_spec(key="other"))
    service.assign_batch("send", recipients(10), send_id="s")
    service.assign_batch("other", recipients(10), send_id="s")
    assert count_decisions(engine) == 20


def test_two_workers_posting_the_same_send_at_once_log_each_recipient_once(
    db_url: str, engine: Engine, clock: Clock
) -> None:
    """Two services on engines of their own (two API workers) post the same send from several threads."""
    engines = [make_engine(db_url) for _ in range(2)]
    workers = [ExperimentService(e, clock=clock, seed=s) for s, e in enumerate(engines)]
    workers[0].create(bandit_spec())
    send = recipients(400)
    parts = [send[i : i + 100] for i in range(0, 400, 100)]
    answers: list[list[Decision]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def post(worker: ExperimentService, reverse: bool) -> None:
        try:
            start.wait(30)
            for part in reversed(parts) if reverse else parts:
                got = worker.assign_batch("send", part, send_id="race")
                with lock:
                    answers.append(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=post, args=(workers[t % 2], t % 4 >= 2)) for t in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for worker_engine in engines:
        worker_engine.dispose()
    assert errors == []
    assert count_decisions(engine) == 400
    by_recipient: dict[str, set[tuple[Any, ...]]] = {}
    for got in answers:
        for d in got:
            by_recipient.setdefault(d.recipient_id, set()).add(answer(d))
    assert len(by_recipient) == 400
    assert all(len(seen) == 1 for seen in by_recipient.values())  # every caller got the same answer
    with engine.connect() as conn:
        stored = {r.recipient_id: r.id for r in conn.execute(select(decisions_table))}
    assert {rid: next(iter(seen))[0] for rid, seen in by_recipient.items()} == stored


@pytest.mark.parametrize("send_id", ["", "x" * 129, "a\x00b", 7])
def test_a_bad_send_id_is_invalid_input_and_logs_nothing(
    service: ExperimentService, engine: Engine, send_id: Any
) -> None:
    service.create(bandit_spec())
    with pytest.raises(InvalidInput) as caught:
        service.assign_batch("send", recipients(3), send_id=send_id)
    assert caught.value.field == "send_id"
    assert count_decisions(engine) == 0


def test_a_store_made_before_send_ids_gets_the_column_and_the_unique_index(db_url: str) -> None:
    engine = make_engine(db_url)
    create_tables(engine)
    with engine.begin() as conn:  # the decisions table as it was before send ids
        conn.execute(text("DROP INDEX uq_decisions_send"))
        conn.execute(text("ALTER TABLE decisions DROP COLUMN send_id"))
        conn.execute(text("DROP TABLE alembic_version"))  # made before migrations
    assert "send_id" not in {c["name"] for c in inspect(engine).get_columns("decisions")}
    create_tables(engine)
    assert "send_id" in {c["name"] for c in inspect(engine).get_columns("decisions")}
    unique = [i for i in inspect(engine).get_indexes("decisions") if i["name"] == "uq_decisions_send"]
    assert unique and unique[0]["unique"]
    service = ExperimentService(engine, seed=3)
    service.create(bandit_spec())
    first = service.assign_batch("send", recipients(20), send_id="after-upgrade")
    again = service.assign_batch("send", recipients(20), send_id="after-upgrade")
    assert [answer(d) for d in again] == [answer(d) for d in first]
    assert count_decisions(engine) == 20
    engine.dispose()
