"""The breakdown rollups (by segment, by covariate, the adaptive sums) equal the log's full scans: the
segment texts computed in Python at write time equal the SQL's on awkward values, decisions whose
context is dropped move to the missing segment, the send-time segment stays, and an upgraded store is
backfilled (SQLite and PostgreSQL). The random workloads are in ``test_rollups.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from analysis.adaptive_log import ArrayLog
from experiments.adaptive_reader import adaptive_log, log_adaptive_sums, read_adaptive_log
from experiments.errors import InvalidInput
from experiments.limits import MAX_SEGMENTS
from experiments.models import OutcomeEvent
from experiments.recipients import erase_recipient
from experiments.retention import prune_contexts
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine, upgrade_store
from experiments.store import decisions_table as D
from experiments.store.breakdown_rollups import (
    CONTEXT,
    ID,
    STATE_COLUMNS,
    VARIANTS,
    locked_rows,
    states_of_rows,
)
from experiments.store.breakdown_tables import overflowed_attributes, stored_adaptive_sums
from experiments.store.rollup_checks import verify_experiment
from experiments.store.segment_values import (
    covariate_numbers,
    decision_states,
    from_variants,
    segment_attributes,
    segment_texts,
)
from experiments.store.segments import _context_number, _segment_text, covariate_arm_stats, segment_arm_stats
from experiments.store.summaries import event_types
from experiments.store.tables import rollup_segments_table
from tests.experiments.conftest import Clock, make_spec
from tests.experiments.test_rollups import CONTEXTS, RECORDED, SECRET, versions_of

#: the workloads store numbers beyond the bound, as logs written before it hold them
pytestmark = pytest.mark.usefixtures("logs_from_before_the_number_bound")

MORE = [
    {"segment": "日本", "score": -0.0, "n": 1.5e300, "flag": None, "nested": {"é": {"x": True}}},
    {"segment": "", "score": 10**25, "n": "3", "länd": [], "nested": {}},
    {"segment": "a b", "score": 0.1, "n": 1e-5, "länd": 1e16, "nested": [None, False, "ü"]},
    # longer than an index entry may be (PostgreSQL: 2,704 bytes): the key holds a hash of the text
    {"segment": "ü" * 1024, "nested": ["日本語" * 100] * 20},
]


def recorded_spec(key: str, **overrides: Any) -> Any:
    return make_spec(key=key, record=RECORDED, reward={"events": {"click": 1.0}, "value": "revenue"},
                     consent={"missing": "allow"}, **overrides)


def assign_all(service: ExperimentService, key: str, contexts: list[dict[str, Any]]) -> list[str]:
    decided = service.assign_batch(key, [(f"r{i}", c) for i, c in enumerate(contexts)])
    return [d.decision_id for d in decided]


def reward_some(service: ExperimentService, clock: Clock, ids: list[str]) -> None:
    service.record_outcomes([OutcomeEvent(f"e{i}", d, "click" if i % 2 else "revenue", 2.5 + i,
                                          clock.now + timedelta(minutes=1)) for i, d in enumerate(ids)])


def test_the_segment_texts_and_numbers_computed_at_write_time_equal_the_sql(db_url: str) -> None:
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=Clock(datetime(2026, 3, 2, 9, tzinfo=UTC)), seed=1)
    service.create(recorded_spec("awk"))
    contexts = CONTEXTS + MORE + [{"länd": "x", "score": float(i) / 7} for i in range(20)]
    assign_all(service, "awk", contexts)
    compiled = versions_of(service, "awk")[0]
    attributes = segment_attributes(compiled)
    assert set(RECORDED) <= set(attributes)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        texts = [_segment_text(a, compiled, dialect).label(f"s{j}") for j, a in enumerate(attributes)]
        numbers = [_context_number(a, dialect).label(f"x{j}") for j, a in enumerate(RECORDED)]
        rows = conn.execute(select(D.c.context, D.c.variants, *texts, *numbers)).all()
        python = segment_texts(conn, compiled, [(r.context, r.variants) for r in rows])
    assert len(rows) == len(contexts)
    for row, computed in zip(rows, python, strict=True):
        assert computed == tuple((a, row[2 + j]) for j, a in enumerate(attributes)), row.context
        by_attribute = dict(covariate_numbers(compiled, row.context))
        for j, a in enumerate(RECORDED):
            assert by_attribute[a] == row[2 + len(attributes) + j], (a, row.context)
    # the awkward values are there: 1.0 apart from 1, booleans as JSON, a float SQLite shortens
    values = {t for c in python for a, t in c if a == "score"}
    assert {"1.0", "1"} <= values and "true" in {t for c in python for a, t in c if a == "flag"}
    engine.dispose()


def test_dropped_contexts_move_to_the_missing_segment_and_leave_the_covariate(db_url: str) -> None:
    clock = Clock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=2)
    service.create(recorded_spec("drop", design={"type": "bandit", "policy": "gaussian_thompson"}))
    ids = assign_all(service, "drop", CONTEXTS * 4)
    reward_some(service, clock, ids)
    erase_recipient(engine, "r0", SECRET)
    assert all(not c.differences for c in verify_experiment(engine, "drop"))
    clock.advance(hours=24 * 10)
    pruned = prune_contexts(engine, clock.now)
    assert pruned == len(ids) - 1  # the erased recipient's context went already
    assert all(not c.differences for c in verify_experiment(engine, "drop"))
    compiled = versions_of(service, "drop")[0]
    with engine.connect() as conn:
        assert {s for s, _ in segment_arm_stats(conn, compiled, "länd")} == {None}
        groups = segment_arm_stats(conn, compiled, "segment")
        covariates = covariate_arm_stats(conn, compiled, "score")
    assert {segment for segment, _ in groups} == {None}
    assert all(c.xy.n == 0 and c.xy.sum_xy == 0 for c in covariates.values())
    assert sum(c.decisions for c in covariates.values()) == len(ids)
    after = service.results("drop", segment="segment", covariate="score")
    assert after.segments is not None
    engine.dispose()


def test_the_adaptive_sums_read_from_the_rollups_equal_the_full_scan(db_url: str) -> None:
    clock = Clock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=4)
    service.create(recorded_spec("ada", design={"type": "bandit", "policy": "gaussian_thompson",
                                                "update": {"every_outcomes": 1}}))
    for batch in range(3):
        ids = assign_all(service, "ada", CONTEXTS * 5)
        reward_some(service, clock, ids[batch::2])
        clock.advance(hours=24 * 4)  # past the reward window: learnable
        service.learn("ada")
    compiled = versions_of(service, "ada")[0]
    with engine.connect() as conn:
        stored = read_adaptive_log(conn, compiled)
        scanned = adaptive_log(compiled, log_adaptive_sums(conn, compiled))
        as_rows = adaptive_log(compiled, stored_adaptive_sums(conn, "ada", compiled.version,
                                                              event_types(compiled)))
    # the rollups read as arrays are the rollups read row by row, exactly
    assert stored.decisions == as_rows.decisions and stored.arms == as_rows.arms
    for metric, batches in stored.metric_to_log.items():
        assert isinstance(batches, ArrayLog)
        assert list(batches) == list(as_rows.metric_to_log[metric])
    assert stored.arms == scanned.arms and stored.decisions == scanned.decisions == 90
    assert stored.metric_to_log.keys() == scanned.metric_to_log.keys()
    assert len(stored.metric_to_log["reward"]) >= 2  # several policy versions
    for metric, batches in stored.metric_to_log.items():
        for a, b in zip(batches, scanned.metric_to_log[metric], strict=True):
            assert a.version == b.version
            for arm in stored.arms:
                x, y = a.arm_to_sums[arm], b.arm_to_sums[arm]
                assert (x.n, x.min_propensity) == (y.n, y.min_propensity)
                for name in ("reward_sum", "w_sum", "w_reward_sum", "w2_sum", "w2_reward_squares_sum"):
                    assert abs(getattr(x, name) - getattr(y, name)) <= 1e-9 * max(1.0, abs(getattr(y, name)))
    engine.dispose()


def test_the_send_time_segment_is_read_from_the_variants_and_stays_after_a_prune(db_url: str) -> None:
    clock = Clock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=5)
    service.create(recorded_spec("timed", send_time={"hours": [9, 12, 18], "timezone_attr": "tz",
                                                      "default_timezone": "UTC"}))
    ids = assign_all(service, "timed", [{**c, "tz": "Europe/Berlin"} for c in CONTEXTS * 3])
    reward_some(service, clock, ids)
    before = service.summarize_segments("timed", "send_time")
    clock.advance(hours=24 * 10)
    prune_contexts(engine, clock.now)
    assert all(not c.differences for c in verify_experiment(engine, "timed"))
    assert service.summarize_segments("timed", "send_time") == before
    engine.dispose()


@pytest.mark.parametrize(("timed", "recorded"), [(False, True), (True, True), (False, False)])
def test_the_states_read_as_json_text_and_shared_equal_each_rows_own(db_url: str, timed: bool,
                                                                      recorded: bool) -> None:
    # an outcome post reads contexts and variants as JSON text and computes one state per distinct row;
    # each decision's state equals the one computed from its own row, as SQLAlchemy parses its JSON
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=Clock(datetime(2026, 3, 2, 9, tzinfo=UTC)), seed=6)
    timing = {"send_time": {"hours": [9, 12, 18], "timezone_attr": "tz", "default_timezone": "UTC"}}
    spec = recorded_spec("memo", design={"type": "bandit", "policy": "gaussian_thompson"},
                         **(timing if timed else {}))
    unrecorded = {"record": [], "consent": spec.consent.model_copy(update={"attribute": None})}
    service.create(spec if recorded else spec.model_copy(update=unrecorded))
    contexts = [{**c, "tz": tz} for c in CONTEXTS + MORE for tz in ("Europe/Berlin", "Asia/Tokyo")]
    ids = assign_all(service, "memo", contexts * 3 + [{"consent": False}])
    erase_recipient(engine, "r0", SECRET)  # its context dropped: SQL NULL
    compiled = versions_of(service, "memo")[0]
    assert bool(from_variants(compiled)) == timed and bool(compiled.stored_attributes) == recorded
    with engine.begin() as conn:
        rows = locked_rows(conn, [*ids, "no-such-decision"])
        assert {type(r[CONTEXT]) for r in rows} == {str, type(None)}
        assert {type(r[VARIANTS]) for r in rows} == {str}
        shared = states_of_rows(conn, compiled, rows)
        parsed = conn.execute(select(D.c.id, *[D.c[c] for c in STATE_COLUMNS]).where(D.c.fallback.is_(False)))
        alone = {r.id: decision_states(conn, compiled, [r._mapping])[0] for r in parsed}
    assert sorted(r[ID] for r in rows) == sorted(ids)
    assert shared == alone and len(shared) > len(contexts) * 2
    assert len({id(state) for state in shared.values()}) < len(shared)  # computed once for rows alike
    engine.dispose()


def test_an_upgraded_store_has_its_breakdowns_backfilled(db_url: str) -> None:
    from tests.experiments.test_migrations import _load_dump

    engine = make_engine(db_url)
    _load_dump(db_url, engine)
    upgrade_store(engine)
    for key in ("legacy_ab", "legacy_ts"):
        checks = verify_experiment(engine, key)
        assert checks and all(not c.differences for c in checks)
    engine.dispose()


def test_an_attribute_past_the_segment_limit_overflows_and_its_results_read_the_log(db_url: str) -> None:
    clock = Clock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=6)
    service.create(recorded_spec("many"))
    few = [{"segment": f"s{i % 3}", "score": i} for i in range(MAX_SEGMENTS)]
    reward_some(service, clock, assign_all(service, "many", few))
    with engine.connect() as conn:
        assert overflowed_attributes(conn, "many", 1) == set()
    more = service.assign_batch("many", [(f"m{i}", {"segment": "s0", "score": 1000 + i}) for i in range(5)])
    assert len(more) == 5
    with engine.connect() as conn:
        assert overflowed_attributes(conn, "many", 1) == {"score"}
        kept = {a for (a,) in conn.execute(select(rollup_segments_table.c.attribute).distinct())}
    assert "score" not in kept and "segment" in kept
    assert all(not c.differences for c in verify_experiment(engine, "many"))
    with pytest.raises(InvalidInput, match=f"segments need an attribute with at most {MAX_SEGMENTS}"):
        service.summarize_segments("many", "score")
    assert service.summarize_segments("many", "segment").attribute == "segment"
    clock.advance(hours=24 * 10)
    prune_contexts(engine, clock.now)  # the values are gone: results by it read the log, which has none
    assert service.summarize_segments("many", "score").attribute == "score"
    engine.dispose()


def test_a_duplicate_beside_a_new_outcome_changes_only_what_was_accepted(db_url: str) -> None:
    clock = Clock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=7)
    service.create(recorded_spec("dup"))
    first, second = assign_all(service, "dup", CONTEXTS[:2])
    at = clock.now + timedelta(minutes=1)
    service.record_outcomes([OutcomeEvent("a", first, "revenue", 4.0, at)])
    # "a" again (a duplicate: its decision is read, but nothing of it accepted) beside a new event
    counts = service.record_outcomes([OutcomeEvent("a", first, "revenue", 4.0, at),
                                      OutcomeEvent("b", second, "click", None, at)])
    assert (counts.accepted, counts.duplicates) == (1, 1)
    assert all(not c.differences for c in verify_experiment(engine, "dup"))
    engine.dispose()
