"""Consent by default: a missing consent is no consent; nothing of such a recipient's context is stored
or used; ``without_consent: randomize`` gives them a non-personalised arm (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from analysis.srm import check_sample_ratio
from experiments.consent import Consent, consent_line, consents, read_consent
from experiments.errors import SpecError
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import decisions_table


def spec(**changes: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "key": "consented",
        "slots": {"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}},
        "design": {"type": "ab"},
        "rules": [{"when": {"attr": "segment", "op": "eq", "value": "vip"}, "force": {"subject": "b"}}],
        "record": ["segment"],
        "reward": {"events": {"click": 1.0}},
    }
    data.update(changes)
    return parse_spec(data)


def stored_contexts(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(decisions_table.c.recipient_id, decisions_table.c.context)).all())


@pytest.mark.parametrize(
    ("declared", "context", "expected"),
    [
        ({}, {"consent": True}, True),
        ({}, {"consent": "yes"}, True),
        ({}, {}, False),  # missing: no consent by default
        ({}, {"consent": None}, False),  # null: the same
        ({}, {"consent": False}, False),
        ({}, {"consent": "No"}, False),
        ({}, {"consent": 0}, False),
        ({"missing": "allow"}, {}, True),
        ({"missing": "allow"}, {"consent": None}, True),
        ({"missing": "allow"}, {"consent": False}, False),
        ({"attribute": "opt_in"}, {"consent": True}, False),  # another attribute is not read
        ({"attribute": "opt_in"}, {"opt_in": 1}, True),
        ({"attribute": None}, {"consent": False}, True),  # no consent attribute: checked before the send
    ],
)
def test_consents_reads_the_declared_attribute(declared: dict[str, Any], context: dict[str, Any],
                                               expected: bool) -> None:
    assert consents(Consent(**declared), context) is expected


@pytest.mark.parametrize(
    ("value", "reading"),
    [
        *[(v, "given") for v in (True, 1, 1.0, "true", "TRUE", " yes ", "y", "1", "on", "granted",
                                 "accepted", "opt-in", "Opt_In", "optin", "opted_in", "opted in")],
        *[(v, "declined") for v in (False, 0, 0.0, "false", "No", "n", "0", "off", "denied", " DECLINED ",
                                    "refused", "rejected", "withdrawn", "revoked", "opt-out", "opted_out",
                                    "optout", "unsubscribed")],
        # not recognised: read as missing, so the spec's ``missing`` decides (fail closed by default)
        *[(v, "missing") for v in (None, "", " ", "\t", "null", "None", "undefined", "maybe", "unknown",
                                   "yes please", "2", "1.0", -1, 2, 1.5, 0.5, {}, {"given": True}, [],
                                   [True])],
    ],
)
def test_only_recognised_values_give_or_decline_consent(value: Any, reading: str) -> None:
    assert read_consent(value) == reading
    assert consents(Consent(), {"consent": value}) is (reading == "given")
    assert consents(Consent(missing="allow"), {"consent": value}) is (reading != "declined")


def test_the_explanation_says_an_unrecognised_value_was_read_as_missing() -> None:
    assert consent_line(Consent(), {"consent": "denied"}) == "consent: consent='denied', declined"
    assert consent_line(Consent(), {"consent": ""}) == (
        "consent: consent='' not recognised, so read as missing: no consent (missing: deny)")
    assert consent_line(Consent(missing="allow"), {"consent": "maybe"}) == (
        "consent: consent='maybe' not recognised, so read as missing: taken as consent (missing: allow)")
    assert consent_line(Consent(), {}) == "consent: consent not given, no consent (missing: deny)"


def test_a_batch_with_unrecognised_consent_stores_no_context(service: ExperimentService,
                                                            engine: Engine) -> None:
    service.create(spec(consent={"attribute": "consent", "missing": "deny"}))
    values: list[Any] = ["", "null", "none", "denied", "maybe", {}, [], -1, 1.5]
    people = [(f"r{i}", {"consent": v, "segment": "vip"}) for i, v in enumerate(values)]
    people.append(("ok", {"consent": "Yes", "segment": "vip"}))
    decisions = service.assign_batch("consented", people)
    assert [d.reason for d in decisions] == ["no_consent"] * len(values) + ["assigned"]
    contexts = stored_contexts(engine)
    assert all(contexts[f"r{i}"] is None for i in range(len(values)))
    assert contexts["ok"] == {"consent": "Yes", "segment": "vip"}
    assert service.summarize("consented").fallbacks == {"no_consent": len(values)}
    why = service.preview("consented", [("p", {"consent": "maybe", "segment": "vip"})])[0]
    assert why.decision.reason == "no_consent"
    assert why.explanation[0] == (
        "consent: consent='maybe' not recognised, so read as missing: no consent (missing: deny)")


def test_the_spec_declares_consent_and_refuses_randomize_on_a_contextual_design() -> None:
    assert spec().consent == Consent(attribute="consent", missing="deny", without_consent="defaults")
    legacy = spec(consent_attribute="opt_in")  # as stored before the consent block
    assert legacy.consent == Consent(attribute="opt_in")
    with pytest.raises(SpecError) as refused:
        spec(design={"type": "contextual", "policy": "linear_ts", "context": ["device"]},
             consent={"without_consent": "randomize"})
    assert [p.path for p in refused.value.problems] == ["consent.without_consent"]
    assert "contextual" in refused.value.problems[0].message
    with pytest.raises(SpecError) as unknown:
        spec(consent={"missing": "maybe"})
    assert unknown.value.problems[0].path == "consent.missing"


def test_the_create_answer_warns_when_a_spec_relies_on_the_default(service: ExperimentService) -> None:
    relying = service.create(spec())
    assert any(w.startswith("consent: not declared") and "no_consent" in w for w in relying.warnings)
    declared = service.create(spec(key="declared", consent={"attribute": "consent", "missing": "deny"}))
    assert not any(w.startswith("consent:") for w in declared.warnings)


def test_by_default_a_recipient_without_consent_gets_the_defaults_and_nothing_is_stored(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(spec())
    people = [(f"yes{i}", {"consent": True, "segment": "vip"}) for i in range(50)]
    people += [(f"none{i}", {"segment": "vip"}) for i in range(25)]
    people += [(f"null{i}", {"consent": None, "segment": "vip"}) for i in range(25)]
    decisions = service.assign_batch("consented", people)
    by_id = {d.recipient_id: d for d in decisions}
    contexts = stored_contexts(engine)
    for rid, _ in people:
        d = by_id[rid]
        if rid.startswith("yes"):  # the rule over a personal attribute applies
            assert d.reason == "assigned" and d.variants["subject"].id == "b"
            assert contexts[rid] == {"consent": True, "segment": "vip"}
        else:
            assert d.reason == "no_consent" and d.propensity == 1.0
            assert d.variants["subject"].id == "a"  # the default
            assert contexts[rid] is None
    why = service.explain(by_id["none0"].decision_id)["explanation"]
    assert why[0] == "no context stored (the recipient did not consent)"
    assert service.summarize("consented").fallbacks == {"no_consent": 50}


def test_randomize_gives_a_sticky_non_personalised_arm_within_sampling_error(
    service: ExperimentService, engine: Engine
) -> None:
    """Half the population lacks consent. Their arms come from the hash of their id alone: the split is
    within sampling error (SRM not flagged, 4,000 recipients), the rule over ``segment`` is not applied
    to them, nothing of their context is stored, and each gets the arm they would get with consent and
    no rule (the hash reads the id, not the context)."""
    service.create(spec(consent={"without_consent": "randomize"}, holdout=0.1))
    n = 4000
    people = [(f"r{i}", {"segment": "vip"} if i % 2 else {"consent": True, "segment": "new"})
              for i in range(n)]
    decisions = service.assign_batch("consented", people)
    contexts = stored_contexts(engine)
    without = [d for (rid, ctx), d in zip(people, decisions, strict=True) if "consent" not in ctx]
    reasons = Counter(d.reason for d in without)
    assert set(reasons) == {"assigned", "holdout"}
    # the holdout still applies by the hash of the id: 10% of 2,000, within 4 binomial sds (sd 13.4)
    assert abs(reasons["holdout"] - 200) < 4 * (2000 * 0.1 * 0.9) ** 0.5
    randomized = [d for d in without if d.reason == "assigned"]
    counts = Counter(d.variants["subject"].id for d in randomized)
    assert check_sample_ratio([counts["a"], counts["b"]], [0.5, 0.5]).flagged is False
    assert all(d.propensity == pytest.approx(0.5) for d in randomized)  # vip would force b
    assert all(contexts[d.recipient_id] is None for d in without)
    with_consent = [d for (_, ctx), d in zip(people, decisions, strict=True) if "consent" in ctx]
    assert all(contexts[d.recipient_id] == {"consent": True, "segment": "new"} for d in with_consent)
    # whole-experiment SRM over every assigned decision (with and without consent) is not flagged
    every = Counter(d.variants["subject"].id for d in decisions if d.reason == "assigned")
    assert check_sample_ratio([every["a"], every["b"]], [0.5, 0.5]).flagged is False
    # sticky by id: the same recipients, now consenting and outside the rule, get the same arms
    again = service.assign_batch("consented", [(d.recipient_id, {"consent": True}) for d in randomized])
    assert [d.variants["subject"].id for d in again] == [d.variants["subject"].id for d in randomized]
    why = service.preview("consented", [("r1", {"segment": "vip"})])[0].explanation
    assert why[0] == "consent: consent not given, no consent (missing: deny)"
    assert why[1].startswith("without consent: randomize, so no eligibility, rule or context is read")


def test_randomize_on_a_bandit_draws_from_the_policy_and_logs_no_context(
    service: ExperimentService, engine: Engine
) -> None:
    service.create(spec(design={"type": "bandit", "policy": "thompson"}, rules=[],
                        consent={"without_consent": "randomize"}))
    decisions = service.assign_batch("consented", [(f"r{i}", {"segment": "vip"}) for i in range(400)])
    assert {d.reason for d in decisions} == {"policy"}
    assert {d.variants["subject"].id for d in decisions} == {"a", "b"}
    assert set(stored_contexts(engine).values()) == {None}
