"""Values on any event: ``reward.value_types`` says which event types carry value; results count those and
warn, per type, about values posted on types that carry none (once silently ignored)."""

from __future__ import annotations

import math

import pytest

from api.results import summary_warnings
from experiments.errors import SpecError
from experiments.models import OutcomeEvent
from experiments.rewards import decision_reward
from experiments.service import ExperimentService
from tests.experiments.conftest import make_spec

Events = list[tuple[str, float | None]]


def post_events(service: ExperimentService, key: str, n: int = 40) -> list[tuple[str, Events]]:
    """Assign ``n`` recipients and post, per decision, a click, a conversion with its order value and
    for every third one a revenue event; the events of each decision, by its id."""
    decisions = service.assign_batch(key, [(f"r{i}", {}) for i in range(n)])
    events, posted = [], []
    for i, d in enumerate(decisions):
        mine: Events = [("click", None), ("conversion", 10.0 + i)]
        if i % 3 == 0:
            mine.append(("revenue", 2.5))
        posted.append((d.decision_id, mine))
        events += [OutcomeEvent(f"{d.decision_id}-{k}", d.decision_id, kind, value)
                   for k, (kind, value) in enumerate(mine)]
    service.record_outcomes(events)
    return posted


def total_reward(service: ExperimentService, key: str) -> float:
    summary = service.summarize(key)
    return math.fsum(c.reward.sum for c in summary.combinations)


def test_values_on_types_that_carry_none_are_left_out_and_warned_about(service: ExperimentService) -> None:
    spec = make_spec(key="v", reward={"events": {"click": 1.0}, "value": "revenue"})
    service.create(spec)
    posted = post_events(service, "v")
    expected = math.fsum(decision_reward(spec.reward, events) for _, events in posted)
    assert total_reward(service, "v") == pytest.approx(expected)
    assert expected == pytest.approx(40 + 14 * 2.5)  # clicks and revenue only
    summary = service.summarize("v")
    assert summary.uncounted_value_events == {"conversion": 40}
    (warning,) = summary_warnings(summary)
    assert "40 events" in warning and "conversion: 40" in warning and "reward.value_types" in warning


def test_value_types_count_the_values_of_every_listed_type(service: ExperimentService) -> None:
    reward = {"events": {"click": 1.0}, "value": "revenue", "value_types": ["revenue", "conversion"]}
    spec = make_spec(key="v", reward=reward)
    service.create(spec)
    posted = post_events(service, "v")
    by_hand = math.fsum(1.0 + sum(v for _, v in events if v is not None) for _, events in posted)
    assert total_reward(service, "v") == pytest.approx(by_hand)
    assert math.fsum(decision_reward(spec.reward, events) for _, events in posted) == pytest.approx(by_hand)
    summary = service.summarize("v")
    assert summary.uncounted_value_events == {}
    assert summary_warnings(summary) == []


def test_without_a_value_every_posted_value_is_warned_about(service: ExperimentService) -> None:
    service.create(make_spec(key="v", reward={"events": {"click": 1.0, "conversion": 5.0}}))
    post_events(service, "v", n=9)
    summary = service.summarize("v")
    assert summary.uncounted_value_events == {"conversion": 9, "revenue": 3}
    assert "counts no values" in summary_warnings(summary)[0]


def test_value_types_need_a_value_and_old_specs_keep_their_text() -> None:
    with pytest.raises(SpecError) as caught:
        make_spec(reward={"events": {"click": 1.0}, "value_types": ["conversion"]})
    assert "value_types" in str(caught.value)
    assert "value_types" not in make_spec().canonical_json()  # a spec saved before stays one version
    assert make_spec().reward.value_event_types == ["revenue"]
