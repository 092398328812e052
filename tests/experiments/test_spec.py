"""The spec: JSON and YAML parse to the same model; every problem is reported at once with its path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from experiments.errors import Problem, SpecError
from experiments.spec import ExperimentSpec, check_spec, parse_spec

YAML = """
key: spring-sale
name: Spring sale subject line and CTA
slots:
  subject:
    variants:
      - {id: plain,  content: "Spring sale: 20% off", features: {tone: plain, emoji: false}}
      - {id: urgent, content: "Ends tonight: 20% off", features: {tone: urgent, emoji: false}}
  cta:
    variants:
      - {id: shop, content: "Shop now", weight: 3}
      - {id: see,  content: "See the collection"}
design:
  type: contextual
  policy: vw
  vw_args: "--cb_explore_adf --squarecb"
  context: [location, device, recency_days]
  update: {every_outcomes: 1000, every_seconds: 900}
holdout: 0.05
default: {subject: plain, cta: shop}
eligibility: {all: [{attr: consent, op: eq, value: true}]}
rules:
  - when: {all: [{attr: location, op: eq, value: CA}, {attr: last_category, op: eq, value: outdoor}]}
    restrict: {cta: [shop]}
reward:
  events: {click: 1.0, conversion: 5.0}
  value: revenue
  window_hours: 72
  guardrails: [unsubscribe]
"""


def base() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(YAML)


def test_yaml_and_json_give_the_same_spec() -> None:
    from_yaml = parse_spec(YAML, "application/yaml")
    from_json = parse_spec(json.dumps(base()), "application/json")
    assert from_yaml == from_json
    assert from_yaml.slots["cta"].variants[0].weight == 3.0
    assert from_yaml.slots["cta"].variants[1].weight == 1.0  # default weight
    assert from_yaml.control == {"subject": "plain", "cta": "shop"}
    assert list(from_yaml.slots) == ["subject", "cta"]  # spec order is kept: it orders the arms


def test_control_defaults_to_first_variant_and_salt_to_key() -> None:
    data = base()
    del data["default"]
    spec = parse_spec(data)
    assert spec.control == {"subject": "plain", "cta": "shop"}
    assert spec.hash_salt == "spring-sale"


def test_canonical_json_round_trips() -> None:
    spec = parse_spec(YAML, "application/yaml")
    assert ExperimentSpec.model_validate_json(spec.canonical_json()) == spec


def _problems(data: Any, content_type: str = "application/json") -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, content_type)
    return [str(p) for p in info.value.problems]


def _with(path: str, value: Any) -> dict[str, Any]:
    data = base()
    target: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()

BAD = [
    ("slots.cta.variants.1.id", "shop", "slots.cta.variants[1].id: duplicate id 'shop'"),
    ("default.cta", "buy", "default.cta: unknown variant 'buy' of slot 'cta'"),
    ("default.body", "x", "default.body: unknown slot 'body'"),
    ("design.policy", "thompson", "design.policy: unknown policy 'thompson' for a contextual design"),
    ("design.policy", "linucb", "design.vw_args: vw_args applies only to the 'vw' policy"),
    ("design.type", "nope", "design.type: Input should be 'ab', 'multivariate', 'bandit' or 'contextual'"),
    ("holdout", 1.5, "holdout: Input should be less than 1"),
    (
        "slots.cta.variants.0.weight",
        -1,
        "slots.cta.variants[0].weight: Input should be greater than or equal to 0",
    ),
    ("rules.0.restrict", {"cta": ["buy"]}, "rules[0].restrict.cta[0]: unknown variant 'buy' of slot 'cta'"),
    ("rules.0.restrict", {"footer": ["x"]}, "rules[0].restrict.footer: unknown slot 'footer'"),
    ("rules.0.when", {"attr": "x", "op": "like", "value": 1}, "rules[0].when.op: unknown operator 'like'"),
    ("rules.0.when", {"attr": "x", "op": "lt", "value": "ten"}, "rules[0].when.value: 'lt' needs a number"),
    ("rules.0.when", {"all": []}, "rules[0].when.all: a non-empty list of conditions is required"),
    (
        "eligibility",
        {"any": [{"attr": "a", "op": "in", "value": 3}]},
        "eligibility.any[0].value: 'in' needs a list",
    ),
    ("eligibility", {"not": {"op": "eq", "value": 1}}, "eligibility.not.attr: an attribute name"),
    ("reward.window_hours", 0, "reward.window_hours: Input should be greater than 0"),
    ("key", "bad key!", "key: String should match pattern"),
    ("colour", "red", "colour: Extra inputs are not permitted"),
    ("slots.cta.variants", [], "slots.cta.variants: List should have at least 1 item"),
    ("design.context", [], "design.context: a contextual design needs the context attributes"),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[b[2].split(":")[0] for b in BAD])
def test_bad_specs_name_the_path_and_problem(path: str, value: Any, expected: str) -> None:
    problems = _problems(_with(path, value))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    data = base()
    data["slots"]["cta"]["variants"].append({"id": "shop", "content": "again"})
    data["default"]["subject"] = "loud"
    data["holdout"] = -0.1
    data["rules"][0]["force"] = {"subject": "quiet"}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert set(info.value.problems) >= {
        Problem("slots.cta.variants[2].id", "duplicate id 'shop'"),
        Problem("default.subject", "unknown variant 'loud' of slot 'subject'"),
        Problem("rules[0].force.subject", "unknown variant 'quiet' of slot 'subject'"),
    }
    assert any(p.path == "holdout" for p in info.value.problems)
    message = str(info.value)
    assert "slots.cta.variants[2].id: duplicate id 'shop'" in message
    assert "(4 problems)" in message


def test_unparseable_text_and_wrong_content_type() -> None:
    assert _problems("{not json")[0].startswith("cannot parse application/json")
    assert _problems("a: [", "application/yaml")[0].startswith("cannot parse application/yaml")
    assert _problems("{}", "text/csv")[0].startswith("unsupported content type 'text/csv'")
    assert _problems("[1, 2]")[0] == "a spec is a mapping, got list"


def test_ab_design_takes_no_policy_and_bandit_needs_one() -> None:
    data = base()
    data["design"] = {"type": "ab", "policy": "thompson"}
    assert "design.policy: a ab design takes no policy (it hashes recipients)" in _problems(data)
    data["design"] = {"type": "bandit"}
    assert any(p.startswith("design.policy: a bandit design needs a policy") for p in _problems(data))


def test_thompson_needs_rewards_in_the_unit_interval() -> None:
    data = base()
    data["design"] = {"type": "bandit", "policy": "thompson"}
    problems = _problems(data)
    assert any(p.startswith("reward.value: the thompson policy needs rewards in [0, 1]") for p in problems)
    del data["reward"]["value"]
    assert any(
        p.startswith("reward.events: the thompson policy needs rewards in [0, 1]; these weights reach [0, 6]")
        for p in _problems(data)
    )
    data["reward"]["events"] = {"click": 1.0}
    assert parse_spec(data).design.policy == "thompson"
    data["design"]["policy"] = "gaussian_thompson"
    data["reward"]["events"] = {"click": 1.0, "conversion": 5.0}
    assert parse_spec(data).design.policy == "gaussian_thompson"


def test_check_spec_catches_a_model_built_directly() -> None:
    data = base()
    data["default"]["cta"] = "buy"
    spec = ExperimentSpec.model_validate(data)  # structure is fine, meaning is not
    with pytest.raises(SpecError, match=r"default.cta: unknown variant 'buy'"):
        check_spec(spec)


def test_policy_options_are_checked_per_key_beside_every_other_problem() -> None:
    data = base()  # a contextual vw design
    data["design"]["vw_args"] = "--cb_explore_adf --foo"
    data["design"]["options"] = {"colour": "red"}
    data["slots"]["cta"]["variants"].append({"id": "shop", "content": "again"})
    data["holdout"] = 2
    problems = _problems(data)
    assert "design.vw_args: unknown option --foo" in problems
    assert "design.options.colour: unknown option for policy 'vw' (it takes: vw_args)" in problems
    assert "slots.cta.variants[2].id: duplicate id 'shop'" in problems
    assert any(p.startswith("holdout: ") for p in problems)
    assert len(problems) == 4, problems

    data = base()
    data["design"] = {"type": "bandit", "policy": "epsilon_greedy",
                      "options": {"epsilon": 2, "initial_value": "high", "n_draws": 500}}
    data["default"]["cta"] = "buy"
    problems = _problems(data)
    assert problems == [
        "default.cta: unknown variant 'buy' of slot 'cta'",
        "design.options.epsilon: must lie in [0, 1], got 2",
        "design.options.initial_value: expected a number, got 'high'",
        "design.options.n_draws: unknown option for policy 'epsilon_greedy' "
        "(it takes: epsilon, initial_value)",
    ]


def test_policy_options_that_fit_pass_and_hash_designs_take_none() -> None:
    data = base()
    data["design"] = {"type": "contextual", "policy": "linear_ts", "context": ["device"],
                      "options": {"scale": 0.5, "dim": 32, "n_draws": 2000}}
    assert parse_spec(data).design.options == {"scale": 0.5, "dim": 32, "n_draws": 2000}
    data["design"] = {"type": "contextual", "policy": "linear_ts", "context": ["device"],
                      "options": {"dim": 100_000}}
    assert _problems(data) == ["design.options.dim: at most 4096 (the linear policies keep a dim x dim "
                               "matrix per variant), got 100000"]
    data["design"] = {"type": "ab", "options": {"epsilon": 0.1}}
    assert _problems(data) == ["design.options: a ab design takes no options (it hashes recipients)"]


def test_check_spec_reports_option_problems_of_a_model_built_directly() -> None:
    data = base()
    data["design"]["vw_args"] = "--cb_explore_adf --bogus"
    spec = ExperimentSpec.model_validate(data)
    with pytest.raises(SpecError) as info:
        check_spec(spec)
    assert [str(p) for p in info.value.problems] == ["design.vw_args: unknown option --bogus"]


def test_bytes_that_are_not_utf8_are_a_spec_error():
    with pytest.raises(SpecError, match="not UTF-8 text"):
        parse_spec("key: caf\xe9\n".encode("latin-1"), content_type="application/yaml")
