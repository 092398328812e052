"""The service on SQLite and PostgreSQL: versions, statuses, assignment, fallbacks, outcomes, summaries."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from experiments.errors import Conflict, InvalidInput, NotFound, SpecError
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from tests.experiments.conftest import Clock, make_spec

Z = 4.0


def z_score(count: int, n: int, p: float) -> float:
    return (count - n * p) / np.sqrt(n * p * (1 - p))


# ---------------------------------------------------------------------------------------------- experiments


def test_create_versions_and_identical_specs(service: ExperimentService, clock: Clock) -> None:
    first = service.create(make_spec())
    assert (first.key, first.version, first.status, first.warnings) == ("spring", 1, "running", [])
    assert service.create(make_spec()).version == 1  # identical spec: same version
    clock.advance(hours=1)
    changed = service.create(make_spec(holdout=0.1))
    assert changed.version == 2 and changed.spec.holdout == 0.1
    assert changed.created_at == first.created_at and changed.updated_at == clock.now
    assert service.get("spring").version == 2
    assert [i.key for i in service.list()] == ["spring"]


def test_unknown_experiment_and_bad_status(service: ExperimentService) -> None:
    with pytest.raises(NotFound) as info:
        service.get("nope")
    assert info.value.key == "nope"
    with pytest.raises(NotFound):
        service.assign("nope", "r1", {})
    service.create(make_spec())
    with pytest.raises(InvalidInput) as bad:
        service.set_status("spring", "stopped")  # type: ignore[arg-type]
    assert bad.value.field == "status"


def test_statuses_pause_resume_archive(service: ExperimentService) -> None:
    service.create(make_spec())
    assert service.set_status("spring", "paused").status == "paused"
    paused = service.assign("spring", "r1", {})
    assert paused.reason == "paused" and paused.propensity == 1.0
    assert {s: v.id for s, v in paused.variants.items()} == {"subject": "plain", "cta": "shop"}
    assert service.set_status("spring", "running").status == "running"
    assert service.assign("spring", "r1", {}).reason == "assigned"
    service.set_status("spring", "archived")
    with pytest.raises(Conflict):
        service.assign("spring", "r1", {})
    with pytest.raises(Conflict):
        service.set_status("spring", "running")
    with pytest.raises(Conflict):
        service.create(make_spec(holdout=0.2))


def test_create_rejects_a_bad_spec_and_reports_rule_conflicts(service: ExperimentService) -> None:
    spec = make_spec(
        rules=[
            {"when": {"attr": "location", "op": "eq", "value": "CA"}, "restrict": {"cta": ["shop"]}},
            {"when": {"attr": "device", "op": "eq", "value": "ios"}, "force": {"cta": "see"}},
        ]
    )
    info = service.create(spec)
    assert len(info.warnings) == 1 and "{'device': 'ios', 'location': 'CA'}" in info.warnings[0]
    assert service.get("spring").warnings == info.warnings
    with pytest.raises(SpecError, match="design.options"):
        service.create(
            make_spec(
                key="badopt",
                design={"type": "bandit", "policy": "ucb", "options": {"nonsense": 1}},
                reward={"events": {"click": 1.0}},
            )
        )


# ---------------------------------------------------------------------------------------------- assignment


def test_assignment_is_sticky_logged_and_its_propensity_is_the_product(service: ExperimentService) -> None:
    spec = make_spec()
    data = spec.model_dump(mode="json")
    data["slots"]["cta"]["variants"][0]["weight"] = 3.0
    service.create(parse_spec(data))
    ids = [f"r{i}" for i in range(4000)]
    first = service.assign_batch("spring", [(r, {}) for r in ids])
    again = service.assign_batch("spring", [(r, {"x": 1}) for r in reversed(ids)])[::-1]
    one = service.assign("spring", "r17", {})
    assert [d.variants for d in first] == [d.variants for d in again]
    assert one.variants == first[17].variants
    for d in first[:200]:
        p_cta = 0.75 if d.variants["cta"].id == "shop" else 0.25
        assert d.propensity == pytest.approx(0.5 * p_cta)
        assert d.reason == "assigned" and d.policy_version is None and not d.explored
    assert first[0].variants["subject"].content in ("Spring sale", "Ends tonight")
    summary = service.summarize("spring")
    by = {(a.slot, a.variant): a for a in summary.arms}
    n = 2 * 4000 + 1
    assert sum(a.decisions for a in summary.arms if a.slot == "cta") == n
    assert abs(z_score(by[("cta", "shop")].decisions, n, 0.75)) < Z  # allocation through the log
    assert by[("cta", "shop")].intended_share == 0.75
    assert abs(z_score(by[("subject", "plain")].decisions, n, 0.5)) < Z


def test_changing_a_weight_keeps_most_recipients(service: ExperimentService) -> None:
    service.create(make_spec())
    ids = [f"r{i}" for i in range(3000)]
    before = service.assign_batch("spring", [(r, {}) for r in ids])
    data = make_spec().model_dump(mode="json")
    data["slots"]["cta"]["variants"][1]["weight"] = 3.0  # 'see' from 1/2 to 3/4
    assert service.create(parse_spec(data)).version == 2
    after = service.assign_batch("spring", [(r, {}) for r in ids])
    moved = [
        (b.variants["cta"].id, a.variants["cta"].id)
        for b, a in zip(before, after, strict=True)
        if b.variants["cta"].id != a.variants["cta"].id
    ]
    assert all(new == "see" for _, new in moved)
    assert abs(z_score(len(moved), len(ids), 0.25)) < Z
    assert all(b.variants["subject"] == a.variants["subject"] for b, a in zip(before, after, strict=True))


def test_fallbacks_get_defaults_and_say_why(service: ExperimentService) -> None:
    spec = make_spec(
        holdout=0.2,
        default={"subject": "urgent", "cta": "see"},
        eligibility={"attr": "country", "op": "in", "value": ["US", "CA"]},
        design={"type": "multivariate", "context": ["device"]},
    )
    service.create(spec)
    people = [(f"r{i}", {"country": "US", "device": "ios", "email": "secret"}) for i in range(2000)]
    people += [
        ("nc", {"country": "US", "consent": False, "device": "ios"}),
        ("nc2", {"country": "US", "consent": "no"}),
        ("out", {"country": "FR"}),
        ("missing", {}),
    ]
    decisions = service.assign_batch("spring", people)
    reasons = Counter(d.reason for d in decisions)
    assert reasons["no_consent"] == 2 and reasons["ineligible"] == 2
    assert abs(z_score(reasons["holdout"], 2000, 0.2)) < Z
    for d in decisions:
        if d.reason != "assigned":
            assert d.propensity == 1.0 and d.policy_version is None
            assert {s: v.id for s, v in d.variants.items()} == {"subject": "urgent", "cta": "see"}
    by_id = {d.recipient_id: d for d in decisions}
    assert service.explain(by_id["nc"].decision_id)["explanation"] == [
        "no context stored (the recipient did not consent)",
        "fallback: no_consent, so the default variants",
    ]
    why = service.explain(by_id["missing"].decision_id)["explanation"]
    assert "country in ['US', 'CA']: false (country is missing)" in why[1]
    summary = service.summarize("spring")
    assert summary.fallbacks == {"holdout": reasons["holdout"], "ineligible": 2, "no_consent": 2}
    assert summary.holdout is not None and summary.holdout.decisions == reasons["holdout"]
    assert sum(a.decisions for a in summary.arms if a.slot == "cta") == reasons["assigned"]
    log = service.export_log("spring")
    assert len(log) == reasons["assigned"]
    assert all(
        entry.context == {"device": "ios", "country": "US"} for entry in log
    )  # only what the spec uses


def test_rules_restrict_variants_and_are_explained(service: ExperimentService) -> None:
    rule = {
        "when": {
            "all": [
                {"attr": "location", "op": "eq", "value": "CA"},
                {"attr": "last_category", "op": "eq", "value": "outdoor"},
            ]
        },
        "restrict": {"cta": ["shop"]},
    }
    service.create(make_spec(rules=[rule]))
    ca = service.assign_batch(
        "spring", [(f"c{i}", {"location": "CA", "last_category": "outdoor"}) for i in range(300)]
    )
    assert {d.variants["cta"].id for d in ca} == {"shop"}
    assert all(d.propensity == pytest.approx(0.5) for d in ca)  # cta renormalised to 1, subject 1/2
    other = service.assign_batch("spring", [(f"c{i}", {"location": "CA"}) for i in range(300)])
    assert {d.variants["cta"].id for d in other} == {"shop", "see"}
    lines = service.explain(other[0].decision_id)["explanation"]
    assert any("last_category eq 'outdoor': false (last_category is missing)" in line for line in lines)
    previews = service.preview("spring", [("c1", {"location": "CA", "last_category": "outdoor"})])
    assert previews[0].decision.variants["cta"].id == "shop"
    assert any(line.startswith("rules[0]: applies") for line in previews[0].explanation)


def test_preview_logs_nothing(service: ExperimentService) -> None:
    service.create(make_spec())
    service.preview("spring", [(f"r{i}", {}) for i in range(10)])
    assert sum(a.decisions for a in service.summarize("spring").arms) == 0


@pytest.mark.parametrize(
    ("recipients", "field"),
    [
        ([("", {})], "recipients[0].recipient_id"),
        ([("ok", {}), (3, {})], "recipients[1].recipient_id"),
        ([("ok", [1, 2])], "recipients[0].context"),
        ([("ok",)], "recipients[0]"),
        ("abc", "recipients"),
        ([("ok", {"device": float("nan")})], "recipients[0].context.device"),
        ([("ok", {}), ("ok2", {"device": object()})], "recipients[1].context.device"),
    ],
)
def test_bad_recipients(service: ExperimentService, recipients: Any, field: str) -> None:
    service.create(make_spec(design={"type": "multivariate", "context": ["device"]}))
    with pytest.raises(InvalidInput) as info:
        service.assign_batch("spring", recipients)
    assert info.value.field == field


# ---------------------------------------------------------------------------------------------- outcomes


def test_outcomes_are_idempotent_and_orphans_are_kept_aside(service: ExperimentService) -> None:
    service.create(make_spec())
    d = service.assign("spring", "r1", {})
    click = OutcomeEvent("e1", d.decision_id, "click")
    counts = service.record_outcomes([click, click, OutcomeEvent("e2", "unknown", "click")])
    assert (counts.accepted, counts.duplicates, counts.orphans) == (1, 1, 1)
    counts = service.record_outcomes(
        [click, OutcomeEvent("e2", "unknown", "click"), OutcomeEvent("e3", d.decision_id, "click")]
    )
    assert (counts.accepted, counts.duplicates, counts.orphans) == (1, 2, 0)
    summary = service.summarize("spring")
    arm = next(a for a in summary.arms if a.slot == "cta" and a.variant == d.variants["cta"].id)
    assert arm.event_counts["click"] == 1 and arm.reward.sum == 1.0  # the first click counts once


def test_late_and_machine_events_are_stored_but_not_attributed(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(make_spec())
    d = service.assign("spring", "r1", {})
    late = OutcomeEvent("late", d.decision_id, "conversion", None, clock.now + timedelta(hours=73))
    bot = OutcomeEvent("bot", d.decision_id, "click", None, clock.now + timedelta(minutes=1), machine=True)
    ok = OutcomeEvent("ok", d.decision_id, "revenue", 20.0, clock.now + timedelta(hours=71))
    assert service.record_outcomes([late, bot, ok]).accepted == 3
    summary = service.summarize("spring")
    assert (summary.excluded_late_events, summary.excluded_machine_events) == (1, 1)
    combo = next(c for c in summary.combinations if c.decisions == 1)
    assert combo.event_counts == {"click": 0, "conversion": 0, "revenue": 1, "unsubscribe": 0}
    assert combo.reward.sum == 20.0


def test_machine_events_by_user_agent(service: ExperimentService) -> None:
    spec = make_spec(
        reward={"events": {"click": 1.0, "open": 0.0}, "machine_user_agents": ["Barracuda", "safelinks"]}
    )
    service.create(spec)
    d = service.assign("spring", "r1", {})
    events = [
        OutcomeEvent("scan", d.decision_id, "click", user_agent="Mozilla/5.0 (compatible; BarracudaCentral)"),
        OutcomeEvent("links", d.decision_id, "click", user_agent="Microsoft SafeLinks/1.0"),
        OutcomeEvent("human", d.decision_id, "open", user_agent="Mozilla/5.0 (iPhone)"),
    ]
    assert service.record_outcomes(events).accepted == 3
    summary = service.summarize("spring")
    assert summary.excluded_machine_events == 2
    combo = next(c for c in summary.combinations if c.decisions == 1)
    assert combo.event_counts == {"click": 0, "open": 1}
    assert combo.reward.sum == 0.0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (OutcomeEvent("", "d", "click"), "events[0].event_id"),
        (OutcomeEvent("e", "d", ""), "events[0].type"),
        (OutcomeEvent("e", "d", "click", float("nan")), "events[0].value"),
        (OutcomeEvent("e", "d", "click", True), "events[0].value"),  # type: ignore[arg-type]
        (OutcomeEvent("e", "d", "click", None, "yesterday"), "events[0].timestamp"),  # type: ignore[arg-type]
    ],
)
def test_bad_events(service: ExperimentService, event: OutcomeEvent, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        service.record_outcomes([event])
    assert info.value.field == field


def test_summary_matches_statistics_computed_from_the_raw_events(
    service: ExperimentService, clock: Clock
) -> None:
    service.create(make_spec())
    rng = np.random.default_rng(3)
    decisions = service.assign_batch("spring", [(f"r{i}", {}) for i in range(600)])
    events, reward = [], {}
    for i, d in enumerate(decisions):
        r = 0.0
        n_clicks = int(rng.integers(0, 3))
        for c in range(n_clicks):
            events.append(
                OutcomeEvent(
                    f"{i}-click-{c}",
                    d.decision_id,
                    "click",
                    None,
                    clock.now + timedelta(hours=float(rng.uniform(0, 100))),
                )
            )
        in_window = [
            e for e in events[len(events) - n_clicks :] if e.timestamp - clock.now <= timedelta(hours=72)
        ]
        r += 1.0 if in_window else 0.0
        if rng.random() < 0.2:
            value = float(np.round(rng.uniform(5, 50), 2))
            events.append(OutcomeEvent(f"{i}-conv", d.decision_id, "conversion", None, clock.now))
            events.append(OutcomeEvent(f"{i}-rev-a", d.decision_id, "revenue", value, clock.now))
            events.append(OutcomeEvent(f"{i}-rev-b", d.decision_id, "revenue", 1.5, clock.now))
            r += 5.0 + value + 1.5  # conversion counts once, revenue adds up
        reward[d.decision_id] = (r, bool(in_window))
    service.record_outcomes(events)
    summary = service.summarize("spring")
    for arm in summary.arms:
        mine = [d for d in decisions if d.variants[arm.slot].id == arm.variant]
        rewards = np.array([reward[d.decision_id][0] for d in mine])
        assert arm.decisions == len(mine)
        assert arm.reward.sum == pytest.approx(rewards.sum(), rel=1e-12)
        assert arm.reward.sum_squares == pytest.approx(np.sum(rewards**2), rel=1e-12)
        assert arm.event_counts["click"] == sum(reward[d.decision_id][1] for d in mine)
    assert sum(c.decisions for c in summary.combinations) == 600
    assert [c.variants for c in summary.combinations] == [
        {"subject": "plain", "cta": "shop"},
        {"subject": "plain", "cta": "see"},
        {"subject": "urgent", "cta": "shop"},
        {"subject": "urgent", "cta": "see"},
    ]
    daily = {(x.slot, x.variant): x for x in summary.daily}
    assert all(x.day == clock.now.date() for x in summary.daily)
    assert all(daily[(a.slot, a.variant)].decisions == a.decisions for a in summary.arms)
    log = {e.decision_id: e for e in service.export_log("spring")}
    assert all(log[d.decision_id].reward == pytest.approx(reward[d.decision_id][0]) for d in decisions)
    assert all(log[d.decision_id].variants == {s: v.id for s, v in d.variants.items()} for d in decisions)


def test_lookups_that_find_nothing_and_learning_without_a_policy(service: ExperimentService) -> None:
    service.create(make_spec())
    with pytest.raises(NotFound) as info:
        service.explain("no-such-decision")
    assert info.value.key == "no-such-decision"
    with pytest.raises(NotFound):
        service.policy_state("spring")
    with pytest.raises(Conflict, match="multivariate design: there is no policy to learn"):
        service.learn("spring")


def test_workers_sharing_the_database_assign_at_once(
    db_url: str, service: ExperimentService, clock: Clock
) -> None:
    import threading

    from experiments.store import make_engine

    service.create(
        make_spec(key="shared", design={"type": "bandit", "policy": "ucb"}, reward={"events": {"click": 1.0}})
    )
    workers = [ExperimentService(make_engine(db_url), clock=clock, seed=i) for i in range(3)]
    errors: list[BaseException] = []

    def work(w: ExperimentService, i: int) -> None:
        try:
            for b in range(5):
                w.assign_batch("shared", [(f"w{i}-{b}-{j}", {}) for j in range(200)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w, i)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(c.decisions for c in service.summarize("shared").combinations) == 3 * 5 * 200
