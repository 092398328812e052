"""``design.update.delays: model``: decisions are learned before their window closes, as part of a trial,
and once every outcome is in (every window closed) the policy is the one that waited."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import inspect, text

from bandit import load_policy
from experiments.errors import SpecError
from experiments.learning import TIME_ORIGIN
from experiments.models import OutcomeEvent
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from tests.experiments.conftest import make_spec

RATES = {"plain": 0.15, "urgent": 0.35}
WINDOW = 24.0


def bandit_spec(delays: str) -> object:
    return make_spec(
        key=f"late-{delays}",
        slots={"subject": {"variants": [{"id": v, "content": v} for v in RATES]}},
        design={"type": "bandit", "policy": "thompson", "update": {"delays": delays}},
        reward={"events": {"click": 1.0}, "window_hours": WINDOW},
    )


def send(service, key: str, tag: str, n: int, rng: np.random.Generator) -> list[tuple[str, float | None]]:
    """``n`` decisions; each clicks with its variant's rate after an exponential delay of mean 6 hours
    (cut at the window): ``(decision id, hours to its click or None)``."""
    decisions = service.assign_batch(key, [(f"{tag}-{i}", {}) for i in range(n)])
    out = []
    for d in decisions:
        clicks = rng.random() < RATES[d.variants["subject"].id]
        delay = rng.exponential(6.0)
        out.append((d.decision_id, delay if clicks and delay < WINDOW else None))
    return out


def post_due(service, clock, sends, sent_at, posted: set[str]) -> None:
    """Post every click whose time has come (stamped with its own time)."""
    events = []
    for (decision_id, delay), at in zip(sends, sent_at, strict=True):
        if delay is not None and decision_id not in posted and at + timedelta(hours=delay) <= clock.now:
            posted.add(decision_id)
            events.append(OutcomeEvent(f"c-{decision_id}", decision_id, "click", None,
                                       at + timedelta(hours=delay)))
    if events:
        service.record_outcomes(events)


def posterior(service, key: str) -> tuple[np.ndarray, np.ndarray]:
    return load_policy(service.policy_state(key)[1]).posterior()


def test_delays_model_learns_early_and_ends_where_waiting_ends(service, clock) -> None:
    spec = bandit_spec("model")
    service.create(spec)
    key = spec.key
    _, first_state = service.policy_state(key)
    rng = np.random.default_rng(4)
    sends, sent_at, posted = [], [], set()
    for batch in range(3):  # a send every 8 hours, learning every 2 hours
        at = clock.now
        new = send(service, key, f"b{batch}", 300, rng)
        sends += new
        sent_at += [at] * len(new)
        for _ in range(4):
            clock.advance(hours=2)
            post_due(service, clock, sends, sent_at, posted)
            service.learn(key)
    # 8 hours after the last send, well inside its 24-hour window: that send is learned, in part
    alpha, beta = posterior(service, key)
    learned_trials = float((alpha + beta).sum() - 2 * len(RATES))
    assert 600 < learned_trials < 900  # the first two sends fully-ish, the third in part, none waited
    # every click so far counts whole; the decisions still without one count as part of a trial
    whole = posterior_after_waiting(service, clock, first_state)
    np.testing.assert_allclose(alpha, whole[0], rtol=1e-12)
    assert np.all(beta < whole[1]) and float((whole[1] - beta).sum()) > 20
    # the windows close: every decision ends as a whole trial with its reward
    clock.advance(hours=WINDOW + 1)
    post_due(service, clock, sends, sent_at, posted)
    service.learn(key)
    alpha, beta = posterior(service, key)
    expected = posterior_after_waiting(service, clock, first_state)
    np.testing.assert_allclose(alpha, expected[0], rtol=1e-12)
    np.testing.assert_allclose(beta, expected[1], rtol=1e-12)
    assert float((alpha + beta).sum()) == pytest.approx(900 + 2 * len(RATES))


def posterior_after_waiting(service, clock, first_state: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The first snapshot updated once with every decision's reward so far: what waiting learns."""
    log = service.export_log("late-model")
    policy = load_policy(first_state)
    policy.update(
        len(log), np.array([r.arm for r in log], dtype=np.int64),
        np.array([r.reward for r in log], dtype=np.float64), np.array([r.propensity for r in log]),
        times=np.array([(r.created_at.replace(tzinfo=None) - TIME_ORIGIN) / timedelta(days=1) for r in log]),
    )
    return policy.posterior()


def test_waiting_learns_nothing_inside_the_window(service, clock) -> None:
    spec = bandit_spec("wait")
    service.create(spec)
    rng = np.random.default_rng(4)
    sends = send(service, spec.key, "w", 300, rng)
    clock.advance(hours=8)
    post_due(service, clock, sends, [clock.now - timedelta(hours=8)] * len(sends), set())
    service.learn(spec.key)
    alpha, beta = posterior(service, spec.key)
    assert float((alpha + beta).sum()) == 2 * len(RATES)


@pytest.mark.parametrize("design", [
    {"type": "ab", "update": {"delays": "model"}},
    {"type": "contextual", "policy": "vw", "context": ["country"], "update": {"delays": "model"}},
])
def test_delays_model_needs_a_policy_that_revises(design) -> None:
    variants = [{"id": v, "content": v} for v in ("a", "b")]
    data = {"key": "x", "slots": {"subject": {"variants": variants}}, "design": design,
            "reward": {"events": {"click": 1.0}}}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert "design.update.delays" in str(caught.value)


def test_create_tables_adds_the_weight_column_to_an_older_store(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_tables(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE decisions DROP COLUMN learned_weight"))
        conn.execute(text("DROP TABLE alembic_version"))  # made before migrations
    create_tables(engine)
    assert "learned_weight" in {c["name"] for c in inspect(engine).get_columns("decisions")}
    engine.dispose()
