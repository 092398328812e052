"""Is it learning? The policy's history by version and the share of decisions that explored, on SQLite and
PostgreSQL: probabilities checked against the closed-form Beta probability of being best, explored
counts against the decisions as returned at assignment."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import integrate, stats

from experiments.errors import NotFound
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from tests.experiments.conftest import Clock, make_spec
from tests.experiments.test_learning import send, thompson_spec


def prob_best(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P(theta_a is the largest) for independent Beta(alpha_a, beta_a):
    integral of f_a(x) * prod_{b != a} F_b(x) dx over [0, 1] (scipy quad, an independent reference)."""
    out = []
    for a in range(len(alpha)):
        others = [b for b in range(len(alpha)) if b != a]

        def integrand(x: float, a: int = a, others: list[int] = others) -> float:
            value = stats.beta.pdf(x, alpha[a], beta[a])
            for b in others:
                value *= stats.beta.cdf(x, alpha[b], beta[b])
            return float(value)

        out.append(integrate.quad(integrand, 0.0, 1.0, limit=200)[0])
    return np.array(out)


def test_policy_history_tracks_learning(service: ExperimentService, clock: Clock) -> None:
    service.create(thompson_spec())
    rng = np.random.default_rng(5)
    first, events = send(service, "subject-test", 1200, 0, rng, clock)
    service.record_outcomes(events)
    clock.advance(hours=25)
    service.learn("subject-test")
    history = service.policy_history("subject-test")
    assert [h.version for h in history] == [1, 2]
    assert [h.learned_decisions for h in history] == [0, 1200]
    assert [h.spec_version for h in history] == [1, 1]
    assert history[0].created_at < history[1].created_at
    assert history[1].created_at.tzinfo is not None
    # the prior Beta(1, 1) on three arms: each is best with probability 1/3 (10,000 Monte Carlo draws:
    # standard error <= 0.005, so 0.02 is four of them)
    assert history[0].arm_probabilities == pytest.approx([1 / 3] * 3, abs=0.02)
    # after learning: the closed form from the clicks and non-clicks of the first send
    clicked = {e.decision_id for e in events}
    arms = ["a", "b", "c"]
    wins = np.array(
        [sum(d.decision_id in clicked for d in first if d.variants["subject"].id == v) for v in arms]
    )
    sent = np.array([sum(d.variants["subject"].id == v for d in first) for v in arms])
    expected = prob_best(1.0 + wins, 1.0 + sent - wins)
    probs = history[1].arm_probabilities
    assert probs is not None
    assert sum(probs) == pytest.approx(1.0)
    assert probs == pytest.approx(expected.tolist(), abs=0.02)
    assert probs[2] > 0.9  # c (15 % clicks) has clearly won


def test_explored_decisions_overall_and_per_day(service: ExperimentService, clock: Clock) -> None:
    service.create(thompson_spec(update={"delay_hours": 0}))
    rng = np.random.default_rng(8)
    first, events = send(service, "subject-test", 800, 0, rng, clock)
    service.record_outcomes(events)
    service.learn("subject-test")
    clock.advance(days=1)
    second, _ = send(service, "subject-test", 700, 800, rng, clock)
    decisions = first + second
    summary = service.summarize("subject-test")
    assert summary.explored_decisions == sum(d.explored for d in decisions)
    assert 0 < summary.explored_decisions < len(decisions)
    expected = Counter((d.created_at.date(), d.variants["subject"].id) for d in decisions if d.explored)
    got = {(row.day, row.variant): row.explored for row in summary.daily if row.explored}
    assert got == dict(expected)
    assert len({row.day for row in summary.daily}) == 2
    assert summary.learnable_decisions == 1500


def test_history_of_other_designs(service: ExperimentService) -> None:
    service.create(make_spec())
    assert service.policy_history("spring") == []
    assert service.summarize("spring").explored_decisions == 0
    service.create(
        parse_spec(
            {
                "key": "ctx",
                "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
                "consent": {"missing": "allow"},
                "design": {"type": "contextual", "policy": "linear_ts", "context": ["device"]},
                "reward": {"events": {"click": 1.0}},
            }
        )
    )
    history = service.policy_history("ctx")
    assert len(history) == 1 and history[0].arm_probabilities is None
    with pytest.raises(NotFound, match="nope"):
        service.policy_history("nope")
