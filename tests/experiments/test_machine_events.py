"""Machine-made outcomes: stored and counted, never learned from, in the results only when asked."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from bandit import load_policy
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from tests.experiments.conftest import Clock


def test_the_policy_never_learns_from_machine_events(service: ExperimentService, clock: Clock) -> None:
    service.create(parse_spec({
        "key": "bots",
        "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "bandit", "policy": "thompson"},
        "reward": {"events": {"click": 1.0}, "window_hours": 24, "machine_user_agents": ["scanner"]},
    }))
    decisions = service.assign_batch("bots", [(f"r{i}", {}) for i in range(200)])
    soon = clock.now + timedelta(minutes=5)
    events = [OutcomeEvent(f"bot-{d.decision_id}", d.decision_id, "click", None, soon, machine=i % 2 == 0,
                           user_agent=None if i % 2 == 0 else "Link Scanner 2.1")
              for i, d in enumerate(decisions)]  # a machine click on every decision
    events += [OutcomeEvent(f"human-{d.decision_id}", d.decision_id, "click", None, soon)
               for d in decisions[:10]]
    events += [OutcomeEvent("late-bot", decisions[50].decision_id, "open", None, soon + timedelta(days=2),
                            machine=True)]
    assert service.record_outcomes(events).accepted == 211
    clock.advance(hours=25)
    service.learn("bots")
    _, state = service.policy_state("bots")
    alpha, beta = load_policy(state).posterior()  # type: ignore[attr-defined]
    assert (float(np.sum(alpha - 1)), float(np.sum(beta - 1))) == (10.0, 190.0)
    assert sum(d.reward for d in service.export_log("bots")) == 10.0

    default = service.summarize("bots")
    assert sum(a.event_counts["click"] for a in default.arms) == 10
    assert (default.machine_events, default.machine_included) == (201, False)
    assert (default.excluded_machine_events, default.excluded_late_events) == (201, 0)
    included = service.summarize("bots", include_machine=True)
    assert sum(a.event_counts["click"] for a in included.arms) == 200
    assert (included.excluded_machine_events, included.excluded_late_events) == (0, 1)
    assert included.machine_included and included.machine_events == 201
