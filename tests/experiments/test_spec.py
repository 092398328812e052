"""The spec: JSON and YAML parse to the same model; every problem is reported at once with its path."""

from __future__ import annotations

import json
import math
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
    assert "design.vw_args: --foo is not an option SendLab allows in vw_args" in problems
    assert "design.options.colour: unknown option for policy 'vw' (it takes: vw_args, min_share)" in problems
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
        "(it takes: epsilon, initial_value, min_share, discount, window_days)",
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
    assert [str(p) for p in info.value.problems] == [
        "design.vw_args: --bogus is not an option SendLab allows in vw_args"
    ]


def test_bytes_that_are_not_utf8_are_a_spec_error():
    with pytest.raises(SpecError, match="not UTF-8 text"):
        parse_spec("key: caf\xe9\n".encode("latin-1"), content_type="application/yaml")


# ------------------------------------------------------------------- numbers, NUL characters, nesting

NOT_FINITE = [
    ("slots.cta.variants.0.weight", math.inf, "slots.cta.variants[0].weight: must be finite, got inf"),
    ("slots.cta.variants.0.weight", "Infinity", "slots.cta.variants[0].weight: must be finite, got inf"),
    ("slots.cta.variants.1.weight", math.nan, "slots.cta.variants[1].weight: must be finite, got nan"),
    ("slots.cta.variants.1.weight", 10**400, "slots.cta.variants[1].weight: must be finite, got an integer"),
    ("reward.events.click", math.nan, "reward.events.click: must be finite, got nan"),
    ("reward.events.conversion", -math.inf, "reward.events.conversion: must be finite, got -inf"),
    ("reward.window_hours", math.inf, "reward.window_hours: must be finite, got inf"),
    ("holdout", math.nan, "holdout: must be finite, got nan"),
    ("slots.subject.variants.0.features.emoji", math.inf,
     "slots.subject.variants[0].features.emoji: must be finite, got inf"),
    ("design.update.every_seconds", math.inf, "design.update.every_seconds: must be finite, got inf"),
    ("rules.0.when", {"attr": "age", "op": "lt", "value": -math.inf}, "rules[0].when.value: must be finite"),
    ("design.options", {"alpha": math.nan}, "design.options.alpha: must be finite, got nan"),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"), NOT_FINITE, ids=[b[2].split(":")[0] for b in NOT_FINITE]
)
def test_every_number_of_a_spec_must_be_finite(path: str, value: Any, expected: str) -> None:
    problems = _problems(_with(path, value))
    assert [p for p in problems if p.startswith(expected)], problems
    where = expected.split(":")[0]
    assert len([p for p in problems if p.startswith(where)]) == 1, problems  # reported once, as such


def test_non_finite_numbers_are_refused_in_json_and_yaml_text() -> None:
    text = json.dumps(base()).replace('"weight": 3', '"weight": Infinity')
    assert "Infinity" in text
    assert "slots.cta.variants[0].weight: must be finite, got inf" in _problems(text)
    yaml_text = YAML.replace("weight: 3", "weight: .inf").replace("click: 1.0", "click: .nan")
    problems = _problems(yaml_text, "application/yaml")
    assert "slots.cta.variants[0].weight: must be finite, got inf" in problems
    assert "reward.events.click: must be finite, got nan" in problems


def test_weights_and_windows_are_bounded() -> None:
    assert _problems(_with("reward.events.conversion", 1e308)) == [
        "reward.events.conversion: must lie between -1,000,000 and 1,000,000, got 1e+308"
    ]
    assert _problems(_with("reward.events.click", -2e6)) == [
        "reward.events.click: must lie between -1,000,000 and 1,000,000, got -2e+06"
    ]
    assert _problems(_with("slots.cta.variants.0.weight", 1e7)) == [
        "slots.cta.variants[0].weight: must be at most 1,000,000, got 1e+07"
    ]
    assert _problems(_with("reward.window_hours", 1e308)) == [
        "reward.window_hours: must be at most 87,600 (ten years), got 1e+308"
    ]
    assert _problems(_with("design.update", {"delay_hours": 1e9})) == [
        "design.update.delay_hours: must be at most 87,600 (ten years), got 1e+09"
    ]
    # a number given as text is bounded as the number pydantic reads from it
    assert _problems(_with("slots.cta.variants.0.weight", "1e7")) == [
        "slots.cta.variants[0].weight: must be at most 1,000,000, got 1e+07"
    ]
    assert _problems(_with("reward.events.click", "-1e9")) == [
        "reward.events.click: must lie between -1,000,000 and 1,000,000, got -1e+09"
    ]
    # the bounds themselves are fine
    data = _with("reward.events", {"click": 1e6, "unsubscribe": -1e6})
    data["slots"]["cta"]["variants"][0]["weight"] = 1e6
    data["reward"]["window_hours"] = 87_600
    spec = parse_spec(data)
    assert spec.reward.events == {"click": 1e6, "unsubscribe": -1e6}


def test_a_spec_saved_before_the_bounds_still_loads() -> None:
    """The bounds are checked when a spec is saved; a stored one beyond them (saved before) still reads."""
    data = _with("slots.cta.variants.0.weight", 1e7)
    data["reward"]["window_hours"] = 1e6
    stored = json.dumps(data)
    spec = ExperimentSpec.model_validate_json(stored)
    assert spec.slots["cta"].variants[0].weight == 1e7
    with pytest.raises(SpecError, match="must be at most 1,000,000"):
        check_spec(spec)


def test_check_spec_refuses_non_finite_numbers_of_a_model_built_directly() -> None:
    data = base()
    data["design"] = {"type": "bandit", "policy": "epsilon_greedy", "options": {"epsilon": math.nan}}
    data["slots"]["cta"]["variants"][1]["weight"] = math.inf
    spec = ExperimentSpec.model_validate(data)
    with pytest.raises(SpecError) as info:
        check_spec(spec)
    assert [str(p) for p in info.value.problems] == [
        "slots.cta.variants[1].weight: must be finite, got inf",
        "design.options.epsilon: must be finite, got nan",
    ]


NUL = [
    ("key", "spring\x00sale", "key: must not contain a NUL character (\\u0000)"),
    ("name", "a\x00b", "name: must not contain a NUL character"),
    ("slots.cta.variants.0.content", "Shop\x00now", "slots.cta.variants[0].content: must not contain a NUL"),
    ("slots.cta.variants.0.id", "sh\x00op", "slots.cta.variants[0].id: must not contain a NUL"),
    ("reward.guardrails", ["unsub\x00"], "reward.guardrails[0]: must not contain a NUL"),
    ("reward.events", {"cl\x00ick": 1.0}, "reward.events.cl\\u0000ick: the name must not contain a NUL"),
    ("rules.0.when", {"attr": "location", "op": "eq", "value": "C\x00A"}, "rules[0].when.value: must not"),
    ("design.context", ["dev\x00ice"], "design.context[0]: must not contain a NUL"),
]


@pytest.mark.parametrize(("path", "value", "expected"), NUL, ids=[b[2].split(":")[0] for b in NUL])
def test_no_string_or_name_of_a_spec_may_hold_a_nul_character(path: str, value: Any, expected: str) -> None:
    problems = _problems(_with(path, value))
    assert [p for p in problems if p.startswith(expected)], problems


TOO_DEEP = "nested too deeply: conditions nest at most 32 levels"
SPEC_LIMIT = "a spec nests at most 100 levels"
SPEC_TOO_DEEP = f"nested too deeply: {SPEC_LIMIT}"


def _nested_not(depth: int) -> dict[str, Any]:
    """A condition of ``depth`` levels: ``depth - 1`` nested ``not`` around one comparison."""
    cond: dict[str, Any] = {"attr": "consent", "op": "eq", "value": True}
    for _ in range(depth - 1):
        cond = {"not": cond}
    return cond


def test_conditions_nest_at_most_32_levels() -> None:
    assert parse_spec(_with("eligibility", _nested_not(32))).eligibility is not None
    problems = _problems(_with("eligibility", _nested_not(33)))
    assert problems == ["eligibility" + ".not" * 32 + ": " + TOO_DEEP]
    deep_all: dict[str, Any] = {"attr": "a", "op": "exists"}
    for _ in range(40):
        deep_all = {"all": [deep_all]}
    problems = _problems(_with("rules.0.when", deep_all))
    assert problems == ["rules[0].when" + ".all[0]" * 32 + ": " + TOO_DEEP]


@pytest.mark.parametrize("depth", [450, 990, 3000])
def test_deeply_nested_conditions_are_a_problem_never_a_recursion_error(depth: int) -> None:
    expected = "eligibility" + ".not" * 32 + ": " + TOO_DEEP
    assert _problems(_with("eligibility", _nested_not(depth))) == [expected]


def _deep_texts(depth: int) -> tuple[str, str]:
    """The example spec with an eligibility of ``depth`` levels, as JSON text and as YAML text."""
    json_text = json.dumps(_with("eligibility", "@")).replace(
        '"@"', '{"not": ' * (depth - 1) + '{"attr": "a", "op": "exists"}' + "}" * (depth - 1)
    )
    chain = "{not: " * (depth - 1) + "{attr: a, op: exists}" + "}" * (depth - 1)
    old = "eligibility: {all: [{attr: consent, op: eq, value: true}]}"
    return json_text, YAML.replace(old, f"eligibility: {chain}")


def test_deeply_nested_json_and_yaml_text_is_a_problem_never_a_recursion_error() -> None:
    json_text, yaml_text = _deep_texts(450)  # the parsers read it: the condition's depth is the problem
    expected = ["eligibility" + ".not" * 32 + ": " + TOO_DEEP]
    assert _problems(json_text) == expected
    assert _problems(yaml_text, "application/yaml") == expected
    json_text, yaml_text = _deep_texts(3000)  # beyond what the parsers can read (they recurse per level)
    assert _problems(json_text) == [f"cannot parse application/json: nested too deeply ({SPEC_LIMIT})"]
    assert _problems(yaml_text, "application/yaml") == [
        f"cannot parse application/yaml: nested too deeply ({SPEC_LIMIT})"
    ]


def test_a_spec_nests_at_most_100_levels_and_holds_at_most_100_000_values() -> None:
    nested: Any = 1
    for _ in range(150):
        nested = [nested]
    problems = _problems(_with("design.options", {"deep": nested}))
    assert problems == ["design.options.deep" + "[0]" * 97 + ": " + SPEC_TOO_DEEP]
    cycle = "key: x\nslots: &s {a: *s}\n"  # a YAML alias to itself: a mapping that contains itself
    assert _problems(cycle, "application/yaml")[0].endswith(SPEC_TOO_DEEP)
    bomb = "key: x\na: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )  # a billion values through aliases
    assert _problems(bomb, "application/yaml") == ["too large: a spec holds at most 100,000 values"]
    huge = '{"key": ' + "1" * 5000 + "}"
    assert _problems(huge) == ["cannot parse application/json: a number has too many digits"]
