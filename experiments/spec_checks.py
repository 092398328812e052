"""The checks of a spec document that pydantic's structure cannot make, read defensively from the raw
document so that every problem is reported at once with its path: the document itself (finite
numbers, no NUL character or lone surrogate, bounded nesting, size and string length), the bounds of
the spec's size (:mod:`experiments.spec_bounds`), the bounds of weights and windows, conditions,
references to slots and variants, policies and their options, the consent block, and content
templates."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from bandit import option_problems
from experiments.consent import consent_problems
from experiments.content import default_fallback, template_problem
from experiments.errors import NUL_REASON, Problem
from experiments.limits import MAX_HOURS, MAX_SPEC_DEPTH, MAX_SPEC_STRING_LENGTH, MAX_SPEC_VALUES, MAX_WEIGHT
from experiments.rules import parse_condition
from experiments.spec_bounds import size_problems, slot_sizes
from experiments.text import SURROGATE_REASON, has_lone_surrogate

#: The policies each adaptive design accepts (names of ``bandit.make_policy``).
POLICIES_BY_DESIGN: dict[str, tuple[str, ...]] = {
    "bandit": ("thompson", "gaussian_thompson", "ucb", "epsilon_greedy"),
    "contextual": ("linear_ts", "linucb", "vw"),
}


def error_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _key_part(key: Any) -> Any:
    return key.replace("\x00", "\\u0000") if isinstance(key, str) else key


def _loc(node: tuple[Any, Any] | None) -> tuple[Any, ...]:
    """The path of a node of :func:`document_problems`' walk (each node is ``(parent, key)``)."""
    parts = []
    while node is not None:
        node, key = node
        parts.append(key)
    return tuple(reversed(parts))


def document_problems(raw: Any) -> tuple[list[Problem], bool]:
    """Problems anywhere in a raw spec document, found without recursion: numbers that are not finite
    (NaN, infinities, integers too large for a float), strings and keys holding a NUL character or a lone
    surrogate, strings longer than :data:`MAX_SPEC_STRING_LENGTH` characters; and
    whether the document is beyond reading further (nested over :data:`MAX_SPEC_DEPTH` levels, or over
    :data:`MAX_SPEC_VALUES` values in all, as a YAML alias can make), reported on its own then.
    """
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[Any, Any] | None, int]] = [(raw, None, 0)]
    count = 0
    while stack:
        value, node, depth = stack.pop()
        count += 1
        if count > MAX_SPEC_VALUES:
            return [Problem("", f"too large: a spec holds at most {MAX_SPEC_VALUES:,} values")], True
        if isinstance(value, str):
            if "\x00" in value:
                problems.append(Problem(error_path(_loc(node)), NUL_REASON))
            if has_lone_surrogate(value):
                problems.append(Problem(error_path(_loc(node)), SURROGATE_REASON))
            if len(value) > MAX_SPEC_STRING_LENGTH:
                reason = f"too long: at most {MAX_SPEC_STRING_LENGTH:,} characters, got {len(value):,}"
                problems.append(Problem(error_path(_loc(node)), reason))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(Problem(error_path(_loc(node)), f"must be finite, got {value!r}"))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > sys.float_info.max:
                reason = "must be finite, got an integer too large for a number"
                problems.append(Problem(error_path(_loc(node)), reason))
        elif isinstance(value, Mapping | list | tuple):
            if depth >= MAX_SPEC_DEPTH:
                reason = f"nested too deeply: a spec nests at most {MAX_SPEC_DEPTH} levels"
                return [Problem(error_path(_loc(node)), reason)], True
            items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
            for key, _ in items:
                if isinstance(key, str) and "\x00" in key:
                    where = error_path(_loc((node, _key_part(key))))
                    problems.append(Problem(where, f"the name {NUL_REASON}"))
                if isinstance(key, str) and has_lone_surrogate(key):
                    where = error_path(_loc((node, key.encode("utf-8", "backslashreplace").decode())))
                    problems.append(Problem(where, f"the name {SURROGATE_REASON}"))
            stack.extend((item, (node, _key_part(key)), depth + 1) for key, item in reversed(items))
    return problems, False


def _number(value: Any) -> float | None:
    """``value`` as a finite float if it is a number that has one (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def bound_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Weights beyond :data:`MAX_WEIGHT` and windows beyond :data:`MAX_HOURS` (checked when a spec is saved,
    not when a stored one is read, so that a spec saved before these bounds still loads)."""
    problems = []
    slots = raw.get("slots")
    for name, slot in slots.items() if isinstance(slots, Mapping) else []:
        variants = slot.get("variants") if isinstance(slot, Mapping) else None
        for i, v in enumerate(variants if isinstance(variants, list) else []):
            weight = _number(v.get("weight")) if isinstance(v, Mapping) else None
            if weight is not None and weight > MAX_WEIGHT:
                where = f"slots.{name}.variants[{i}].weight"
                problems.append(Problem(where, f"must be at most {MAX_WEIGHT:,.0f}, got {weight:g}"))
    reward = raw.get("reward")
    events = reward.get("events") if isinstance(reward, Mapping) else None
    for event, value in events.items() if isinstance(events, Mapping) else []:
        weight = _number(value)
        if weight is not None and abs(weight) > MAX_WEIGHT:
            problems.append(
                Problem(
                    f"reward.events.{event}",
                    f"must lie between -{MAX_WEIGHT:,.0f} and {MAX_WEIGHT:,.0f}, got {weight:g}",
                )
            )
    design = raw.get("design")
    update = design.get("update") if isinstance(design, Mapping) else None
    for path, where in (("reward.window_hours", reward), ("design.update.delay_hours", update)):
        hours = _number(where.get(path.rsplit(".", 1)[1])) if isinstance(where, Mapping) else None
        if hours is not None and hours > MAX_HOURS:
            problems.append(Problem(path, f"must be at most {MAX_HOURS:,.0f} (ten years), got {hours:g}"))
    return problems


def condition_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """The problems of the eligibility condition and of each rule's ``when``."""
    problems: list[Problem] = []
    rules = raw.get("rules")
    if isinstance(rules, list):
        for i, rule in enumerate(rules):
            if isinstance(rule, Mapping) and "when" in rule:
                problems += parse_condition(rule["when"], f"rules[{i}].when")[1]
    if raw.get("eligibility") is not None:
        problems += parse_condition(raw["eligibility"], "eligibility")[1]
    return problems


def _slot_ids(raw: Mapping[str, Any]) -> dict[str, set[str]]:
    slots = raw.get("slots")
    out: dict[str, set[str]] = {}
    if not isinstance(slots, Mapping):
        return out
    for name, slot in slots.items():
        variants = slot.get("variants") if isinstance(slot, Mapping) else None
        listed = variants if isinstance(variants, list) else []
        ids = {v.get("id") for v in listed if isinstance(v, Mapping)}
        out[str(name)] = {i for i in ids if isinstance(i, str)}
    return out


def _check_refs(mapping: Any, path: str, slot_ids: dict[str, set[str]], many: bool) -> list[Problem]:
    problems: list[Problem] = []
    if not isinstance(mapping, Mapping):
        return problems
    for slot, value in mapping.items():
        if slot not in slot_ids:
            problems.append(Problem(f"{path}.{slot}", f"unknown slot {slot!r} (slots: {sorted(slot_ids)})"))
            continue
        values = value if many and isinstance(value, list) else [value]
        if many and isinstance(value, list) and not value:
            problems.append(Problem(f"{path}.{slot}", "empty list: a rule must allow at least one variant"))
        for i, vid in enumerate(values):
            where = f"{path}.{slot}[{i}]" if many else f"{path}.{slot}"
            if isinstance(vid, str) and vid not in slot_ids[slot]:
                problems.append(Problem(where, f"unknown variant {vid!r} of slot {slot!r}"))
    return problems


def check_spec_data(raw: Any) -> list[Problem]:
    """Problems of meaning in a raw spec document (pydantic checks the structure); empty when fine."""
    if not isinstance(raw, Mapping):
        return []
    too_large = size_problems(raw)
    if too_large:  # nothing else is read, rendered or built for a spec beyond the bounds
        return too_large
    problems: list[Problem] = []
    slots = raw.get("slots")
    if isinstance(slots, Mapping):
        for name, slot in slots.items():
            variants = slot.get("variants") if isinstance(slot, Mapping) else None
            if not isinstance(variants, list):
                continue
            seen: set[str] = set()
            weights = []
            for i, v in enumerate(variants):
                if not isinstance(v, Mapping):
                    continue
                vid = v.get("id")
                if isinstance(vid, str):
                    if vid in seen:
                        problems.append(Problem(f"slots.{name}.variants[{i}].id", f"duplicate id {vid!r}"))
                    seen.add(vid)
                weight = _number(v.get("weight", 1.0))
                if weight is not None:
                    weights.append(weight)
            problems += _check_contents(str(name), variants)
            problems += _check_default_content(str(name), variants, raw.get("default"))
            if weights and len(weights) == len(variants) and sum(weights) <= 0:
                problems.append(Problem(f"slots.{name}.variants", "all weights are zero"))
    problems += bound_problems(raw)
    slot_ids = _slot_ids(raw)
    problems += _check_refs(raw.get("default"), "default", slot_ids, many=False)
    rules = raw.get("rules")
    if isinstance(rules, list):
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            problems += _check_refs(rule.get("restrict"), f"rules[{i}].restrict", slot_ids, many=True)
            problems += _check_refs(rule.get("force"), f"rules[{i}].force", slot_ids, many=False)
            if not rule.get("restrict") and not rule.get("force"):
                problems.append(Problem(f"rules[{i}]", "a rule needs 'restrict' or 'force'"))
    problems += condition_problems(raw)
    problems += consent_problems(raw)
    design = raw.get("design")
    if isinstance(design, Mapping):
        kind, policy = design.get("type"), design.get("policy")
        kind = kind if isinstance(kind, str) else None  # a type of another kind is pydantic's problem
        if kind in POLICIES_BY_DESIGN:
            allowed = POLICIES_BY_DESIGN[kind]
            if policy is None:
                problems.append(
                    Problem("design.policy", f"a {kind} design needs a policy, one of {list(allowed)}")
                )
            elif isinstance(policy, str) and policy not in allowed:
                problems.append(
                    Problem(
                        "design.policy",
                        f"unknown policy {policy!r} for a {kind} design (one of {list(allowed)})",
                    )
                )
            if kind == "contextual" and not design.get("context"):
                problems.append(Problem("design.context", "a contextual design needs the context attributes"))
        elif kind in ("ab", "multivariate") and design.get("warm_start") is not None:
            problems.append(Problem("design.warm_start", f"a {kind} design has no policy to warm start"))
        if kind in ("ab", "multivariate") and policy is not None:
            problems.append(
                Problem("design.policy", f"a {kind} design takes no policy (it hashes recipients)")
            )
        if design.get("vw_args") is not None and policy != "vw":
            problems.append(Problem("design.vw_args", "vw_args applies only to the 'vw' policy"))
        update_schedule = design.get("update")
        if isinstance(update_schedule, Mapping) and update_schedule.get("delays") == "model" and (
            kind not in POLICIES_BY_DESIGN or policy == "vw"
        ):
            problems.append(Problem("design.update.delays", "'model' needs a policy that can revise what it "
                                    "learned (a bandit or contextual design, not 'vw')"))
        if isinstance(update_schedule, Mapping) and update_schedule.get("delay_model", "exponential") != (
            "exponential"
        ) and update_schedule.get("delays") != "model":
            problems.append(Problem("design.update.delay_model", "applies only with delays: model"))
        problems += _check_policy_options(kind, policy, design, _n_arms(raw))
    reward = raw.get("reward")
    if isinstance(reward, Mapping) and isinstance(reward.get("events"), Mapping) and not reward["events"]:
        if reward.get("value") is None:
            problems.append(Problem("reward.events", "no event is rewarded and no value is added"))
    if isinstance(design, Mapping) and design.get("policy") == "thompson":
        problems += _check_unit_reward(reward if isinstance(reward, Mapping) else {})
    return problems


def _n_arms(raw: Mapping[str, Any]) -> int:
    """The number of combinations of the slots' variants (and send hours; at least 1), read defensively."""
    return math.prod(max(size, 1) for size in slot_sizes(raw).values())


def _check_policy_options(kind: Any, policy: Any, design: Mapping[str, Any], n_arms: int) -> list[Problem]:
    """Each bad ``design.options`` key and a bad ``design.vw_args``, checked as the policy would."""
    options = design.get("options")
    if kind in ("ab", "multivariate"):
        if isinstance(options, Mapping) and options:
            return [Problem("design.options", f"a {kind} design takes no options (it hashes recipients)")]
        return []
    if not isinstance(policy, str) or policy not in POLICIES_BY_DESIGN.get(str(kind), ()):
        return []  # the policy itself is reported
    problems = []
    if isinstance(options, Mapping):
        for key, message in option_problems(policy, options, n_arms):
            problems.append(Problem(f"design.options.{key}", message))
    vw_args = design.get("vw_args")
    if policy == "vw" and isinstance(vw_args, str):
        vw_problems = option_problems("vw", {"vw_args": vw_args}, n_arms)
        problems += [Problem("design.vw_args", message) for _, message in vw_problems]
    return problems


def _check_contents(slot: str, variants: list[Any]) -> list[Problem]:
    """Templates that do not parse (syntax errors, unknown tags or filters), with the variant's path."""
    problems = []
    for i, v in enumerate(variants):
        if not isinstance(v, Mapping) or not isinstance(v.get("content"), str):
            continue
        problem = template_problem(v["content"])
        if problem is not None:
            problems.append(Problem(f"slots.{slot}.variants[{i}].content", problem))
    return problems


def _check_default_content(slot: str, variants: list[Any], defaults: Any) -> list[Problem]:
    """A slot's default variant must render for a recipient without any field (its merge tags' defaults,
    missing fields left out): it is the content of last resort, so it must always render."""
    named = defaults.get(slot) if isinstance(defaults, Mapping) else None
    for i, v in enumerate(variants):
        if not isinstance(v, Mapping) or not isinstance(v.get("content"), str):
            continue
        if (named is None and i > 0) or (named is not None and v.get("id") != named):
            continue
        content = v["content"]
        if template_problem(content) is None and default_fallback(content) is None:
            return [
                Problem(
                    f"slots.{slot}.variants[{i}].content",
                    "the slot's default variant must render for a recipient without any field, but it "
                    "renders blank or fails; give its merge tags a default, e.g. {{ first_name | default: "
                    "'there' }}, or add text around them",
                )
            ]
        return []
    return []


def _check_unit_reward(reward: Mapping[str, Any]) -> list[Problem]:
    """Beta-Bernoulli Thompson sampling learns from rewards in [0, 1] only."""
    events = reward.get("events", {"click": 1.0})
    values = events.values() if isinstance(events, Mapping) else []
    weights = [w for w in map(_number, values) if w is not None]
    high, low = sum(w for w in weights if w > 0), sum(w for w in weights if w < 0)
    if reward.get("value") is not None:
        return [
            Problem(
                "reward.value",
                "the thompson policy needs rewards in [0, 1]; an added value is "
                "unbounded (use gaussian_thompson)",
            )
        ]
    if high > 1 or low < 0:
        return [
            Problem(
                "reward.events",
                f"the thompson policy needs rewards in [0, 1]; these weights reach "
                f"[{low:g}, {high:g}] (use gaussian_thompson, or weights summing to at most 1)",
            )
        ]
    return []


def not_under(problems: list[Problem], reported: list[Problem]) -> list[Problem]:
    """``problems`` but those at or below the path of one already ``reported`` (a non-finite number or a
    NUL character is reported once as such, not again by each check that reads the value)."""
    paths = {p.path for p in reported}
    out = []
    for problem in problems:
        path = problem.path
        above = {path[:i] for i, ch in enumerate(path) if ch in ".["} | {path}
        if not above & paths:
            out.append(problem)
    return out
