"""Rollups equal the full scan of the log after random workloads (SQLite and PostgreSQL).

Each workload mixes assignments (batches, repeated sends, frequency caps), outcomes (duplicates,
orphans, late, before the decision, machine-made, values on types the reward does not count), spec
revisions, learning, erasures and retention; after it every spec version's rollups must equal what
the log recomputes (:func:`experiments.store.rollup_checks.verify_rollups`: the cells, and the
breakdowns by segment and covariate and the adaptive sums), and the results the service reads from them
must equal the results computed from the log in full.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from experiments.assignment import compile_experiment
from experiments.learning_progress import version_allocations
from experiments.models import OutcomeEvent
from experiments.recipients import erase_recipient
from experiments.retention import prune_store
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import create_tables, make_engine
from experiments.store.repository import consistent_read
from experiments.store.rollup_checks import rebuild_all_rollups, rebuild_rollups, verify_rollups
from experiments.store.summaries import (
    arm_stats,
    daily_stats,
    decision_groups,
    excluded_counts,
    fallback_stats,
    log_cells,
    log_excluded_counts,
    summary_day_cells,
    version_groups,
)
from tests.experiments.conftest import Clock

#: the workloads store numbers beyond the bound, as logs written before it hold them
pytestmark = pytest.mark.usefixtures("logs_from_before_the_number_bound")

SECRET = b"0123456789abcdef0123"
TYPES = ["open", "click", "conversion", "revenue", "unsubscribe", "bounce"]
#: Contexts the recipients are assigned with, by recipient: segment texts and covariates of awkward values
#: (a non-ASCII key, booleans, 1.0 beside 1, floats SQLite and Python spell apart, nested values, null).
CONTEXTS = [
    {"segment": "x", "länd": "DE", "flag": True, "score": 1.0, "nested": {"a": [1, 2], "b": "ü"}, "n": 3},
    {"segment": "y", "länd": "ÉS", "flag": False, "score": 1, "nested": [1, 2.5], "n": 0.1 + 0.2},
    {"segment": None, "flag": "true", "score": 1e20, "n": -7, "nested": None},
    {},
    {"score": 2.5e-7, "n": True, "länd": 12, "segment": "x"},
    {"segment": "y", "score": 123456789.123456789, "n": 2**70, "flag": 1},
]
RECORDED = ["segment", "länd", "flag", "score", "nested", "n"]


def spec_of(key: str, design: str, click: float, holdout: float, frequency: bool = False) -> Any:
    data: dict[str, Any] = {
        "key": key,
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "gaussian_thompson"} if design == "bandit" else {"type": "ab"},
        "holdout": holdout,
        "record": RECORDED,
        "reward": {"events": {"click": click, "conversion": 5.0}, "value": "revenue", "window_hours": 48,
                   "guardrails": ["unsubscribe"], "machine_user_agents": ["scanner"]},
    }
    if design == "delayed":  # learned before the window closes, as trials (learning_log.set_weights)
        data["design"] = {"type": "bandit", "policy": "gaussian_thompson", "update": {"delays": "model"}}
    if frequency:
        data["frequency"] = {"max_sends": 2, "per_days": 7}
    return parse_spec(data)


def versions_of(service: ExperimentService, key: str) -> list[Any]:
    info = service.get(key)
    with service.engine.connect() as conn:
        texts = conn.execute(
            text("SELECT version, spec FROM experiment_versions WHERE key = :k ORDER BY version"), {"k": key}
        ).all()
    assert texts[-1][0] == info.version
    return [compile_experiment(ExperimentSpec.model_validate_json(s), int(v)) for v, s in texts]


def assert_rollups_equal_log(service: ExperimentService, key: str) -> None:
    for compiled in versions_of(service, key):
        with consistent_read(service.engine) as conn:
            assert verify_rollups(conn, compiled) == [], compiled.version
            stored, scanned = decision_groups(conn, compiled), log_cells(conn, compiled)
            assert arm_stats(conn, compiled).keys() == arm_stats(conn, compiled, scanned).keys()
            for arm, stats in arm_stats(conn, compiled).items():
                ref = arm_stats(conn, compiled, scanned)[arm]
                assert (stats.decisions, stats.event_counts, stats.explored) == (
                    ref.decisions, ref.event_counts, ref.explored)
                assert stats.reward.sum == pytest.approx(ref.reward.sum, rel=1e-9, abs=1e-9)
                assert stats.reward.sum_cubes == pytest.approx(ref.reward.sum_cubes, rel=1e-9, abs=1e-9)
            assert [(r, s.decisions, s.event_counts) for r, s in fallback_stats(conn, compiled).items()] == [
                (r, s.decisions, s.event_counts) for r, s in fallback_stats(conn, compiled, scanned).items()]
            assert [(d, a, s.decisions, s.event_counts) for d, a, s in daily_stats(conn, compiled)] == [
                (d, a, s.decisions, s.event_counts) for d, a, s in daily_stats(conn, compiled, scanned)]
            assert excluded_counts(conn, compiled) == log_excluded_counts(conn, compiled)
            assert [(c.key, c.decisions, c.learned) for c in stored] == [
                (c.key, c.decisions, c.learned) for c in scanned]
            assert_day_cells_and_version_groups_equal_log(conn, compiled, scanned)


def assert_day_cells_and_version_groups_equal_log(conn: Any, compiled: Any, scanned: Any) -> None:
    """The summary's cells summed over policy versions by the database, and the learning summary's
    counts summed over days by it, give what the log's cells give."""
    day_cells = summary_day_cells(conn, compiled)
    assert all(c.policy_version is None and c.decisions > 0 for c in day_cells)
    for stats_of in (arm_stats, fallback_stats):
        mine, ref = stats_of(conn, compiled, day_cells), stats_of(conn, compiled, scanned)
        assert mine.keys() == ref.keys()
        for group, stats in mine.items():
            assert (stats.decisions, stats.event_counts, stats.explored) == (
                ref[group].decisions, ref[group].event_counts, ref[group].explored)
            for name in ("sum", "sum_squares", "sum_cubes"):
                assert getattr(stats.reward, name) == pytest.approx(
                    getattr(ref[group].reward, name), rel=1e-9, abs=1e-9)
    mine_days, ref_days = daily_stats(conn, compiled, day_cells), daily_stats(conn, compiled, scanned)
    assert [(d, a, s.decisions, s.event_counts, s.explored) for d, a, s in mine_days] == [
        (d, a, s.decisions, s.event_counts, s.explored) for d, a, s in ref_days]
    for (_, _, s), (_, _, r) in zip(mine_days, ref_days, strict=True):
        assert s.reward.sum == pytest.approx(r.reward.sum, rel=1e-9, abs=1e-9)
    assert version_allocations(compiled, version_groups(conn, compiled), {}) == version_allocations(
        compiled, scanned, {})


# one step of a workload: what it does and its parameters
steps = st.one_of(
    st.tuples(st.just("assign"), st.integers(1, 12), st.integers(0, 3)),
    st.tuples(st.just("send"), st.integers(1, 8), st.integers(0, 2)),
    st.tuples(st.just("outcomes"), st.lists(st.tuples(
        st.integers(0, 200), st.sampled_from(TYPES), st.sampled_from(["none", "value", "late", "early"]),
        st.sampled_from(["human", "flagged", "agent"]), st.integers(0, 30)), min_size=1, max_size=12)),
    st.tuples(st.just("advance"), st.integers(1, 60)),
    st.tuples(st.just("revise"), st.sampled_from([1.0, 2.0, 0.5])),
    st.tuples(st.just("learn")),
    st.tuples(st.just("erase"), st.integers(0, 40)),
    st.tuples(st.just("prune")),
)


def run_workload(
    service: ExperimentService, clock: Clock, key: str, design: str, workload: list[Any]
) -> None:
    service.create(spec_of(key, design, 1.0, 0.1, frequency=design == "ab"))
    decision_ids: list[str] = []
    event_ids: list[str] = []
    erased: set[int] = set()
    for step in workload:
        kind = step[0]
        if kind in ("assign", "send"):
            n, offset = step[1], step[2]
            users = [(offset * 5 + i) % 40 for i in range(n)]
            recipients = [(f"u{u}", CONTEXTS[u % len(CONTEXTS)]) for u in users]
            send_id = f"send-{offset}" if kind == "send" else None
            decided = service.assign_batch(key, recipients, send_id=send_id)
            decision_ids += [d.decision_id for d in decided]
        elif kind == "outcomes" and decision_ids:
            events = []
            for pick, etype, when, source, repeat in step[1]:
                decision = decision_ids[pick % len(decision_ids)] if pick < 190 else f"missing-{pick}"
                moment = clock.now + {"none": timedelta(minutes=1), "value": timedelta(hours=1),
                                      "late": timedelta(days=5), "early": -timedelta(days=40)}[when]
                value = 12.5 + repeat if when == "value" or etype == "revenue" else None
                event_id = event_ids[repeat % len(event_ids)] if repeat < 5 and event_ids else (
                    f"e{len(event_ids)}")
                event_ids.append(event_id)
                events.append(OutcomeEvent(event_id, decision, etype, value, moment,
                                           machine=source == "flagged",
                                           user_agent="scanner 1" if source == "agent" else None))
            service.record_outcomes(events)
        elif kind == "advance":
            clock.advance(hours=step[1])
        elif kind == "revise":
            service.create(spec_of(key, design, step[1], 0.2, frequency=design == "ab"))
        elif kind == "learn" and design != "ab":
            service.learn(key)
        elif kind == "erase" and step[1] not in erased:
            # once per recipient: an event id posted again after its first erasure is accepted anew,
            # and a second erasure of the same recipient would make the same token of it (a conflict)
            erased.add(step[1])
            erase_recipient(service.engine, f"u{step[1]}", SECRET)
        elif kind == "prune":
            prune_store(service.engine, clock.now + timedelta(days=1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workload=st.lists(steps, min_size=1, max_size=14), design=st.sampled_from(["ab", "bandit"]))
def test_rollups_equal_the_full_scan_after_random_workloads(
    db_url: str, workload: list[Any], design: str
) -> None:
    engine = make_engine(db_url)
    create_tables(engine)  # one database for the test: each example has an experiment of its own
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    service = ExperimentService(engine, clock=clock, seed=3)
    key = f"w{uuid.uuid4().hex[:10]}"
    run_workload(service, clock, key, design, workload)
    assert_rollups_equal_log(service, key)
    engine.dispose()


def test_rebuild_all_rollups_fills_every_version_of_every_experiment(
    service: ExperimentService, clock: Clock
) -> None:
    # as after a bulk load: a log whose rollups are missing (emptied here), in two experiments, one of
    # them with two spec versions
    for key, clicks in (("first", [1.0, 2.0]), ("second", [1.0])):
        for i, click in enumerate(clicks):
            service.create(spec_of(key, "ab", click, 0.1))
            decided = service.assign_batch(key, [(f"{key}{i}u{j}", {}) for j in range(30)])
            service.record_outcomes([OutcomeEvent(f"{key}{i}c{j}", d.decision_id, TYPES[j % 4],
                                                  2.0 if TYPES[j % 4] == "revenue" else None,
                                                  clock.now + timedelta(minutes=j))
                                     for j, d in enumerate(decided)])
    with service.engine.begin() as conn:
        for table in ("rollups", "rollup_events", "rollup_counts"):
            conn.execute(text(f"DELETE FROM {table}"))
    with service.engine.connect() as conn:
        assert all(verify_rollups(conn, c) for c in versions_of(service, "first"))
    with service.engine.begin() as conn:
        assert rebuild_all_rollups(conn) == 3
    for key in ("first", "second"):
        assert_rollups_equal_log(service, key)
    with service.engine.connect() as conn:
        totals = [sum(c.decisions for c in decision_groups(conn, v)) for v in versions_of(service, "first")]
    assert totals == [30, 30]


def test_a_rebuild_gives_the_same_rollups_and_verify_finds_a_difference(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(spec_of("fixed", "ab", 1.0, 0.1))
    decided = service.assign_batch("fixed", [(f"u{i}", {}) for i in range(60)])
    service.record_outcomes([OutcomeEvent(f"c{i}", d.decision_id, t, 3.0 if t == "revenue" else None,
                                          clock.now + timedelta(minutes=i))
                             for i, d in enumerate(decided) for t in TYPES[i % 3: i % 3 + 2]])
    (compiled,) = versions_of(service, "fixed")
    with service.engine.begin() as conn:
        before = decision_groups(conn, compiled)
        rebuild_rollups(conn, compiled)
        after = decision_groups(conn, compiled)
    assert [(c.key, c.decisions, dict(c.event_counts)) for c in before] == [
        (c.key, c.decisions, dict(c.event_counts)) for c in after]
    with service.engine.begin() as conn:
        conn.execute(text("UPDATE rollups SET decisions = decisions + 1 WHERE arm = 0 AND fallback = :f"),
                     {"f": False})
        conn.execute(text("UPDATE rollup_events SET decisions = decisions + 2 WHERE type = 'click'"))
    with service.engine.connect() as conn:
        problems = verify_rollups(conn, compiled)
    assert problems and any("decisions rollup" in p and "arm=0" in p for p in problems)
    assert any("events[click]" in p for p in problems)
