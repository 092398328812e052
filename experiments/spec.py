"""The experiment spec: a pydantic model, parsed from JSON or YAML, validated with every problem at once.

The structure (types, required fields, unknown keys) is checked by pydantic; the meaning (duplicate
variant ids, defaults and rules naming unknown slots or variants, a policy that does not fit the
design, malformed conditions) by :func:`experiments.spec_checks.check_spec_data`, which reads the raw
document defensively so that both kinds of problem are reported together, each with its path
(``slots.cta.variants[2].id: duplicate id 'shop'``).

Before either, the raw document is read once without recursion
(:func:`experiments.spec_checks.document_problems`): every number in it must be finite, no string or
key may hold a NUL character (PostgreSQL cannot store one) or a lone surrogate, no string be longer than
:data:`experiments.limits.MAX_SPEC_STRING_LENGTH`, and it may nest at most
:data:`experiments.limits.MAX_SPEC_DEPTH` levels (conditions at most
:data:`experiments.limits.MAX_CONDITION_DEPTH`). Reward and variant weights lie within
:data:`experiments.limits.MAX_WEIGHT` of zero and the reward window and learning delay are at most
:data:`experiments.limits.MAX_HOURS`, so that no sum of rewards, share of traffic or time window
computed from them can overflow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analysis.delays import DelayModelKind
from experiments.consent import Consent
from experiments.content import default_fallback, try_render
from experiments.errors import Problem, SpecError
from experiments.frequency import Frequency
from experiments.limits import (
    MAX_ATTRIBUTE_LENGTH,
    MAX_KEY_LENGTH,
    MAX_SPEC_DEPTH,
    MAX_VARIANT_ID_LENGTH,
)
from experiments.send_time import SEND_TIME_SLOT, SendTime
from experiments.spec_checks import (
    bound_problems,
    check_spec_data,
    condition_problems,
    document_problems,
    error_path,
    not_under,
)

FeatureValue = str | int | float | bool
DesignType = Literal["ab", "multivariate", "bandit", "contextual"]

KEY_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_KEY_LENGTH - 1}}}$"
#: A context attribute that results can group or adjust by (``record``, ``?segment=``, ``?covariate=``):
#: 1 to 64 characters, no double quote, backslash or control character (it goes into a JSON path).
ATTRIBUTE_PATTERN = rf'^[^"\\\x00-\x1f]{{1,{MAX_ATTRIBUTE_LENGTH}}}$'


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    """One variant of a slot: ``content`` is rendered per recipient; ``weight`` is its A/B traffic share."""

    id: str = Field(min_length=1, max_length=MAX_VARIANT_ID_LENGTH)
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
    ``wait`` (the default) waits for the delay. ``delay_model`` is how that distribution is estimated
    (:func:`analysis.delays.fit_delay_model`): ``exponential`` (the default) or ``lognormal`` (Chapelle's
    model with either delay, fitted with censoring), or ``kaplan_meier`` (nonparametric, once some
    decision has been followed for the whole window; the exponential model until then).
    """

    every_outcomes: int | None = Field(default=None, ge=1)
    every_seconds: float | None = Field(default=None, gt=0)
    delay_hours: float | None = Field(default=None, ge=0)
    delays: Literal["wait", "model"] = "wait"
    delay_model: DelayModelKind = "exponential"


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
    click counts once); ``value`` names the value added to the reward (revenue), and ``value_types`` the
    event types whose values all add up into it (default: the event type named ``value``); events later
    than ``window_hours`` after the decision are stored but not attributed; ``guardrails`` are event
    types reported, never rewarded. An event is machine-made (Apple Mail Privacy Protection prefetching
    opens, link scanners clicking every link) when flagged so, or when its user agent contains one of
    ``machine_user_agents`` (case-insensitive); machine events are stored, left out of rewards and
    results, and counted.
    """

    events: dict[str, float] = Field(default_factory=lambda: {"click": 1.0})
    value: str | None = None
    value_types: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1
    )
    window_hours: float = Field(default=72.0, gt=0)
    guardrails: list[str] = Field(default_factory=list)
    machine_user_agents: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _value_types_need_a_value(self) -> Reward:
        if self.value_types is not None and self.value is None:
            raise ValueError("value_types: needs reward.value, the name of the value they add up to")
        return self

    @property
    def value_event_types(self) -> list[str]:
        """The event types whose values add up into the reward (none without ``value``)."""
        if self.value is None:
            return []
        return list(dict.fromkeys(self.value_types)) if self.value_types is not None else [self.value]

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
    share of recipients who always get the defaults; ``consent`` says how a recipient's consent is read
    and what a recipient without it gets (:mod:`experiments.consent`; a missing consent is no consent).
    ``record`` names further context attributes stored with each decision for the analysis (results by
    segment, a CUPED covariate such as ``clicks_30d``); no policy or rule sees them. ``merge_defaults``
    gives a template field's value for recipients who lack it (``{first_name: "there"}``, see
    :mod:`experiments.merge_fields`). ``send_time`` makes the hour of the recipient's local day a choice
    of the design (:mod:`experiments.send_time`); ``frequency`` caps the sends per recipient across the
    experiments that share the ``channel`` (or ``program``) (:mod:`experiments.frequency`).
    ``context_from: features`` fills each recipient's context from the latest stored feature version
    (fields sent with the recipient win); a score read by the rules,
    eligibility or policy is used only when its model's cross-validated AUC reaches ``min_score_auc``
    (:mod:`experiments.feature_context`).
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
    consent: Consent = Field(default_factory=Consent)
    record: list[Annotated[str, Field(pattern=ATTRIBUTE_PATTERN)]] = Field(default_factory=list)
    merge_defaults: dict[Annotated[str, Field(pattern=ATTRIBUTE_PATTERN)], str | int | float | bool] = Field(
        default_factory=dict
    )
    context_from: Literal["request", "features"] = "request"
    min_score_auc: float | None = Field(default=None, ge=0.5, le=1.0)
    send_time: SendTime | None = None
    frequency: Frequency | None = None
    channel: str | None = Field(default=None, pattern=KEY_PATTERN)
    program: str | None = Field(default=None, pattern=KEY_PATTERN)

    @model_validator(mode="after")
    def _send_time_is_not_a_slot(self) -> ExperimentSpec:
        if self.send_time is not None and SEND_TIME_SLOT in self.slots:
            raise ValueError(
                f"slots.{SEND_TIME_SLOT}: the name is taken by send_time (the send-time choice); rename it"
            )
        if self.channel is not None and self.program is not None:
            raise ValueError("channel, program: give one (the experiments a frequency cap counts across)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _read_consent_attribute(cls, data: Any) -> Any:
        """Read the ``consent_attribute: NAME`` of specs stored before ``consent`` as ``consent:
        {attribute: NAME}`` (a missing consent is then no consent, as for every spec)."""
        if isinstance(data, Mapping) and "consent_attribute" in data and "consent" not in data:
            data = dict(data)
            data["consent"] = {"attribute": data.pop("consent_attribute")}
        return data

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
        for name in ("record", "merge_defaults"):  # added later: absent when empty, so specs saved
            if not data[name]:  # before keep their text
                del data[name]
        for name in ("send_time", "frequency", "channel", "program"):  # added later: absent when unset
            if data[name] is None:
                del data[name]
        if data.get("send_time") is not None:  # hours or windows: the other is absent
            data["send_time"] = {k: v for k, v in data["send_time"].items() if k not in ("hours", "windows")
                                 or v is not None}
        if data["reward"]["value_types"] is None:
            del data["reward"]["value_types"]
        if data["context_from"] == "request":
            del data["context_from"]
        if data["min_score_auc"] is None:
            del data["min_score_auc"]
        return json.dumps(data, separators=(",", ":"))


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


def content_warnings(spec: ExperimentSpec) -> list[str]:
    """Warnings for default variants that cannot serve as the fallback for every recipient.

    The default variant is what a recipient gets when no other variant renders for them; it should
    render for a recipient with no fields at all (give its merge tags a ``default``). One that does
    not is still used, rendered with the missing fields left out, and the decision says so (one that
    renders blank even so is refused, see :func:`experiments.spec_checks.check_spec_data`).
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


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    return [Problem(error_path(tuple(err["loc"])), err["msg"]) for err in exc.errors()]


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
        deep = [] if reported[0].path == "" else condition_problems(raw)
        raise SpecError(deep or reported)
    problems: list[Problem] = []
    spec: ExperimentSpec | None = None
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
    else:  # a number pydantic read from text ("inf", "nan", "1e9")
        reported += document_problems(spec.model_dump())[0] + bound_problems(spec.model_dump(mode="json"))
    problems = reported + not_under(problems + check_spec_data(raw), reported)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    assert spec is not None
    return spec


def check_spec(spec: ExperimentSpec) -> None:
    """Raise :class:`SpecError` if a spec built directly (not through :func:`parse_spec`) is not valid."""
    problems, beyond = document_problems(spec.model_dump())
    if not beyond:
        problems += not_under(check_spec_data(spec.model_dump(mode="json")), problems)
    if problems:
        raise SpecError(problems)
