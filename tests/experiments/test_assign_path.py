"""The send-time path: one query for the experiment's state (a second worker's pause, new policy or new
spec version is seen at once), decision rows written as the table would write them, time-ordered ids,
commits that fail loudly and store nothing, and an acknowledged decision that survives a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from bandit import load_policy
from experiments.group_commit import GroupCommitError
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import (
    DECISION_COLUMNS,
    decision_encoding,
    decisions_table,
    insert_decisions,
    make_engine,
)
from experiments.store.writes import written_columns
from tests.experiments.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]


def bandit_spec(key: str = "send", **changes: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "key": key,
        "slots": {
            "subject": {"variants": [{"id": "hi", "content": "Hi {{ first_name | default: 'there' }}"},
                                     {"id": "sale", "content": "Spring sale"}]},
            "cta": {"variants": [{"id": "shop", "content": "Shop"}, {"id": "see", "content": "See"}]},
        },
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "thompson", "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "window_hours": 24},
    }
    data.update(changes)
    return parse_spec(data)


def stored_rows(engine: Engine, ids: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(decisions_table).where(decisions_table.c.id.in_(ids))).all()
    return {row.id: row for row in rows}


def test_decision_columns_are_the_table_columns() -> None:
    assert list(DECISION_COLUMNS) == [c.name for c in decisions_table.columns]


def test_rows_written_by_insert_decisions_read_back_as_the_table_writes_them(engine: Engine) -> None:
    """The same decisions inserted by SQLAlchemy (the reference) and by insert_decisions (the fast path):
    the database holds the same values, compared in the database's own text form and as read back."""
    moment = datetime(2026, 3, 2, 9, 30, 15, 123456)
    values = [
        {"id": "ref-0", "experiment_key": "k", "version": 2, "recipient_id": "r0 é \"quoted\"",
         "variants": {"subject": "hi", "cta": "shop"}, "arm": 1, "propensity": 0.123456789012345,
         "policy_version": 3, "explored": True, "fallback": False, "reason": "policy",
         "context": {"first_name": "Zoë", "n": 3, "vip": True, "score": 1.5, "tags": ["a", None]},
         "created_at": moment, "day": moment.date(), "learned_version": None, "agreement": 0.25,
         "send_id": None, "send_at": moment.replace(hour=18)},
        {"id": "ref-1", "experiment_key": "k", "version": 2, "recipient_id": "r1",
         "variants": {"subject": "sale", "cta": "see"}, "arm": 2, "propensity": 1.0,
         "policy_version": None, "explored": False, "fallback": True, "reason": "no_consent",
         "context": None, "created_at": moment, "day": date(2026, 3, 2), "learned_version": None,
         "agreement": None, "send_id": None, "send_at": None},
        {"id": "ref-2", "experiment_key": "k", "version": 2, "recipient_id": "r2",
         "variants": {"subject": "hi", "cta": "see"}, "arm": 0, "propensity": 1e-7,
         "policy_version": 3, "explored": True, "fallback": False, "reason": "policy",
         "context": {}, "created_at": moment.replace(microsecond=0), "day": moment.date(),
         "learned_version": None, "agreement": None, "send_id": None, "send_at": None},
    ]
    values = [{**v, "learned_weight": None} for v in values]  # set by delay-aware learning only
    # set by send_time experiments only (the chosen hour's own probability)
    values = [{**v, "send_time_propensity": 1 / 3 if i == 0 else None} for i, v in enumerate(values)]
    values = [{**v, "feature_version": 4 if v["id"] == "ref-0" else None} for v in values]
    encoding = decision_encoding(engine.dialect)
    fast = []
    for v in values:
        bound = {**v, "id": "fast" + v["id"][3:], "variants": encoding.json(v["variants"]),
                 "context": encoding.json(v["context"]), "created_at": encoding.time(v["created_at"]),
                 "day": encoding.day(v["day"]), "explored": encoding.flag(v["explored"]),
                 "fallback": encoding.flag(v["fallback"]),
                 "send_at": None if v["send_at"] is None else encoding.time(v["send_at"])}
        fast.append(tuple(bound[c] for c in DECISION_COLUMNS))
    with engine.begin() as conn:
        conn.execute(decisions_table.insert(), values)
        insert_decisions(conn, fast)
    columns = ", ".join(f"CAST({c} AS TEXT)" if c in ("variants", "context") else c for c in DECISION_COLUMNS)
    with engine.connect() as conn:
        raw = {row[0]: row[1:] for row in conn.execute(text(f"SELECT {columns} FROM decisions ORDER BY id"))}
        if conn.dialect.name == "sqlite":  # storage classes too: text stays text, numbers numbers
            types = ", ".join(f"typeof({c})" for c in DECISION_COLUMNS)
            raw_types = {row[0]: row[1:] for row in conn.execute(text(f"SELECT id, {types} FROM decisions"))}
            for i in range(3):
                assert raw_types[f"fast-{i}"] == raw_types[f"ref-{i}"]
    for i in range(3):
        assert raw[f"fast-{i}"] == raw[f"ref-{i}"], i
    ref = stored_rows(engine, ["ref-0", "ref-1", "ref-2"])
    got = stored_rows(engine, ["fast-0", "fast-1", "fast-2"])
    for i in range(3):
        assert got[f"fast-{i}"][1:] == ref[f"ref-{i}"][1:]


def test_insert_decisions_leaves_out_only_nullable_columns_none_in_every_row() -> None:
    """Left out of the insert, such a column is stored NULL (the test above leaves out learned_version
    and learned_weight); a column set in one row, or not nullable, is written."""
    none_in_both = {"learned_version", "feature_version", "reason"}  # reason: not nullable
    first = tuple(None if c in none_in_both | {"send_id"} else f"{c}0" for c in DECISION_COLUMNS)
    second = tuple(None if c in none_in_both else f"{c}1" for c in DECISION_COLUMNS)
    columns, rows = written_columns([first, second])
    assert columns == tuple(c for c in DECISION_COLUMNS if c not in {"learned_version", "feature_version"})
    assert rows == [tuple(row[DECISION_COLUMNS.index(c)] for c in columns) for row in (first, second)]
    assert written_columns([second[:14] + ("l",) + second[15:20] + (4,)]) == (
        DECISION_COLUMNS, [second[:14] + ("l",) + second[15:20] + (4,)]
    )


def test_decision_ids_are_version_7_uuids_of_the_decision_time_in_batch_order(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(bandit_spec())
    decisions = service.assign_batch("send", [(f"r{i}", {}) for i in range(300)])
    decisions += [service.assign("send", "solo", {})]
    ids = [d.decision_id for d in decisions]
    assert len(set(ids)) == len(ids)
    millis = (clock.now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    for d in decisions:
        u = uuid.UUID(d.decision_id)
        assert (u.version, u.variant, str(u)) == (7, uuid.RFC_4122, d.decision_id)
        assert u.int >> 80 == millis  # the first 48 bits: the decision time in ms
        assert d.created_at == clock.now
    assert ids[:300] == sorted(ids[:300])  # a batch's ids ascend, so its rows append to the index
    assert len(stored_rows(service._engine, ids)) == len(ids)  # noqa: SLF001 - the engine of the fixture


def test_a_second_worker_sees_a_pause_a_new_policy_and_a_new_spec_version_at_once(
    db_url: str, service: ExperimentService, clock: Clock, engine: Engine
) -> None:
    """Worker A caches the compiled spec and the restored policy; worker B (another process on the same
    database) pauses, learns and saves a new spec version; A's very next decision reflects each change,
    with the propensity of the policy version it records."""
    service.create(bandit_spec())
    other = ExperimentService(make_engine(db_url), clock=clock, seed=3)
    first = service.assign_batch("send", [(f"u{i}", {"first_name": "Ana"}) for i in range(400)])
    assert {d.policy_version for d in first} == {1}

    other.set_status("send", "paused")
    assert service.assign("send", "p1", {}).reason == "paused"
    other.set_status("send", "running")
    assert service.assign("send", "p2", {}).reason == "policy"

    # clicks on 'sale' only, learned by the other worker: a new snapshot
    clicks = [OutcomeEvent(f"c-{d.decision_id}", d.decision_id, "click") for d in first
              if d.variants["subject"].id == "sale"]
    other.record_outcomes(clicks)
    clock.advance(hours=1)
    assert other.learn("send") == 2
    after = service.assign_batch("send", [(f"v{i}", {}) for i in range(300)])
    assert {d.policy_version for d in after} == {2}
    version, state = other.policy_state("send")
    probabilities = load_policy(state).probabilities(1)[0]
    rows = stored_rows(engine, [d.decision_id for d in after])
    for d in after:
        assert d.propensity == pytest.approx(probabilities[rows[d.decision_id].arm], abs=0, rel=1e-12)
    assert np.mean([d.variants["subject"].id == "sale" for d in after]) > 0.5

    other.create(bandit_spec(holdout=0.5))
    spec_v2 = service.assign_batch("send", [(f"w{i}", {}) for i in range(200)])
    assert {stored_rows(engine, [d.decision_id])[d.decision_id].version for d in spec_v2} == {2}
    assert {d.reason for d in spec_v2} == {"holdout", "policy"}
    other._engine.dispose()  # noqa: SLF001 - the engine this test made


@pytest.fixture
def poisoned(engine: Engine) -> str:
    """The database refuses decisions for the recipient 'poison' (a real error at insert time)."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER no_poison BEFORE INSERT ON decisions WHEN NEW.recipient_id = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ))
        else:
            conn.execute(text(
                "ALTER TABLE decisions ADD CONSTRAINT no_poison CHECK (recipient_id <> 'poison')"
            ))
    return "poison"


def test_a_decision_whose_commit_fails_is_an_error_and_nothing_of_its_batch_is_stored(
    service: ExperimentService, engine: Engine, poisoned: str
) -> None:
    service.create(bandit_spec())
    with pytest.raises(GroupCommitError, match="nothing of it was written"):
        service.assign("send", poisoned, {})
    with pytest.raises(GroupCommitError):
        service.assign_batch("send", [("fine-1", {}), (poisoned, {}), ("fine-2", {})])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM decisions")).scalar() == 0
    assert service.assign("send", "fine-3", {}).reason == "policy"  # the service goes on
    with engine.connect() as conn:
        assert conn.execute(text("SELECT recipient_id FROM decisions")).scalars().all() == ["fine-3"]


def test_concurrent_single_assigns_each_get_their_own_committed_decision(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(bandit_spec())
    answers: dict[str, Any] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(t: int) -> None:
        try:
            for i in range(25):
                d = service.assign("send", f"t{t}-{i}", {"first_name": f"N{t}"})
                with engine.connect() as conn:  # committed when the answer is back: visible elsewhere
                    found = conn.execute(
                        select(decisions_table.c.recipient_id).where(decisions_table.c.id == d.decision_id)
                    ).scalar()
                assert found == f"t{t}-{i}"
                assert d.variants["subject"].content in ("Spring sale", f"Hi N{t}")
                with lock:
                    answers[d.decision_id] = d
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(answers) == 12 * 25
    rows = stored_rows(engine, list(answers))
    assert len(rows) == len(answers)
    for decision_id, d in answers.items():
        row = rows[decision_id]
        assert (row.recipient_id, row.propensity, row.reason) == (d.recipient_id, d.propensity, d.reason)


ASSIGN_THEN_WAIT = """
    import sys, time
    from experiments.service import ExperimentService
    from experiments.store import make_engine
    service = ExperimentService(make_engine(sys.argv[1]))
    decision = service.assign("send", "killed", {})
    print(decision.decision_id, flush=True)
    time.sleep(60)
"""


def test_an_acknowledged_decision_survives_a_sigkill_right_after(
    db_url: str, service: ExperimentService, engine: Engine
) -> None:
    """On SQLite (WAL, synchronous=NORMAL) as on PostgreSQL: once assign returned, the process can be
    killed; the decision is in the database."""
    service.create(bandit_spec())
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(ASSIGN_THEN_WAIT), db_url],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    assert proc.stdout is not None
    decision_id = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rows = stored_rows(engine, [decision_id])
    assert rows[decision_id].recipient_id == "killed"


def test_recipients_sharing_field_values_get_what_each_would_get_alone(service: ExperimentService) -> None:
    """Renderings are shared within a batch by the values of the template fields; every recipient still
    gets the content and notes that rendering for them alone gives (try_render as the reference)."""
    from experiments.content import try_render

    source = "Hi {{ first_name }} from {{ city | default: 'here' }}"
    service.create(bandit_spec(
        slots={
            "subject": {"variants": [{"id": "hi", "content": source},
                                     {"id": "sale", "content": "Spring sale"}]},
            "cta": {"variants": [{"id": "shop", "content": "Shop"}, {"id": "see", "content": "See"}]},
        },
        default={"subject": "sale", "cta": "shop"},
    ))
    names: list[Any] = ["Ana", "Bo", None, 7, "", ["x"], "Ana", 7.0, True]
    contexts = [{"first_name": names[i % len(names)], "city": ["Oslo", None][i % 2]} for i in range(400)]
    contexts += [{}, {"city": "Rome"}, {"first_name": "Ana", "city": 3}]
    decisions = service.assign_batch("send", [(f"m{i}", c) for i, c in enumerate(contexts)])
    for d, context in zip(decisions, contexts, strict=True):
        own = try_render(source, context)
        if not own.ok:  # never offered; the note says why
            assert d.variants["subject"].id == "sale"
            assert d.content_notes == {"subject": f"not offered 'hi': {own.problem}"}
        elif d.variants["subject"].id == "hi":
            assert d.variants["subject"].content == own.text
            assert d.content_notes == {}
        else:
            assert (d.variants["subject"].content, d.content_notes) == ("Spring sale", {})
    assert {d.variants["subject"].id for d in decisions} == {"hi", "sale"}
    assert decisions[0].variants is not decisions[6].variants  # each decision has its own mapping
