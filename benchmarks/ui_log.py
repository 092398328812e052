"""The logs behind the /ui benchmark, written by ``INSERT ... SELECT`` over a generated series.

Three experiments of the subject line (an A/B/C test, a Thompson-sampling bandit, a contextual bandit by
linear Thompson sampling on ``device`` and ``segment``) are created through the service; then each gets
``n`` decisions spread evenly over :data:`DAYS` days, with its clicks (3.0%, 3.4%, 3.1% by variant) and
unsubscribes (0.2%), by one ``INSERT ... SELECT`` per table and event type (the pseudo-random draws of
:mod:`benchmarks.analysis`). An adaptive experiment's decisions are spread over one policy version per
:data:`DECISIONS_PER_VERSION` decisions, in time order, as a learner with batches of that size logs
them; each decision and its outcomes are learned by the version after the one that made it, except the
last :data:`UNLEARNED_SHARE` of the log, not learned yet. Its snapshots are real policy states (the
bandit's updated with a synthetic batch per version), inserted through the store.

After the load :func:`benchmarks.bulk_load.prepare_store` brings the store to what its writers would
have kept up to date (the rollups of every experiment version, and the snapshots' learned rewards,
which the learner adds up as it learns).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bandit import load_policy
from benchmarks.analysis import _draw, _integer, _text
from experiments.assignment import CompiledExperiment, compile_experiment
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import insert_snapshot
from experiments.store.repository import latest_snapshot

VARIANTS = [{"id": "plain", "content": "Spring sale", "features": {"tone": "plain"}},
            {"id": "urgent", "content": "Ends tonight", "features": {"tone": "urgent"}},
            {"id": "personal", "content": "For you", "features": {"tone": "personal"}}]
DESIGNS = {"ab": {"type": "ab"}, "bandit": {"type": "bandit", "policy": "thompson"},
           "contextual": {"type": "contextual", "policy": "linear_ts", "context": ["device", "segment"]}}
CLICK_RATES = (0.030, 0.034, 0.031)  # by arm (variant) index
DAYS = 20
DECISIONS_PER_VERSION = 5000  # the service's default learning batch
UNLEARNED_SHARE = 0.05
START = datetime(2026, 9, 1, 8)


def spec_of(key: str) -> dict[str, Any]:
    """The spec of experiment ``key`` (one of :data:`DESIGNS`)."""
    return {"key": key, "slots": {"subject": {"variants": VARIANTS}}, "design": DESIGNS[key],
            "reward": {"events": {"click": 1.0}, "guardrails": ["unsubscribe"]}}


def policy_versions(n: int) -> int:
    """How many learned policy versions an adaptive log of ``n`` decisions spreads over (at least 1)."""
    return max(1, n // DECISIONS_PER_VERSION)


def _series(dialect: str, n: int) -> str:
    """A ``SELECT`` of ``n`` from 1 to ``n``."""
    if dialect == "postgresql":
        return f"SELECT n FROM generate_series(CAST(1 AS BIGINT), CAST({n} AS BIGINT)) AS n"
    return (f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n}) "
            "SELECT n FROM seq")


def _decision_sql(dialect: str, compiled: CompiledExperiment, n: int) -> tuple[str, str]:
    """The ``SELECT`` of the decisions' rows (n, arm, ids, times, versions) and their ``INSERT``."""
    key, adaptive = compiled.spec.key, compiled.adaptive
    versions = policy_versions(n)
    day_offset = f"((n - 1) * {DAYS} / {n})"  # integer division: days in order of n
    if dialect == "postgresql":
        created = (f"(TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}' + {day_offset} * INTERVAL '1 day' "
                   "+ (n % 3600) * INTERVAL '1 second')")
        day = f"(DATE '{START:%Y-%m-%d}' + CAST({day_offset} AS INTEGER))"
        false = "false"
        decision_id = f"'{key}-' || lpad(CAST(n AS TEXT), 12, '0')"
        json_cast = "CAST({} AS JSON)".format
    else:
        created = (f"datetime('{START:%Y-%m-%d %H:%M:%S}', '+' || {day_offset} || ' days', "
                   "'+' || (n % 3600) || ' seconds')")
        day = f"date('{START:%Y-%m-%d}', '+' || {day_offset} || ' days')"
        false = "0"
        decision_id = f"'{key}-' || printf('%012d', n)"
        json_cast = "{}".format
    policy_version = f"(1 + ((n - 1) * {versions}) / {n})" if adaptive else "CAST(NULL AS INTEGER)"
    learned = (f"CASE WHEN n <= {int(n * (1 - UNLEARNED_SHARE))} THEN {policy_version} + 1 END"
               if adaptive else "CAST(NULL AS INTEGER)")
    rows = (f"SELECT n, {_integer('arm', 3)} AS arm, {decision_id} AS id, {created} AS created_at, "
            f"{day} AS day, "
            f"{policy_version} AS policy_version, {learned} AS learned_version, "
            f"{_integer('country', 2)} AS device, {_integer('clicks_30d', 4)} AS segment "
            f"FROM ({_series(dialect, n)}) AS seq")
    variants = "CASE arm " + " ".join(
        f"WHEN {arm} THEN '{{\"subject\": \"{VARIANTS[arm]['id']}\"}}'" for arm in range(3)) + " END"
    device = "CASE device WHEN 0 THEN 'mobile' ELSE 'desktop' END"
    segment = "CASE segment WHEN 0 THEN 'a' WHEN 1 THEN 'b' WHEN 2 THEN 'c' ELSE 'd' END"
    context = f"'{{\"device\": \"' || {device} || '\", \"segment\": \"' || {segment} || '\"}}'"
    reason = "policy" if adaptive else "assigned"
    insert = (
        "INSERT INTO decisions (id, experiment_key, version, recipient_id, variants, arm, propensity, "
        "policy_version, explored, fallback, reason, context, created_at, day, learned_version) "
        f"SELECT id, '{key}', {compiled.version}, 'r' || {_text(dialect, 'n')}, {json_cast(variants)}, arm, "
        f"{1 / 3}, policy_version, {false}, {false}, '{reason}', {json_cast(context)}, created_at, day, "
        f"learned_version FROM ({rows}) AS r"
    )
    return rows, insert


def _outcome_sql(dialect: str, compiled: CompiledExperiment, rows: str) -> list[str]:
    """The ``INSERT``s of the clicks and unsubscribes (learned with their decision)."""
    key = compiled.spec.key
    false, true = ("false", "true") if dialect == "postgresql" else ("0", "1")
    rate = "CASE arm " + " ".join(f"WHEN {arm} THEN {p}" for arm, p in enumerate(CLICK_RATES)) + " END"
    events = {"click": f"{_draw('click')} < {rate}", "unsubscribe": f"{_draw('unsubscribe')} < 0.002"}
    return [
        "INSERT INTO outcomes (event_id, decision_id, experiment_key, version, type, value, time, "
        "received_at, machine, attributed, learned_version, arm, fallback, reason, day) "
        f"SELECT id || '-{name}', id, '{key}', {compiled.version}, '{name}', NULL, created_at, created_at, "
        f"{false}, {true}, learned_version, arm, {false}, "
        f"'{'policy' if compiled.adaptive else 'assigned'}', day FROM ({rows}) AS r WHERE {condition}"
        for name, condition in events.items()
    ]


def _snapshots(engine: Engine, compiled: CompiledExperiment, n: int, rng: np.random.Generator) -> None:
    """Policy versions 2 .. ``policy_versions(n) + 1`` after the created one: the bandit updated with a
    synthetic batch of :data:`DECISIONS_PER_VERSION` per version, the contextual policy's state kept."""
    key = compiled.spec.key
    with engine.begin() as conn:
        first = latest_snapshot(conn, key, state=True)
        assert first is not None and first.state is not None
        policy = load_policy(first.state)
        learned = 0
        for version in range(first.version + 1, first.version + 1 + policy_versions(n)):
            if compiled.spec.design.type == "bandit":
                arms = rng.integers(0, 3, DECISIONS_PER_VERSION)
                rewards = (rng.random(DECISIONS_PER_VERSION) < np.take(CLICK_RATES, arms)).astype(float)
                policy.update(DECISIONS_PER_VERSION, arms, rewards, np.full(DECISIONS_PER_VERSION, 1 / 3))
            learned += DECISIONS_PER_VERSION
            at = START + timedelta(days=DAYS * (version - first.version) / policy_versions(n))
            insert_snapshot(conn, key, version, compiled.version, policy.to_bytes(), at,
                            design=compiled.spec.design.type, learned_reward=0.0, learned_decisions=learned)


def build_logs(engine: Engine, service: ExperimentService, n: int) -> float:
    """Create the three experiments and write ``n`` decisions of each with their outcomes and
    snapshots; the seconds it took."""
    started = time.perf_counter()
    dialect = engine.dialect.name
    rng = np.random.default_rng(5)
    for key in DESIGNS:
        info = service.create(parse_spec(spec_of(key)))
        compiled = compile_experiment(info.spec, info.version)
        rows, insert = _decision_sql(dialect, compiled, n)
        with engine.begin() as conn:
            conn.execute(text(insert))
            for sql in _outcome_sql(dialect, compiled, rows):
                conn.execute(text(sql))
        if compiled.adaptive:
            _snapshots(engine, compiled, n, rng)
    return time.perf_counter() - started
