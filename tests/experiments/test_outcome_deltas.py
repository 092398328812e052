"""An outcome post changes the rollups without reading its decisions a second time: the state after the
insert is folded in Python from the state before and the accepted outcomes, the rewards computed as the
log's SQL computes them, and the breakdowns changed by the reward-dependent terms alone. Each against
what it replaces: the SQL's own per-decision state (SQLite and PostgreSQL), and the breakdown change
computed as the whole contribution after less the whole contribution before."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import pq
from sqlalchemy import Column, MetaData, String, Table, event, select
from sqlalchemy.engine import Engine

from experiments.breakdown_deltas import TABLES, BreakdownChange, DecisionState
from experiments.models import OutcomeEvent
from experiments.rollup_deltas import fold_outcomes
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from experiments.store import outcomes_table as O
from experiments.store.breakdown_rollups import compiled_version
from experiments.store.id_lists import PAGE, column_in, id_value, rows_by_ids
from experiments.store.rollups import _state_query, attributed_states, attributed_values
from experiments.store.summaries import event_types, reward_rule
from tests.experiments.conftest import Clock

TYPES = ["click", "conversion", "revenue", "refund", "unsubscribe", "open"]


def test_the_rewards_folded_in_python_equal_the_sql(engine: object, clock: Clock) -> None:
    service = ExperimentService(engine, clock=clock, seed=5)  # type: ignore[arg-type]
    service.create(parse_spec({
        "key": "fold",
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "design": {"type": "ab"},
        "consent": {"missing": "allow"},
        "reward": {"events": {"click": 1.5, "conversion": 0.1, "unsubscribe": -2.0}, "value": "revenue",
                   "window_hours": 24, "guardrails": ["unsubscribe"]},
    }))
    decided = service.assign_batch("fold", [(f"u{i}", {}) for i in range(40)])
    rng = random.Random(7)
    with service.engine.connect() as conn:
        compiled = compiled_version(conn, "fold", 1)
    rule = reward_rule(compiled)
    states: dict[str, tuple[float, tuple[int, ...]]] = {}  # folded post by post, as the posts fold them
    for post in range(6):
        events = []
        for j in range(30):
            d = decided[rng.randrange(len(decided))].decision_id
            kind = rng.choice(TYPES)
            value = rng.choice([None, 0.1, 0.2, 12.5, -3.25, 1e-9]) if kind in ("revenue", "refund") else None
            late = rng.random() < 0.1
            event_id = f"p{post}e{j}" if rng.random() < 0.9 else f"p0e{j}"  # some repeats
            events.append(OutcomeEvent(event_id, d, kind, value,
                                       clock.now + (timedelta(days=3) if late else timedelta(minutes=j)),
                                       machine=rng.random() < 0.1))
        with service.engine.connect() as conn:
            before = {i: v for i, (v, _) in attributed_values(conn, compiled, [d.decision_id for d in decided]
                                                              ).items()}
            known = set(conn.execute(select(O.c.event_id)).scalars())
        service.record_outcomes(events)
        with service.engine.connect() as conn:
            new = conn.execute(
                select(O.c.decision_id, O.c.type, O.c.value).where(
                    O.c.event_id.not_in(known) if known else O.c.event_id.is_not(None),
                    O.c.attributed.is_(True), O.c.machine.is_(False), O.c.type.in_(rule.types))
                .order_by(O.c.id)).all()
            sql = attributed_states(conn, compiled, [d.decision_id for d in decided])
        folded = fold_outcomes(rule.types, rule.valued, before, [tuple(r) for r in new])
        states.update(folded)
        assert folded, "every post changes some decision"
        for decision_id, (value_sum, flags) in folded.items():
            reward, sql_flags = sql[decision_id]
            assert flags == sql_flags
            assert rule.reward(value_sum, flags) == pytest.approx(reward, rel=1e-12, abs=1e-12)
    assert set(states) == set(sql)
    assert rule.types == tuple(event_types(compiled))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
flags2 = st.tuples(st.integers(0, 1), st.integers(0, 1))


@settings(max_examples=300, deadline=None)
@given(
    propensity=st.floats(1e-3, 1.0), arm=st.integers(0, 3), policy=st.integers(-1, 4),
    segments=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.none() | st.sampled_from(["x", "y"])),
                      max_size=3, unique_by=lambda s: s[0]),
    covariates=st.lists(st.tuples(st.sampled_from(["n", "m"]), st.none() | finite), max_size=2,
                        unique_by=lambda c: c[0]),
    before=st.tuples(finite, flags2), after=st.tuples(finite, flags2),
)
def test_an_outcome_change_equals_the_whole_contribution_after_less_before(
    propensity: float, arm: int, policy: int, segments: list, covariates: list,
    before: tuple, after: tuple,
) -> None:
    types = ["click", "unsubscribe"]
    state = DecisionState(policy, arm, propensity, tuple(segments), tuple(covariates), flags=(0, 0))
    whole, direct = BreakdownChange(), BreakdownChange()
    whole.change(state.with_outcomes(*before), state.with_outcomes(*after), types)
    direct.outcome(state, before, after, types)
    for table in TABLES:  # one decision: every row starts at 0, so the differences are the same floats
        assert direct.rows(table) == whole.rows(table), table
    many = BreakdownChange()
    many.outcome(state, before, after, types, 3)  # three decisions changing alike, counted at once
    for table in TABLES:
        rows = whole.rows(table)
        assert [k for k, _ in many.rows(table)] == [k for k, _ in rows]
        for (_, got), (_, one) in zip(many.rows(table), rows, strict=True):
            assert got == {name: pytest.approx(3 * v, rel=1e-12) for name, v in one.items()}


def test_sqlite_seeks_the_decisions_outcomes_by_id(tmp_path: object, clock: Clock) -> None:
    # without statistics SQLite took the covering summary index by its leading experiment_key and
    # filtered every outcome of the experiment against the ids; told the index, it seeks each id
    engine = make_engine(f"sqlite:///{tmp_path}/plan.db")
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=5)
    service.create(parse_spec({
        "key": "plan", "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "design": {"type": "ab"}, "consent": {"missing": "allow"},
        "reward": {"events": {"click": 1.0}, "window_hours": 24},
    }))
    decided = service.assign_batch("plan", [(f"u{i}", {}) for i in range(20)])
    service.record_outcomes([OutcomeEvent(f"e{i}", d.decision_id, "click", None, clock.now)
                             for i, d in enumerate(decided)])
    ids = [d.decision_id for d in decided[:5]]
    with engine.connect() as conn:
        compiled = compiled_version(conn, "plan", 1)
        bound = _state_query(compiled, "sqlite").params(ids=id_value("sqlite", ids))
        sql = str(bound.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all())
        got = attributed_values(conn, compiled, ids)
    assert "ix_outcomes_experiment (experiment_key=? AND decision_id=?)" in plan, plan
    assert "ix_outcomes_summary" not in plan, plan
    assert sorted(got) == sorted(ids) and all(reward == 1.0 for _, reward in got.values())


def test_ids_of_any_text_are_found_by_their_lists_over_several_pages(engine: Engine) -> None:
    # one parameter per page: an array (PostgreSQL) or a JSON array's text (SQLite, json_each)
    odd = ['a"b', "back\\slash", "日本", "\U0001f600", "tab\tnew\nline", "[1]", "", "'", ",", "{}", "null",
           " padded ", "\\u0041"]
    ids = odd + [f"id{i}" for i in range(PAGE + 5)]
    table = Table("id_list_probe", MetaData(), Column("id", String, primary_key=True))
    table.create(engine)
    formats: list[Any] = []  # PostgreSQL: the arrays go in binary (as text psycopg tested every id)
    event.listen(engine, "after_cursor_execute", lambda conn, cursor, statement, *_: formats.append(
        getattr(getattr(cursor, "_query", None), "formats", None) if "ANY" in statement else None))
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i} for i in ids])
        query = select(table.c.id).where(column_in(conn, table.c.id))
        asked = sorted([*odd, "id7", "missing", "A", f"id{PAGE + 4}"])
        found = [r.id for r in rows_by_ids(conn, query, asked)]
        assert len(rows_by_ids(conn, query, ids)) == len(ids)
    assert sorted(found) == sorted([*odd, "id7", f"id{PAGE + 4}"])
    if engine.dialect.name == "postgresql":
        assert [f for f in formats if f] == [[pq.Format.BINARY]] * 3, formats  # one page, then two
