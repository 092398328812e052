"""Intent to treat when a merge field is missing: in an A/B test with a ``{{ first_name }}`` subject, the
recipients without ``first_name`` stay in the arm the hash gave them (no sample ratio mismatch), are
shown the declared fallback or the default content, and are analysed in that arm. Bandits may leave the
variant out before they draw, and the propensity says so."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from experiments.errors import SpecError
from experiments.hashing import bucket_variants
from experiments.spec import parse_spec
from tests.api.conftest import ADMIN, SEND

N = 4000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sendlab.db'}"
    return str(request.getfixturevalue("pg_url"))


def named_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": "names",
        "slots": {"subject": {"variants": [
            {"id": "plain", "content": "Spring sale"},
            {"id": "named", "content": "Hello {{ first_name }}, spring sale"},
        ]}},
        "design": {"type": "ab"},
        "reward": {"events": {"click": 1.0}},
        "consent": {"missing": "allow"},  # the recipients carry no consent attribute
    }
    spec.update(changes)
    return spec


def half_without_names() -> list[dict[str, Any]]:
    return [
        {"recipient_id": f"r{i}", "context": {"first_name": f"Ann{i}"} if i % 2 else {}} for i in range(N)
    ]


def assign_all(client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/v1/experiments/names/assign/batch", json=body, headers=SEND)
    assert response.status_code == 200, response.text
    return response.json()["decisions"]


def test_recipients_without_the_field_stay_in_their_hash_arm(make_client, db_url):
    client = make_client(db_url)
    assert client.post("/v1/experiments", json=named_spec(), headers=ADMIN).status_code == 201
    recipients = half_without_names()
    decisions = assign_all(client, {"recipients": recipients})
    ids = [r["recipient_id"] for r in recipients]
    hashed, _ = bucket_variants("names", "subject", ids, ["plain", "named"], [1.0, 1.0])
    expected = [["plain", "named"][j] for j in hashed]
    assert [d["variants"]["subject"]["id"] for d in decisions] == expected  # the arm the hash gave
    for r, d in zip(recipients, decisions, strict=True):
        content = d["variants"]["subject"]["content"]
        if d["variants"]["subject"]["id"] == "plain":
            assert (d["reason"], content) == ("assigned", "Spring sale")
        elif r["context"]:
            assert (d["reason"], content) == ("assigned", f"Hello {r['context']['first_name']}, spring sale")
        else:  # no fallback declared: the default's content, logged in the drawn arm
            assert (d["reason"], content) == ("content_fallback", "Spring sale")
            assert "content fell back to 'plain'" in d["content_notes"]["subject"]
        assert d["propensity"] == pytest.approx(0.5)
    results = client.get("/v1/experiments/names/results", headers=ADMIN).json()
    assert results["srm"]["flagged"] is False
    arms = {a["variant"]: a["decisions"] for a in results["arms"] if a["slot"] == "subject"}
    assert arms == dict(Counter(expected))  # analysed in the arm the hash gave, fallbacks included
    # the allocation of those without the field is a fair coin too (on main: all 2,000 to the control)
    without = Counter(e for e, r in zip(expected, recipients, strict=True) if not r["context"])
    assert abs(without["named"] - N / 4) < 4 * (N / 2 * 0.25) ** 0.5


def test_declared_merge_defaults_render_the_assigned_variant(make_client, db_url):
    client = make_client(db_url)
    spec = named_spec(merge_defaults={"first_name": "there"})
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    decisions = assign_all(client, {"recipients": half_without_names()[:400]})
    named = [d for d in decisions if d["variants"]["subject"]["id"] == "named"]
    assert named
    for d in named:
        assert d["reason"] == "assigned" and d["content_notes"] == {}
        index = int(d["recipient_id"][1:])
        name = f"Ann{index}" if index % 2 else "there"
        assert d["variants"]["subject"]["content"] == f"Hello {name}, spring sale"
    stored = client.get("/v1/experiments/names", headers=ADMIN).json()
    assert stored["spec"]["merge_defaults"] == {"first_name": "there"}


def test_a_bandit_leaves_out_a_variant_that_cannot_render_and_its_propensity_says_so(make_client, db_url):
    client = make_client(db_url)
    spec = named_spec(design={"type": "bandit", "policy": "thompson"})
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    decisions = assign_all(client, {"recipients": half_without_names()[:200]})
    for d in decisions:
        if int(d["recipient_id"][1:]) % 2 == 0:  # no first_name: only the plain subject is offered
            assert (d["variants"]["subject"]["id"], d["propensity"]) == ("plain", 1.0)
            assert "not offered 'named'" in d["content_notes"]["subject"]
    assert {d["variants"]["subject"]["id"] for d in decisions[1::2]} == {"plain", "named"}


@pytest.mark.parametrize("bad", [{"first_name": ["a"]}, {"first_name": None}, {"": "x"}])
def test_bad_merge_defaults_are_refused_with_their_path(bad):
    with pytest.raises(SpecError) as caught:
        parse_spec(named_spec(merge_defaults=bad))
    assert any(str(p.path).startswith("merge_defaults") for p in caught.value.problems)
