"""Policies that forget (``discount``, ``window_days``) learn through the service: the learning loop
passes each decision's time, so what a spec accepts also learns."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from bandit import load_policy
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from tests.experiments.conftest import Clock


def forgetting_spec(policy: str, **options: float) -> object:
    return parse_spec(
        {
            "key": "forget",
            "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
            "design": {"type": "bandit", "policy": policy, "options": options, "update": {"delay_hours": 0}},
            "reward": {"events": {"click": 1.0}, "window_hours": 24},
            "consent": {"missing": "allow"},
        }
    )


def test_a_discounted_thompson_policy_learns_with_the_decisions_ages(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(forgetting_spec("thompson", discount=0.5))
    old = service.assign_batch("forget", [(f"old{i}", {}) for i in range(40)])
    clock.advance(days=1)
    new = service.assign_batch("forget", [(f"new{i}", {}) for i in range(40)])
    service.record_outcomes([OutcomeEvent(f"c-{d.decision_id}", d.decision_id, "click") for d in old + new])
    clock.advance(hours=1)
    assert service.learn("forget") == 2
    alpha, beta = load_policy(service.policy_state("forget")[1]).posterior()  # type: ignore[attr-defined]
    arms = np.array(
        [[d.variants["subject"].id == "b" for d in old], [d.variants["subject"].id == "b" for d in new]]
    )
    # every decision clicked: a day-old click counts 0.5, a new one 1 (ages from the newest decision)
    expected = (
        1
        + 0.5 * np.bincount(arms[0].astype(int), minlength=2)
        + np.bincount(arms[1].astype(int), minlength=2)
    )
    assert alpha == pytest.approx(expected, rel=1e-9)
    assert beta == pytest.approx([1.0, 1.0], rel=1e-9)


def test_a_late_outcome_revises_a_windowed_policy(service: ExperimentService, clock: Clock) -> None:
    service.create(forgetting_spec("thompson", window_days=2))
    decisions = service.assign_batch("forget", [(f"u{i}", {}) for i in range(20)])
    clock.advance(hours=1)
    assert service.learn("forget") == 2  # every decision learned as a non-click
    at = clock.now - timedelta(minutes=30)
    service.record_outcomes(
        [OutcomeEvent(f"c-{d.decision_id}", d.decision_id, "click", None, at) for d in decisions[:5]]
    )
    assert service.learn("forget") == 3  # the late clicks revise the learned rewards
    alpha, beta = load_policy(service.policy_state("forget")[1]).posterior()  # type: ignore[attr-defined]
    assert float(alpha.sum() - 2) == pytest.approx(5.0) and float(beta.sum() - 2) == pytest.approx(15.0)


def test_ages_count_from_the_send_not_the_decision(service: ExperimentService, clock: Clock) -> None:
    """Decisions made together for sends a day apart: the earlier send's clicks are a day older (discount
    0.5), as if each had been decided at its send."""
    service.create(forgetting_spec("thompson", discount=0.5))
    early = service.assign_batch("forget", [(f"early{i}", {}) for i in range(40)], send_at=clock.now)
    late = service.assign_batch("forget", [(f"late{i}", {}) for i in range(40)],
                                send_at=clock.now + timedelta(days=1))
    for group in (early, late):  # each clicked an hour after its send
        clock.advance(hours=1)
        service.record_outcomes([OutcomeEvent(f"c-{d.decision_id}", d.decision_id, "click") for d in group])
        clock.advance(hours=23)
    clock.advance(days=1)  # both reward windows closed
    assert service.learn("forget") == 2
    alpha, beta = load_policy(service.policy_state("forget")[1]).posterior()  # type: ignore[attr-defined]
    b = [np.bincount([d.variants["subject"].id == "b" for d in group], minlength=2) for group in (early, late)]
    assert alpha == pytest.approx(1 + 0.5 * b[0] + b[1], rel=1e-9)
    assert beta == pytest.approx([1.0, 1.0], rel=1e-9)
