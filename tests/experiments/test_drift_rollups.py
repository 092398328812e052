"""The drift monitor's rollups equal the full scan of the log (SQLite and PostgreSQL).

The drift cells (day, policy version, learned version, arm) read from ``drift_rollups`` must equal
those the log recomputes (:func:`experiments.store.drift_rollups.log_drift_cells`) after random
workloads (the workloads of :mod:`tests.experiments.test_rollups`: repeated sends, late, duplicate and
machine outcomes, revisions, learning, erasure, retention) and after learning that marks decisions
before their outcomes are all in (trials), then rewards them again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from experiments.drift_deltas import DriftChange, move_drift_decision
from experiments.drift_reader import read_drift_cells
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.store import create_tables, make_engine
from experiments.store.drift_rollups import (
    DriftCell,
    log_drift_cells,
    stored_drift_cells,
    verify_drift_rollups,
)
from experiments.store.repository import consistent_read
from experiments.store.rollup_checks import rebuild_rollups, verify_experiment
from experiments.store.schema import _config
from tests.experiments.conftest import Clock
from tests.experiments.test_rollups import run_workload, spec_of, steps, versions_of

#: the workloads store numbers beyond the bound, as logs written before it hold them
pytestmark = pytest.mark.usefixtures("logs_from_before_the_number_bound")


def assert_cells_equal(stored: tuple[DriftCell, ...], scanned: tuple[DriftCell, ...]) -> None:
    assert [(c.key, c.decisions) for c in stored] == [(c.key, c.decisions) for c in scanned]
    for a, b in zip(stored, scanned, strict=True):
        assert a.reward_sum == pytest.approx(b.reward_sum, rel=1e-9, abs=1e-9), a.key
        assert a.reward_sum_squares == pytest.approx(b.reward_sum_squares, rel=1e-9, abs=1e-9), a.key


def assert_drift_equal_log(service: ExperimentService, key: str) -> None:
    compiled_versions = versions_of(service, key)
    for compiled in compiled_versions:
        with consistent_read(service.engine) as conn:
            assert verify_drift_rollups(conn, compiled) == [], compiled.version
            stored = stored_drift_cells(conn, key, compiled.version)
            assert_cells_equal(stored, log_drift_cells(conn, compiled))
    current = compiled_versions[-1]
    with consistent_read(service.engine) as conn:  # what the monitor reads: the current version's
        assert_cells_equal(read_drift_cells(conn, current), log_drift_cells(conn, current))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workload=st.lists(steps, min_size=1, max_size=14), design=st.sampled_from(["ab", "bandit", "delayed"]))
def test_drift_rollups_equal_the_full_scan_after_random_workloads(
    db_url: str, workload: list[Any], design: str
) -> None:
    engine = make_engine(db_url)
    create_tables(engine)
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    service = ExperimentService(engine, clock=clock, seed=5)
    key = f"d{uuid.uuid4().hex[:10]}"
    run_workload(service, clock, key, design, workload)
    assert_drift_equal_log(service, key)
    engine.dispose()


def _post(service: ExperimentService, ids: list[str], tag: str, at: datetime) -> None:
    """Clicks, revenue and conversions on the decisions, some duplicated, some machine-made."""
    events = []
    for i, d in enumerate(ids):
        kind = ("click", "revenue", "conversion")[i % 3]
        events.append(OutcomeEvent(f"{tag}-{i}", d, kind, 4.5 + i % 4 if kind == "revenue" else None,
                                   at + timedelta(minutes=i % 50)))
        if i % 5 == 0:
            events.append(OutcomeEvent(f"{tag}-{i}", d, kind, None, at))  # a duplicate
        if i % 7 == 0:
            events.append(OutcomeEvent(f"{tag}-m{i}", d, "click", None, at, machine=True))
    service.record_outcomes(events)


@pytest.mark.parametrize("design", ["bandit", "delayed"])
def test_learning_moves_decisions_and_their_rewards_to_the_learned_cells(
    service: ExperimentService, clock: Clock, design: str
) -> None:
    key = f"learn-{design}"
    service.create(spec_of(key, design, 1.0, 0.1))
    first = [d.decision_id for d in service.assign_batch(key, [(f"u{i}", {}) for i in range(90)])]
    _post(service, first[:60], "a", clock.now)
    clock.advance(hours=3 if design == "delayed" else 50)  # delayed: inside the 48-hour window
    service.learn(key)
    second = [d.decision_id for d in service.assign_batch(key, [(f"v{i}", {}) for i in range(40)])]
    _post(service, first[30:] + second, "b", clock.now - timedelta(hours=1))  # rewards of learned ones
    clock.advance(hours=60)
    service.learn(key)
    _post(service, first[:20], "c", clock.now - timedelta(hours=80))  # late for the policy, in window
    (compiled,) = versions_of(service, key)
    with consistent_read(service.engine) as conn:
        stored = read_drift_cells(conn, compiled)
        with_machine = read_drift_cells(conn, compiled, include_machine=True)
    assert_drift_equal_log(service, key)
    learned = [c for c in stored if c.learned_version is not None]
    assert learned and sum(c.reward_sum for c in learned) > 0  # learning moved decisions with rewards
    assert sum(c.decisions for c in stored) == sum(c.decisions for c in with_machine)
    assert sum(c.reward_sum for c in with_machine) > sum(c.reward_sum for c in stored)  # machine clicks


def _learned_bandit(service: ExperimentService, clock: Clock, key: str, n: int) -> list[str]:
    """A bandit's ``n`` decisions with outcomes, learned once their window closed; their ids."""
    service.create(spec_of(key, "bandit", 1.0, 0.1))
    ids = [d.decision_id for d in service.assign_batch(key, [(f"u{i}", {}) for i in range(n)])]
    _post(service, ids, "a", clock.now)
    clock.advance(hours=50)
    service.learn(key)
    return ids


def test_a_rebuild_gives_the_same_drift_cells_and_verify_finds_a_difference(
    service: ExperimentService, clock: Clock
) -> None:
    _learned_bandit(service, clock, "drifty", 50)
    (compiled,) = versions_of(service, "drifty")
    with service.engine.begin() as conn:
        before = stored_drift_cells(conn, "drifty", 1)
        rebuild_rollups(conn, compiled)
        after = stored_drift_cells(conn, "drifty", 1)
    assert_cells_equal(before, after)
    assert [c.differences for c in verify_experiment(service.engine, "drifty")] == [[]]
    with service.engine.begin() as conn:
        conn.execute(text("UPDATE drift_rollups SET decisions = decisions + 1, reward_sum = reward_sum + 2 "
                          "WHERE arm = 0 AND learned_version <> -1"))
    (check,) = verify_experiment(service.engine, "drifty")
    assert any(p.startswith("drift ") and "decisions rollup" in p for p in check.differences)
    assert any(p.startswith("drift ") and "reward_sum rollup" in p for p in check.differences)


def test_moving_n_decisions_alike_equals_moving_each() -> None:
    one_by_one: dict[Any, DriftChange] = {}
    for _ in range(3):
        move_drift_decision(one_by_one, "none", "v2", 1.5)
    together: dict[Any, DriftChange] = {}
    move_drift_decision(together, "none", "v2", 1.5, n=3)
    assert together == one_by_one
    assert together["v2"] == DriftChange(decisions=3, reward_sum=4.5, reward_sum_squares=6.75)
    assert together["none"] == DriftChange(decisions=-3, reward_sum=-4.5, reward_sum_squares=-6.75)


def test_only_learned_cells_are_stored_and_the_migration_moves_between_the_two_layouts(
    service: ExperimentService, clock: Clock
) -> None:
    first = _learned_bandit(service, clock, "derived", 60)
    second = [d.decision_id for d in service.assign_batch("derived", [(f"v{i}", {}) for i in range(40)])]
    _post(service, second + first[:10], "b", clock.now)  # rewards of unlearned and of learned decisions
    stored_rows = text("SELECT learned_version, count(*) FROM drift_rollups WHERE experiment_key = 'derived' "
                       "GROUP BY learned_version ORDER BY learned_version")
    with consistent_read(service.engine) as conn:
        cells = stored_drift_cells(conn, "derived", 1)
        layout = conn.execute(stored_rows).all()
    learned_versions = {c.learned_version for c in cells}
    assert None in learned_versions and len(learned_versions) == 2  # both kinds are read
    assert all(learned != -1 for learned, _ in layout)  # only the learned ones are stored
    assert_drift_equal_log(service, "derived")
    # the previous layout (0006) stored the cells of decisions not learned yet: down and up again
    with service.engine.begin() as conn:
        command.downgrade(_config(conn), "0006_snapshot_versions_index")
    with service.engine.connect() as conn:
        not_learned = conn.execute(text("SELECT decisions, reward_sum FROM drift_rollups "
                                        "WHERE learned_version = -1")).all()
    assert sum(n for n, _ in not_learned) == sum(c.decisions for c in cells if c.learned_version is None)
    assert sum(s for _, s in not_learned) == pytest.approx(
        sum(c.reward_sum for c in cells if c.learned_version is None))
    with service.engine.begin() as conn:
        command.upgrade(_config(conn), "head")
    with consistent_read(service.engine) as conn:
        assert conn.execute(stored_rows).all() == layout
        assert_cells_equal(stored_drift_cells(conn, "derived", 1), cells)
    assert_drift_equal_log(service, "derived")
