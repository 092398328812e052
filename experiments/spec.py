"""The experiment spec: a pydantic model, parsed from JSON or YAML, validated with every problem at once.

The structure (types, required fields, unknown keys) is checked by pydantic; the meaning (duplicate
variant ids, defaults and rules naming unknown slots or variants, a policy that does not fit the
design, malformed conditions) by :func:`check_spec_data`, which reads the raw document defensively so
that both kinds of problem are reported together, each with its path
(``slots.cta.variants[2].id: duplicate id 'shop'``).

Before either, the raw document is read once without recursion (:func:`document_problems`): every number
in it must be finite, no string or key may hold a NUL character (PostgreSQL cannot store one), and it
may nest at most :data:`MAX_SPEC_DEPTH` levels (conditions at most
:data:`experiments.rules.MAX_CONDITION_DEPTH`). Reward and variant weights lie within
:data:`MAX_WEIGHT` of zero and the reward window and learning delay are at most :data:`MAX_HOURS`, so
that no sum of rewards, share of traffic or time window computed from them can overflow.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bandit import option_problems
from experiments.content import default_fallback, template_problem, try_render
from experiments.errors import NUL_REASON, Problem, SpecError
from experiments.rules import parse_condition

FeatureValue = str | int | float | bool
DesignType = Literal["ab", "multivariate", "bandit", "contextual"]

#: The policies each adaptive design accepts (names of ``bandit.make_policy``).
POLICIES_BY_DESIGN: dict[str, tuple[str, ...]] = {
    "bandit": ("thompson", "gaussian_thompson", "ucb", "epsilon_greedy"),
    "contextual": ("linear_ts", "linucb", "vw"),
}
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: A context attribute that results can group or adjust by (``record``, ``?segment=``, ``?covariate=``):
#: 1 to 64 characters, no double quote, backslash or control character (it goes into a JSON path).
ATTRIBUTE_PATTERN = r'^[^"\\\x00-\x1f]{1,64}$'
#: The largest variant weight and the largest reward weight in absolute value: a reward sums at most one
#: weight per event type, so its sums, squares and cubes over any number of decisions stay finite.
MAX_WEIGHT = 1e6
#: The longest reward window and learning delay, in hours (ten years).
MAX_HOURS = 87_600.0
#: How deep a spec document may nest (mappings and lists), and how many values it may hold in all.
MAX_SPEC_DEPTH = 100
MAX_SPEC_VALUES = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    """One variant of a slot: ``content`` is rendered per recipient; ``weight`` is its A/B traffic share."""

    id: str = Field(min_length=1, max_length=64)
    content: str = ""
    features: dict[str, FeatureValue] = Field(default_factory=dict)
    weight: float = Field(default=1.0, ge=0.0)


class Slot(_Strict):
    """What is chosen per recipient (a subject line, a call to action, ...): at least one variant."""

    variants: list[Variant] = Field(min_length=1)


class UpdateSchedule(_Strict):
    """When the policy learns by itself.

    ``every_outcomes`` / ``every_seconds`` trigger a learning run; ``delay_hours`` is how old a decision
    must be before it is learned from, so that its outcomes have arrived (default: the reward window).
    ``delays: model`` also learns younger decisions at once, each as the share of a trial its outcome
    would have arrived by, from the delay distribution estimated on the experiment's own log, and
    revises them when the outcome arrives or the window closes (:mod:`experiments.delayed_learning`);
    ``wait`` (the default) waits for the delay.
    """

    every_outcomes: int | None = Field(default=None, ge=1)
    every_seconds: float | None = Field(default=None, gt=0)
    delay_hours: float | None = Field(default=None, ge=0)
    delays: Literal["wait", "model"] = "wait"


class WarmStart(_Strict):
    """Start a new policy as an apprentice.

    Recipients keep getting the incumbent choice (the defaults, as the rules allow) while the policy
    learns from those decisions; it starts exploring when told to, or once, over the last
    ``min_decisions`` apprentice decisions, the policy would have chosen as the incumbent did with a
    mean probability of at least ``agreement``.
    """

    agreement: float = Field(default=0.9, gt=0.0, le=1.0)
    min_decisions: int = Field(default=500, ge=1)


class Design(_Strict):
    """How variants are chosen: a hash-bucketed A/B or multivariate design, or a bandit policy."""

    type: DesignType
    policy: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    vw_args: str | None = None
    context: list[str] = Field(default_factory=list)
    update: UpdateSchedule = Field(default_factory=UpdateSchedule)
    warm_start: WarmStart | None = None


class Rule(_Strict):
    """A deterministic rule: when ``when`` holds, only the listed variants are allowed."""

    name: str | None = None
    when: dict[str, Any]
    restrict: dict[str, list[str]] = Field(default_factory=dict)
    force: dict[str, str] = Field(default_factory=dict)


class Reward(_Strict):
    """The reward of a decision.

    Each type in ``events`` adds its weight once if at least one such event was attributed (the first
    click counts once); ``value`` names an event type whose values all add up (revenue); events later
    than ``window_hours`` after the decision are stored but not attributed; ``guardrails`` are event
    types reported, never rewarded. An event is machine-made (Apple Mail Privacy Protection prefetching
    opens, link scanners clicking every link) when flagged so, or when its user agent contains one of
    ``machine_user_agents`` (case-insensitive); machine events are stored, left out of rewards and
    results, and counted.
    """

    events: dict[str, float] = Field(default_factory=lambda: {"click": 1.0})
    value: str | None = None
    window_hours: float = Field(default=72.0, gt=0)
    guardrails: list[str] = Field(default_factory=list)
    machine_user_agents: list[str] = Field(default_factory=list)

    def is_machine(self, flagged: bool, user_agent: str | None) -> bool:
        """Whether an event is machine-made by its flag or its user agent."""
        if flagged:
            return True
        if not user_agent or not self.machine_user_agents:
            return False
        agent = user_agent.lower()
        return any(pattern.lower() in agent for pattern in self.machine_user_agents if pattern)


class ExperimentSpec(_Strict):
    """One experiment, as saved by ``ExperimentService.create``.

    ``default`` names each slot's control variant (the first variant when omitted); ``holdout`` is the
    share of recipients who always get the defaults; ``consent_attribute`` is the context attribute
    that, when present and false, means the recipient did not consent (no context is stored then).
    ``record`` names further context attributes stored with each decision for the analysis (results by
    segment, a CUPED covariate such as ``clicks_30d``); no policy or rule sees them.
    """

    key: str = Field(pattern=KEY_PATTERN)
    name: str = ""
    salt: str | None = None
    slots: dict[str, Slot] = Field(min_length=1)
    design: Design
    holdout: float = Field(default=0.0, ge=0.0, lt=1.0)
    default: dict[str, str] = Field(default_factory=dict)
    eligibility: dict[str, Any] | None = None
    rules: list[Rule] = Field(default_factory=list)
    reward: Reward = Field(default_factory=Reward)
    consent_attribute: str | None = "consent"
    record: list[Annotated[str, Field(pattern=ATTRIBUTE_PATTERN)]] = Field(default_factory=list)

    @property
    def hash_salt(self) -> str:
        """The salt of the sticky hashes: ``salt`` if given, else the key (stable across versions)."""
        return self.salt if self.salt is not None else self.key

    @property
    def learning_delay_hours(self) -> float:
        """How old a decision must be before the policy learns from it: ``design.update.delay_hours``,
        else the reward window."""
        delay = self.design.update.delay_hours
        return self.reward.window_hours if delay is None else delay

    @property
    def control(self) -> dict[str, str]:
        """Each slot's default (control) variant id, in slot order."""
        return {name: self.default.get(name, slot.variants[0].id) for name, slot in self.slots.items()}

    @property
    def slot_variant_ids(self) -> dict[str, list[str]]:
        return {name: [v.id for v in slot.variants] for name, slot in self.slots.items()}

    def canonical_json(self) -> str:
        """The spec as compact JSON in its own order (slot order matters: it orders the arms).

        Equal specs give equal strings; this decides whether saving makes a new version.
        """
        data = self.model_dump(mode="json")
        if not data["record"]:  # added later: absent when empty, so specs saved before keep their text
            del data["record"]
        return json.dumps(data, separators=(",", ":"))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _load(data: str | bytes | Mapping[str, Any], content_type: str) -> Any:
    if isinstance(data, Mapping):
        return dict(data)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise SpecError([Problem("", f"not UTF-8 text: {exc.reason}")]) from exc
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind.endswith("json"):
            return json.loads(text)
        if kind.endswith("yaml") or kind.endswith("yml"):
            return yaml.safe_load(text)
    except RecursionError as exc:  # the parsers recurse per level of nesting
        reason = f"nested too deeply (a spec nests at most {MAX_SPEC_DEPTH} levels)"
        raise SpecError([Problem("", f"cannot parse {kind}: {reason}")]) from exc
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError, or an integer of over 4,300 digits
        reason = str(exc) if "integer string conversion" not in str(exc) else "a number has too many digits"
        raise SpecError([Problem("", f"cannot parse {kind}: {reason}".splitlines()[0])]) from exc
    raise SpecError([Problem("", f"unsupported content type {content_type!r} (use JSON or YAML)")])


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
    (NaN, infinities, integers too large for a float), strings and keys holding a NUL character; and
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
                problems.append(Problem(_path(_loc(node)), NUL_REASON))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(Problem(_path(_loc(node)), f"must be finite, got {value!r}"))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > sys.float_info.max:
                reason = "must be finite, got an integer too large for a number"
                problems.append(Problem(_path(_loc(node)), reason))
        elif isinstance(value, Mapping | list | tuple):
            if depth >= MAX_SPEC_DEPTH:
                reason = f"nested too deeply: a spec nests at most {MAX_SPEC_DEPTH} levels"
                return [Problem(_path(_loc(node)), reason)], True
            items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
            for key, _ in items:
                if isinstance(key, str) and "\x00" in key:
                    problems.append(Problem(_path(_loc((node, _key_part(key)))), f"the name {NUL_REASON}"))
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


def _bound_problems(raw: Mapping[str, Any]) -> list[Problem]:
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


def _condition_problems(raw: Mapping[str, Any]) -> list[Problem]:
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
    problems += _bound_problems(raw)
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
    problems += _condition_problems(raw)
    design = raw.get("design")
    if isinstance(design, Mapping):
        kind, policy = design.get("type"), design.get("policy")
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
        problems += _check_policy_options(kind, policy, design, _n_arms(raw))
    reward = raw.get("reward")
    if isinstance(reward, Mapping) and isinstance(reward.get("events"), Mapping) and not reward["events"]:
        if reward.get("value") is None:
            problems.append(Problem("reward.events", "no event is rewarded and no value is added"))
    if isinstance(design, Mapping) and design.get("policy") == "thompson":
        problems += _check_unit_reward(reward if isinstance(reward, Mapping) else {})
    return problems


def _n_arms(raw: Mapping[str, Any]) -> int:
    """The number of combinations of the slots' variants (at least 1), read defensively."""
    n = 1
    slots = raw.get("slots")
    for slot in slots.values() if isinstance(slots, Mapping) else []:
        variants = slot.get("variants") if isinstance(slot, Mapping) else None
        n *= max(len(variants), 1) if isinstance(variants, list) else 1
    return n


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


def content_warnings(spec: ExperimentSpec) -> list[str]:
    """Warnings for default variants that cannot serve as the fallback for every recipient.

    The default variant is what a recipient gets when no other variant renders for them; it should
    render for a recipient with no fields at all (give its merge tags a ``default``). One that does
    not is still used, rendered with the missing fields left out, and the decision says so (one that
    renders blank even so is refused, see :func:`check_spec_data`).
    """
    warnings = []
    for name, slot in spec.slots.items():
        default_id = spec.control[name]
        for i, variant in enumerate(slot.variants):
            if variant.id != default_id:
                continue
            empty = try_render(variant.content, {})
            if not empty.ok:
                warnings.append(
                    f"slots.{name}.variants[{i}].content: the default variant is the fallback but needs "
                    f"recipient fields ({empty.problem}); without them it shows "
                    f"{default_fallback(variant.content)!r}; give its merge tags a default, e.g. "
                    "{{ first_name | default: 'there' }}"
                )
    return warnings


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


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    return [Problem(_path(tuple(err["loc"])), err["msg"]) for err in exc.errors()]


def _not_under(problems: list[Problem], reported: list[Problem]) -> list[Problem]:
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


def parse_spec(
    data: str | bytes | Mapping[str, Any], content_type: str = "application/json"
) -> ExperimentSpec:
    """Parse and validate a spec from JSON or YAML text (or an already loaded mapping).

    Raises
    ------
    SpecError
        With every problem found, each with its path.
    """
    raw = _load(data, content_type)
    if not isinstance(raw, Mapping):
        raise SpecError([Problem("", f"a spec is a mapping, got {type(raw).__name__}")])
    reported, beyond = document_problems(raw)
    if beyond:  # too deep or too large to validate; a condition too deep says where (conditions are
        # parsed to a bounded depth)
        deep = [] if reported[0].path == "" else _condition_problems(raw)
        raise SpecError(deep or reported)
    problems: list[Problem] = []
    spec: ExperimentSpec | None = None
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
    else:  # a number pydantic read from text ("inf", "nan", "1e9")
        reported += document_problems(spec.model_dump())[0] + _bound_problems(spec.model_dump(mode="json"))
    problems = reported + _not_under(problems + check_spec_data(raw), reported)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    assert spec is not None
    return spec


def check_spec(spec: ExperimentSpec) -> None:
    """Raise :class:`SpecError` if a spec built directly (not through :func:`parse_spec`) is not valid."""
    problems, beyond = document_problems(spec.model_dump())
    if not beyond:
        problems += _not_under(check_spec_data(spec.model_dump(mode="json")), problems)
    if problems:
        raise SpecError(problems)
