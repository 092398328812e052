"""The adaptive reader's SQL sums against the same sums computed in numpy from the exported rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.adaptive_log import EMPTY_SUMS, ArmBatchSums
from experiments.adaptive_block import analyze_adaptive_data, analyze_estimated, estimate_log
from experiments.adaptive_reader import MAX_AIPW_ROWS, arm_labels
from experiments.assignment import compile_experiment
from experiments.models import OutcomeEvent
from tests.experiments.conftest import make_spec

RATES = {"plain": 0.05, "urgent": 0.25}


def _run_bandit(service, clock, *, batches: int = 4, size: int = 300) -> None:
    """A two-slot Thompson bandit with clicks, conversions carrying revenue and a few unsubscribes."""
    spec = make_spec(design={"type": "bandit", "policy": "gaussian_thompson", "update": {"delay_hours": 0}})
    service.create(spec)
    rng = np.random.default_rng(3)
    event = 0
    for b in range(batches):
        decisions = service.assign_batch("spring", [(f"r{b}-{i}", {}) for i in range(size)])
        events = []
        for d in decisions:
            if rng.random() < RATES[d.variants["subject"].id]:
                event += 1
                events.append(OutcomeEvent(f"e{event}", d.decision_id, "click"))
                if rng.random() < 0.3:
                    event += 1
                    events.append(OutcomeEvent(f"e{event}", d.decision_id, "revenue",
                                               float(rng.integers(5, 60))))
            if rng.random() < 0.02:
                event += 1
                events.append(OutcomeEvent(f"e{event}", d.decision_id, "unsubscribe"))
        service.record_outcomes(events)
        clock.advance(minutes=5)
        service.learn("spring")


def test_sql_sums_equal_numpy_sums_of_the_exported_rows(service, clock):
    _run_bandit(service, clock)
    data = service.read_adaptive("spring")
    exported = service.export_log("spring")
    compiled = compile_experiment(make_spec(design={"type": "bandit", "policy": "gaussian_thompson"}), 1)
    labels = arm_labels(compiled)
    assert data.log.decisions == len(exported) == 1200
    assert data.design == "bandit" and data.rows is None
    assert data.default_arm == "subject=plain,cta=shop" and data.floor == pytest.approx(0.01)
    assert len(data.log.metric_to_log["reward"]) >= 3  # one batch per policy version that decided
    reward = data.log.metric_to_log["reward"]
    for a, label in enumerate(labels):
        rows = [d for d in exported if d.arm == a]
        expected = ArmBatchSums.from_values([d.reward for d in rows], [d.propensity for d in rows])
        merged = EMPTY_SUMS
        for batch in reward:
            merged = merged + batch.sums(label)
        assert merged.n == expected.n
        for name in ("reward_sum", "reward_sum_squares", "w_sum", "w_reward_sum", "w2_sum",
                     "w2_reward_sum", "w2_reward_squares_sum", "min_propensity"):
            got, want = getattr(merged, name), getattr(expected, name)
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), name


def test_event_sums_count_decisions_with_the_event(service, clock):
    _run_bandit(service, clock, batches=2, size=200)
    data = service.read_adaptive("spring")
    summary = service.summarize("spring")
    clicks = sum(b.sums(arm).reward_sum for b in data.log.metric_to_log["click"] for arm in data.log.arms)
    unsubscribes = sum(b.sums(arm).reward_sum for b in data.log.metric_to_log["unsubscribe"]
                       for arm in data.log.arms)
    by_subject = [a for a in summary.arms if a.slot == "subject"]
    assert clicks == sum(a.event_counts["click"] for a in by_subject)
    assert unsubscribes == sum(a.event_counts["unsubscribe"] for a in by_subject)


def test_each_slot_is_compared_on_its_variants_with_the_other_slot_split_evenly(service, clock):
    _run_bandit(service, clock)
    data = service.read_adaptive("spring")
    summary = service.summarize("spring")
    results = analyze_adaptive_data(estimate_log(data), controls=summary.control, metrics=["reward", "click"],
                                    guardrails=["unsubscribe"])
    assert [s.slot for s in results.slots] == ["subject", "cta"]
    subject = results.slots[0].metric_to_analysis["click"].comparison("urgent")
    # clicks: 5% for plain, 25% for urgent whatever the cta
    assert subject.absolute_ci[0] < RATES["urgent"] - RATES["plain"] < subject.absolute_ci[1]
    assert subject.control == "plain" and subject.always_valid is not None
    assert results.policy_value is not None
    assert [v.policy for v in results.policy_value.arms] == list(data.log.arms)


def test_contextual_rows_are_read_up_to_the_cap_and_the_sums_used_above_it(service, clock, monkeypatch):
    spec = make_spec(design={"type": "contextual", "policy": "linear_ts", "context": ["segment"],
                             "update": {"delay_hours": 0}}, reward={"events": {"click": 1.0}})
    service.create(spec)
    rng = np.random.default_rng(4)
    decisions = service.assign_batch("spring", [(f"r{i}", {"segment": "ab"[i % 2]}) for i in range(120)])
    service.record_outcomes([OutcomeEvent(f"e{i}", d.decision_id, "click")
                             for i, d in enumerate(decisions) if rng.random() < 0.3])
    data = service.read_adaptive("spring")
    assert data.rows is not None and MAX_AIPW_ROWS >= 120
    rows = data.rows.metric_to_rows["click"]
    assert rows.reward.shape == (120,) and rows.features.shape[0] == 120
    assert rows.reward.sum() == sum(b.sums(a).reward_sum for b in data.log.metric_to_log["click"]
                                    for a in data.log.arms)
    summary = service.summarize("spring")
    results = analyze_estimated(estimate_log(data), summary)
    assert results is not None and "AIPW" in results.method
    monkeypatch.setattr("experiments.adaptive_reader.MAX_AIPW_ROWS", 100)
    capped = service.read_adaptive("spring")
    assert capped.rows is None
    results = analyze_estimated(estimate_log(capped), summary)
    assert results is not None and "IPW" in results.method and "more than are read as rows" in (
        results.estimator_note)


def test_the_decision_sums_read_the_covering_index_alone(tmp_path):
    """SQLite's plan of the decisions' side of the log: the covering index, no table rows (a check of the
    query's shape against the index, not of its speed)."""
    from experiments.adaptive_reader import decision_sums
    from experiments.store import create_tables, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    create_tables(engine)
    compiled = compile_experiment(make_spec(design={"type": "bandit", "policy": "thompson"}, reward={
        "events": {"click": 1.0}}), 1)
    query = decision_sums(compiled)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    engine.dispose()
    assert "USING COVERING INDEX ix_decisions_adaptive" in plan, plan
