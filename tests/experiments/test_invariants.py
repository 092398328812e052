"""Invariants a rebuild of the service must keep, each pinned so that the mutation it names fails here.

- Sticky hashing is by variant id, never by position: reordering or removing variants leaves the
  recipients of the other variants where they were.
- An explicit spec ``salt`` is the salt of every hash (variants and holdout), in place of the key.
- A repeated ``event_id``: the first stored copy wins across requests, and within one request the first
  copy in the request wins.
- The attribution window is closed: an outcome exactly ``window_hours`` after its decision counts, one
  second later it does not (``reward.window_hours`` in the spec: "events later than window_hours after
  the decision are stored but not attributed").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from experiments.hashing import bucket_variants, in_holdout
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from tests.experiments.conftest import Clock

IDS = [f"r{i}" for i in range(3000)]


def one_slot_spec(variants: list[str], key: str = "order", **overrides: Any):
    data: dict[str, Any] = {
        "key": key,
        "slots": {"subject": {"variants": [{"id": v, "content": v.upper()} for v in variants]}},
        "consent": {"missing": "allow"},
        "design": {"type": "ab"},
        "default": {"subject": "a"},
        "reward": {"events": {"click": 1.0}, "value": "revenue", "window_hours": 72},
    }
    data.update(overrides)
    return parse_spec(data)


def subjects(service: ExperimentService, key: str, ids: list[str] = IDS) -> np.ndarray:
    return np.array([d.variants["subject"].id for d in service.assign_batch(key, [(r, {}) for r in ids])])


# ------------------------------------------------------------------------------------------------ hashing


def test_reordering_variants_moves_nobody() -> None:
    order = ["a", "b", "c", "d"]
    first, _ = bucket_variants("exp", "subject", IDS, order, [1, 2, 3, 4])
    shuffled = ["c", "a", "d", "b"]
    second, _ = bucket_variants("exp", "subject", IDS, shuffled, [3, 1, 4, 2])
    assert np.array_equal(np.array(order)[first], np.array(shuffled)[second])


def test_reordering_variants_in_a_new_version_moves_nobody(service: ExperimentService) -> None:
    service.create(one_slot_spec(["a", "b", "c"]))
    before = subjects(service, "order")
    assert service.create(one_slot_spec(["c", "a", "b"])).version == 2
    after = subjects(service, "order")
    assert set(before) == {"a", "b", "c"}
    assert np.array_equal(before, after)


def test_removing_a_variant_moves_only_its_recipients(service: ExperimentService) -> None:
    service.create(one_slot_spec(["a", "b", "c", "d"]))
    before = subjects(service, "order")
    assert service.create(one_slot_spec(["a", "c", "d"])).version == 2  # 'b' removed: later positions shift
    after = subjects(service, "order")
    stayed = before != "b"
    assert stayed.sum() > 2000
    assert np.array_equal(before[stayed], after[stayed])
    assert "b" not in set(after)


# ------------------------------------------------------------------------------------------------ salt


def test_an_explicit_salt_is_the_salt_of_every_hash(service: ExperimentService) -> None:
    service.create(one_slot_spec(["a", "b"], key="first", salt="shared-salt", holdout=0.2))
    service.create(one_slot_spec(["a", "b"], key="second", salt="shared-salt", holdout=0.2))
    service.create(one_slot_spec(["a", "b"], key="third", holdout=0.2))
    first = service.assign_batch("first", [(r, {}) for r in IDS])
    second = service.assign_batch("second", [(r, {}) for r in IDS])
    third = service.assign_batch("third", [(r, {}) for r in IDS])
    # the holdout is hashed with the salt
    held = np.array([d.reason == "holdout" for d in first])
    assert np.array_equal(held, in_holdout("shared-salt", IDS, 0.2))
    assert np.array_equal(held, [d.reason == "holdout" for d in second])
    assert not np.array_equal(held, [d.reason == "holdout" for d in third])
    # so are the variants: two keys with one salt agree recipient by recipient, and match the hash
    chosen, _ = bucket_variants("shared-salt", "subject", IDS, ["a", "b"], [1, 1])
    expected = np.where(held, "a", np.array(["a", "b"])[chosen])
    got = np.array([d.variants["subject"].id for d in first])
    assert np.array_equal(got, expected)
    assert np.array_equal(got, [d.variants["subject"].id for d in second])
    assert not np.array_equal(got, [d.variants["subject"].id for d in third])


# ------------------------------------------------------------------------------------------------ event ids


def revenue_of(service: ExperimentService, key: str) -> float:
    return sum(c.reward.sum for c in service.summarize(key).combinations)


def test_the_first_copy_of_an_event_id_in_one_request_wins(service: ExperimentService) -> None:
    service.create(one_slot_spec(["a", "b"], reward={"events": {}, "value": "revenue"}))
    d = service.assign("order", "r1", {})
    copies = [
        OutcomeEvent("e1", d.decision_id, "revenue", 10.0),
        OutcomeEvent("e1", d.decision_id, "revenue", 99.0),
    ]
    counts = service.record_outcomes(copies)
    assert (counts.accepted, counts.duplicates) == (1, 1)
    assert revenue_of(service, "order") == 10.0
    # the same in the other order: still the first of the request
    d2 = service.assign("order", "r2", {})
    service.record_outcomes(
        [
            OutcomeEvent("e2", d2.decision_id, "revenue", 7.0),
            OutcomeEvent("e2", d2.decision_id, "revenue", 1.0),
        ]
    )
    assert revenue_of(service, "order") == 17.0


def test_the_first_stored_copy_of_an_event_id_wins_across_requests(service: ExperimentService) -> None:
    service.create(one_slot_spec(["a", "b"], reward={"events": {}, "value": "revenue"}))
    d = service.assign("order", "r1", {})
    assert service.record_outcomes([OutcomeEvent("e1", d.decision_id, "revenue", 10.0)]).accepted == 1
    again = service.record_outcomes([OutcomeEvent("e1", d.decision_id, "revenue", 99.0)])
    assert (again.accepted, again.duplicates) == (0, 1)
    assert revenue_of(service, "order") == 10.0


# ------------------------------------------------------------------------------------------------ window


def test_an_outcome_exactly_at_the_end_of_the_window_counts(service: ExperimentService, clock: Clock) -> None:
    service.create(one_slot_spec(["a", "b"]))
    on_edge = service.assign("order", "r1", {})
    past_edge = service.assign("order", "r2", {})
    end = clock.now + timedelta(hours=72)
    events = [
        OutcomeEvent("edge", on_edge.decision_id, "click", None, end),
        OutcomeEvent("past", past_edge.decision_id, "click", None, end + timedelta(seconds=1)),
    ]
    assert service.record_outcomes(events).accepted == 2
    summary = service.summarize("order")
    assert summary.excluded_late_events == 1
    assert sum(c.event_counts["click"] for c in summary.combinations) == 1
