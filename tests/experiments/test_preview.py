"""Merge tags at assignment, previews (which log nothing) and their coverage, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from experiments.service import ExperimentService
from experiments.store import create_tables, decisions_table, make_engine
from tests.experiments.conftest import make_spec

PERSONAL = "{{ first_name }}, picked for you"
VIP = (
    "{% if segment == 'vip' %}Early access, {{ first_name | default: 'friend' }}"
    "{% else %}Spring sale{% endif %}"
)


def _templated_spec(**overrides: Any) -> Any:
    slots = {
        "subject": {
            "variants": [
                {"id": "plain", "content": "Spring sale, {{ first_name | default: 'there' }}"},
                {"id": "personal", "content": PERSONAL},
            ]
        },
        "cta": {"variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]},
    }
    return make_spec(slots=overrides.pop("slots", slots), **overrides)


def _count_decisions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(decisions_table)).scalar_one())


def test_a_hash_variant_needing_a_missing_field_stands_with_the_default_content(
    service: ExperimentService,
) -> None:
    """Intent to treat: the hash's variant is logged whatever the recipient's fields; one that cannot
    render is shown with the default variant's content, reason ``content_fallback``."""
    service.create(_templated_spec())
    named = [(f"n{i}", {"first_name": f"Ada{i}"}) for i in range(100)]
    anonymous = [(f"a{i}", {"segment": "new"}) for i in range(100)]
    decisions = service.assign_batch("spring", named + anonymous)
    drawn = [d.variants["subject"].id for d in decisions[100:]]
    assert 20 < drawn.count("personal") < 80  # a fair hash, as for the named recipients
    for d in decisions[100:]:
        assert d.variants["subject"].content == "Spring sale, there"
        assert d.propensity == pytest.approx(0.25)  # subject: one of two; cta: one of two
        if d.variants["subject"].id == "personal":
            assert d.reason == "content_fallback"
            assert "content fell back to 'plain'" in d.content_notes["subject"]
            assert "'first_name' is undefined" in d.content_notes["subject"]
        else:
            assert d.reason == "assigned" and d.content_notes == {}
    personal = [(d, rid) for d, (rid, _) in zip(decisions[:100], named, strict=True)
                if d.variants["subject"].id == "personal"]
    assert 20 < len(personal) < 80  # a fair hash over 100 named recipients
    for d, rid in personal:
        assert d.variants["subject"].content == f"Ada{rid[1:]}, picked for you"
        assert d.propensity == pytest.approx(0.25)
        assert d.content_notes == {}
    for d in decisions:
        assert "{{" not in d.variants["subject"].content and d.variants["subject"].content.strip()


def test_fallback_recipients_get_the_rendered_default(service: ExperimentService) -> None:
    service.create(_templated_spec(eligibility={"attr": "country", "op": "eq", "value": "US"}))
    d = service.assign("spring", "r1", {"country": "FR", "first_name": "Zoë"})
    assert d.reason == "ineligible"
    assert d.variants["subject"].content == "Spring sale, Zoë"


def test_a_default_needing_fields_is_warned_and_falls_back_leniently(service: ExperimentService) -> None:
    spec = make_spec(
        slots={"subject": {"variants": [{"id": "hello", "content": "Hello {{ first_name }}"},
                                        {"id": "plain", "content": "Spring sale"}]}},
        holdout=0.5,
    )
    info = service.create(spec)
    assert any("slots.subject.variants[0].content: the default variant" in w for w in info.warnings)
    decisions = service.assign_batch("spring", [(f"r{i}", {}) for i in range(60)])
    held = [d for d in decisions if d.reason == "holdout"]
    assigned = [d for d in decisions if d.reason in ("assigned", "content_fallback")]
    assert held and assigned
    for d in held:  # the default is forced: its text with the missing field left out, and a note
        assert d.variants["subject"].content == "Hello"
        assert "missing fields left out" in d.content_notes["subject"]
    shown = {(d.variants["subject"].id, d.variants["subject"].content) for d in assigned}
    assert shown == {("plain", "Spring sale"), ("hello", "Hello")}  # the hash draws as without templates
    again = service.assign_batch("spring", [(f"r{i}", {"first_name": "Ada"}) for i in range(60)])
    for before, after in zip(decisions, again, strict=True):  # sticky when the fields change
        assert before.variants["subject"].id == after.variants["subject"].id
        if after.variants["subject"].id == "hello":
            assert after.variants["subject"].content == "Hello Ada" and after.content_notes == {}


def test_rule_and_template_read_the_same_attribute(service: ExperimentService) -> None:
    spec = make_spec(
        slots={
            "subject": {
                "variants": [{"id": "plain", "content": "Spring sale"}, {"id": "vip", "content": VIP}]
            },
        },
        rules=[{"name": "vips", "when": {"attr": "segment", "op": "eq", "value": "vip"},
                "restrict": {"subject": ["vip"]}}],
    )
    service.create(spec)
    vip = service.assign("spring", "v1", {"segment": "vip", "first_name": "Ada"})
    assert (vip.variants["subject"].id, vip.variants["subject"].content) == ("vip", "Early access, Ada")
    anonymous_vip = service.assign("spring", "v2", {"segment": "vip"})
    assert anonymous_vip.variants["subject"].content == "Early access, friend"
    others = service.assign_batch("spring", [(f"o{i}", {"segment": "new"}) for i in range(40)])
    assert {d.variants["subject"].content for d in others} == {"Spring sale"}
    assert {d.variants["subject"].id for d in others} == {"plain", "vip"}
    explained = service.explain(vip.decision_id)
    assert any("segment eq 'vip': true" in line for line in explained["explanation"])


def test_preview_shows_rules_offers_probabilities_and_content_and_logs_nothing(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(
        _templated_spec(
            rules=[{"name": "californians", "when": {"attr": "location", "op": "eq", "value": "CA"},
                    "restrict": {"cta": ["shop"]}}]
        )
    )
    service.assign("spring", "someone", {})
    before = _count_decisions(engine)
    previews = service.preview(
        "spring", [("ca", {"location": "CA", "first_name": "Ada"}), ("anon", {"location": "NY"})]
    )
    assert _count_decisions(engine) == before
    ca, anon = (p.detail for p in previews)
    assert ca is not None and anon is not None
    assert ca.rules_fired == ["californians"] and anon.rules_fired == []
    ca_subject, ca_cta = ca.slots
    assert ca_subject.variant_to_content == {"plain": "Spring sale, Ada", "personal": "Ada, picked for you"}
    assert ca_cta.offered == ["shop"] and ca_cta.not_offered == {"see": "excluded by the rules"}
    # hashing with equal weights: 1/2 per subject, the cta forced by the rule
    assert ca.combination_to_probability == pytest.approx(
        {"subject=plain,cta=shop": 0.5, "subject=personal,cta=shop": 0.5}
    )
    anon_subject = anon.slots[0]  # a hash design draws whatever renders (intent to treat)
    assert anon_subject.offered == ["plain", "personal"]
    assert anon_subject.not_offered == {}
    assert anon_subject.variant_to_probability == {"plain": 0.5, "personal": 0.5}
    fallback = "Spring sale, there"  # the default's content, for both
    assert anon_subject.variant_to_content == {"plain": fallback, "personal": fallback}
    assert sum(anon.combination_to_probability.values()) == pytest.approx(1.0)


def test_coverage_lists_unreached_rule_combinations_and_fallback_only_recipients(
    service: ExperimentService,
) -> None:
    spec = _templated_spec(
        slots={
            "subject": {"variants": [{"id": "plain", "content": "Spring sale"},
                                     {"id": "personal", "content": PERSONAL}]},
        },
        eligibility={"attr": "consent", "op": "eq", "value": True},
        rules=[
            {"name": "ca", "when": {"attr": "location", "op": "eq", "value": "CA"},
             "restrict": {"subject": ["plain", "personal"]}},
            {"name": "vip", "when": {"attr": "segment", "op": "eq", "value": "vip"},
             "restrict": {"subject": ["personal"]}},
        ],
    )
    service.create(spec)
    sample = [
        ("ca-named", {"consent": True, "location": "CA", "first_name": "Ada"}),
        ("nobody", {"consent": True, "location": "NY", "first_name": "Bo"}),
        ("anon", {"consent": True, "location": "NY"}),
        ("no-consent", {"consent": False, "first_name": "Cy"}),
    ]
    report = service.preview_report("spring", sample)
    assert report.coverage.sample_size == 4
    unreached = {tuple(names) for names, _ in report.coverage.unreached_rule_combinations}
    assert unreached == {("vip",), ("ca", "vip")}
    for names, example in report.coverage.unreached_rule_combinations:
        checks = (("ca", example.get("location") == "CA"), ("vip", example.get("segment") == "vip"))
        fired = {name for name, holds in checks if holds}
        assert fired == set(names)
    assert set(report.coverage.fallback_only) == {"no-consent"}  # "anon" is drawn as anyone (hash)
    assert report.coverage.fallback_only["no-consent"] in ("ineligible", "no_consent")


def test_contextual_preview_uses_the_policy_probabilities(service: ExperimentService) -> None:
    service.create(
        _templated_spec(design={"type": "contextual", "policy": "linear_ts", "context": ["segment"]})
    )
    sample = [("a", {"segment": "vip", "first_name": "Ada"}), ("b", {"segment": "new"})]
    previews = service.preview("spring", sample)
    a, b = (p.detail for p in previews)
    assert a is not None and b is not None
    assert sum(a.combination_to_probability.values()) == pytest.approx(1.0)
    assert len(a.combination_to_probability) == 4  # an untrained linear TS gives every combination mass
    assert {label.split(",")[0] for label in b.combination_to_probability} == {"subject=plain"}


def _bandit_service(path: Any, seed: int) -> tuple[ExperimentService, Engine]:
    engine = make_engine(f"sqlite:///{path}")
    create_tables(engine)
    service = ExperimentService(engine, seed=seed)
    bandit = {"type": "bandit", "policy": "thompson"}
    service.create(make_spec(design=bandit, reward={"events": {"click": 1.0}}))
    return service, engine


def test_a_preview_does_not_change_the_next_assignments_draws(tmp_path: Any) -> None:
    """Two services with the same seed draw the same send; a preview on one of them in between must
    not move its generator (an untrained Thompson policy draws each of the 4 combinations at 1/4, so
    30 equal draws by chance have probability 4**-30)."""
    previewed, e1 = _bandit_service(tmp_path / "a.db", seed=11)
    untouched, e2 = _bandit_service(tmp_path / "b.db", seed=11)
    sample = [(f"p{i}", {}) for i in range(5)]
    first = previewed.preview("spring", sample)
    assert _count_decisions(e1) == 0
    send = [(f"r{i}", {}) for i in range(30)]
    drawn = [(d.variants["subject"].id, d.variants["cta"].id, d.propensity)
             for d in previewed.assign_batch("spring", send)]
    expected = [(d.variants["subject"].id, d.variants["cta"].id, d.propensity)
                for d in untouched.assign_batch("spring", send)]
    assert drawn == expected
    assert len({(s, c) for s, c, _ in drawn}) > 1  # the draws do vary: a moved generator would show
    # the preview's own generator is seeded by the request: the same request shows the same draw
    again = previewed.preview("spring", sample)
    assert [p.decision.variants for p in again] == [p.decision.variants for p in first]
    e1.dispose()
    e2.dispose()


def test_screened_out_recipients_have_no_rules_fired_and_say_why(service: ExperimentService) -> None:
    service.create(
        _templated_spec(
            consent={"attribute": "consent", "missing": "allow"},
            eligibility={"attr": "country", "op": "eq", "value": "US"},
            rules=[{"name": "californians", "when": {"attr": "location", "op": "eq", "value": "CA"},
                    "restrict": {"cta": ["shop"]}}],
        )
    )
    ca = {"location": "CA", "country": "US"}
    sample = [("in", {**ca, "consent": True}), ("declined", {**ca, "consent": False}),
              ("abroad", {**ca, "country": "FR"})]
    inside, declined, abroad = service.preview("spring", sample)
    assert inside.detail is not None and inside.detail.rules_fired == ["californians"]
    assert inside.detail.rules_not_evaluated is None
    for p, why in ((declined, "the recipient has not consented"), (abroad, "the recipient is not eligible")):
        assert p.detail is not None and p.detail.rules_fired == []  # the rule holds, but was never applied
        assert p.detail.rules_not_evaluated == f"not evaluated: {why}, so the default variants"
        assert f"rules: not evaluated: {why}, so the default variants" in p.explanation
        assert not any("californians" in line for line in p.explanation)
    assert any("californians" in line for line in inside.explanation)
