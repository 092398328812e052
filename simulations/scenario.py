"""A synthetic sending scenario: who the recipients are, how they respond, how sends and outcomes flow.

A scenario is one YAML document, validated with clear messages::

    name: subject line test
    variants: [plain, urgent, emoji]
    segments:
      - name: loyal
        share: 0.4
        features:
          device: {distribution: categorical, values: {ios: 0.7, android: 0.3}}
          recency_days: {distribution: exponential, scale: 5}
        rates: {plain: 0.06, urgent: 0.05, emoji: 0.09}
      - name: new
        share: 0.6
        features:
          device: {distribution: categorical, values: {ios: 0.4, android: 0.6}}
          recency_days: {distribution: uniform, low: 0, high: 60}
        rates: {plain: 0.04, urgent: 0.07, emoji: 0.03}
    effects:                       # optional: log-odds shifts that depend on features
      - {variant: emoji, feature: device, equals: ios, log_odds: 0.4}
      - {variant: urgent, feature: recency_days, per_unit: -0.01}
    waves: {count: 10, recipients: 2000, delay: 1}

A factorial scenario lists its ``slots`` instead of ``variants``; the variants are then the combinations,
named like SendLab's logs name them (``subject=plain|cta=shop``, slots in the given order, the last slot
varying fastest), and ``rates`` give one rate per combination. An effect's ``variant`` may be a whole
combination or one slot's variant (``subject=urgent``: every combination with it)::

    slots: {subject: [plain, urgent], cta: [shop, see]}
    segments:
      - name: everyone
        share: 1.0
        rates: {"subject=plain|cta=shop": 0.05, "subject=plain|cta=see": 0.04,
                "subject=urgent|cta=shop": 0.08, "subject=urgent|cta=see": 0.06}
    effects:
      - {variant: subject=urgent, feature: recency_days, per_unit: -0.01}

The probability that a recipient in segment ``s`` with features ``x`` responds to variant ``a`` is

.. math:: p(x, a) = \\sigma\\big(\\operatorname{logit}(r_{s,a}) + \\sum_e \\text{effect}_e(x, a)\\big).

Each wave sends to ``recipients`` new recipients; their outcomes reach the policy ``delay`` waves
later (``0``: before the next wave). With ``timing`` outcomes arrive instead after delays in hours drawn
per recipient, and ``drift``, named ``policies`` and the drift ``monitor`` may be given
(:mod:`simulations.scenario_timing`).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulations.data import SimulationInputError
from simulations.file_errors import reading
from simulations.scenario_timing import Monitor, PolicySpec, RateChange, Timing

_STRICT = ConfigDict(frozen=True, extra="forbid")


class Normal(BaseModel):
    """A normal feature: ``{distribution: normal, mean, sd}``."""

    model_config = _STRICT
    distribution: Literal["normal"]
    mean: float = 0.0
    sd: float = Field(1.0, gt=0)


class Uniform(BaseModel):
    """A uniform feature on ``[low, high)``."""

    model_config = _STRICT
    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class Exponential(BaseModel):
    """An exponential feature with mean ``scale``."""

    model_config = _STRICT
    distribution: Literal["exponential"]
    scale: float = Field(gt=0)


class Poisson(BaseModel):
    """A count feature with mean ``lam``."""

    model_config = _STRICT
    distribution: Literal["poisson"]
    lam: float = Field(gt=0)


class Categorical(BaseModel):
    """A categorical feature: ``values`` maps each value to its probability (summing to 1)."""

    model_config = _STRICT
    distribution: Literal["categorical"]
    values: dict[str, float]

    @model_validator(mode="after")
    def _distribution(self) -> Categorical:
        if not self.values:
            raise ValueError("values: at least one value is needed")
        if any(p < 0 for p in self.values.values()):
            raise ValueError(f"values: probabilities must be non-negative, got {self.values}")
        total = sum(self.values.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"values: probabilities must sum to 1, got {total:.6g}")
        return self


Feature = Annotated[
    Normal | Uniform | Exponential | Poisson | Categorical, Field(discriminator="distribution")
]


class Segment(BaseModel):
    """A group of recipients: its share, its feature distributions and its response rates."""

    model_config = _STRICT
    name: str
    share: float = Field(gt=0, le=1)
    features: dict[str, Feature] = Field(default_factory=dict)
    rates: dict[str, float]

    @model_validator(mode="after")
    def _rates(self) -> Segment:
        bad = {k: v for k, v in self.rates.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"rates: must be in [0, 1], got {bad}")
        if "segment" in self.features:
            raise ValueError("features: 'segment' is reserved (it holds the segment's name)")
        return self


class Effect(BaseModel):
    """A log-odds shift for one variant: ``per_unit`` of a numeric feature, or ``log_odds`` when a
    categorical feature ``equals`` a value."""

    model_config = _STRICT
    variant: str
    feature: str
    per_unit: float | None = None
    equals: str | None = None
    log_odds: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Effect:
        numeric = self.per_unit is not None
        categorical = self.equals is not None or self.log_odds is not None
        if numeric == categorical:
            raise ValueError("give either per_unit (numeric feature) or equals with log_odds (categorical)")
        if categorical and (self.equals is None or self.log_odds is None):
            raise ValueError("a categorical effect needs both equals and log_odds")
        return self


class Waves(BaseModel):
    """How sends are spread: ``count`` waves of ``recipients`` each, or explicit ``sizes`` (a ramp-up
    such as ``[1000, 5000, 20000]``); outcomes arrive ``delay`` waves on."""

    model_config = _STRICT
    count: int | None = Field(None, ge=1, le=10_000)
    recipients: int | None = Field(None, ge=1, le=10_000_000)
    sizes: list[Annotated[int, Field(ge=1, le=10_000_000)]] | None = Field(
        None, min_length=1, max_length=10_000
    )
    delay: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_form(self) -> Waves:
        uniform = self.count is not None or self.recipients is not None
        if uniform == (self.sizes is not None):
            raise ValueError("give either count and recipients, or sizes")
        if uniform and (self.count is None or self.recipients is None):
            raise ValueError("count and recipients go together")
        return self

    @property
    def wave_sizes(self) -> list[int]:
        """Recipients per wave."""
        return list(self.sizes) if self.sizes is not None else [self.recipients or 0] * (self.count or 0)


def combination_names(slots: dict[str, list[str]]) -> list[str]:
    """``slot=variant|slot=variant`` for every combination, in ``itertools.product`` order."""
    names = list(slots)
    return ["|".join(f"{s}={v}" for s, v in zip(names, combo, strict=True))
            for combo in itertools.product(*(slots[s] for s in names))]


class Scenario(BaseModel):
    """A whole synthetic scenario (see the module docstring for the format)."""

    model_config = _STRICT
    name: str = "scenario"
    slots: dict[str, list[str]] | None = None
    variants: list[str] = Field(min_length=2)
    segments: list[Segment] = Field(min_length=1)
    effects: list[Effect] = Field(default_factory=list)
    waves: Waves
    alpha: float = Field(0.05, gt=0, lt=1)
    timing: Timing | None = None
    drift: list[RateChange] = Field(default_factory=list)
    policies: dict[str, PolicySpec] = Field(default_factory=dict)
    monitor: Monitor = Field(default_factory=Monitor)

    @model_validator(mode="before")
    @classmethod
    def _variants_of_slots(cls, raw: Any) -> Any:
        slots = raw.get("slots") if isinstance(raw, dict) else None
        if isinstance(slots, dict) and slots and "variants" not in raw and all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in slots.values()
        ):
            return {**raw, "variants": combination_names(slots)}
        return raw

    @property
    def slot_sizes(self) -> list[int]:
        """Variants per slot; a scenario without ``slots`` is one slot holding all its variants."""
        return [len(v) for v in self.slots.values()] if self.slots else [len(self.variants)]

    def variant_columns(self, variant: str) -> list[int]:
        """The columns (combinations) a name covers: itself, or with slots ``slot=variant`` every
        combination holding that slot variant."""
        if variant in self.variants:
            return [self.variants.index(variant)]
        if self.slots and "=" in variant and "|" not in variant:
            return [i for i, name in enumerate(self.variants) if variant in name.split("|")]
        return []

    def rates_at(self, send: int) -> np.ndarray:
        """The segments' rates at a send (numbered from 1) after ``drift``, shape (segments, variants)."""
        rates = np.array([[s.rates[v] for v in self.variants] for s in self.segments], dtype=np.float64)
        names = [s.name for s in self.segments]
        for change in self.drift:
            share = change.share(send)
            if share == 0:
                continue
            rows = [names.index(change.segment)] if change.segment is not None else list(range(len(names)))
            for variant, target in change.rates.items():
                for column in self.variant_columns(variant):
                    rates[rows, column] += share * (target - rates[rows, column])
        return rates

    def _check_time_keys(self) -> None:
        names = [s.name for s in self.segments]
        for i, change in enumerate(self.drift):
            if change.segment is not None and change.segment not in names:
                raise ValueError(f"drift[{i}].segment: unknown segment {change.segment!r}")
            unknown = [v for v in change.rates if not self.variant_columns(v)]
            if unknown:
                raise ValueError(f"drift[{i}].rates: unknown variants {unknown}")
        if self.timing is not None and self.waves.delay:
            raise ValueError("waves.delay: with timing, outcomes arrive after the timing's delays; "
                             "leave it out")
        for event, rates in ({} if self.timing is None else self.timing.event_rates).items():
            unknown = [v for v in rates if v not in self.variants]
            missing = [v for v in self.variants if v not in rates]
            if unknown or missing:
                raise ValueError(f"timing.event_rates.{event}: give a rate for each variant "
                                 f"(unknown {unknown}, missing {missing})")
        for name, spec in self.policies.items():
            if spec.delays != "wait" and self.timing is None:
                raise ValueError(f"policies.{name}.delays: {spec.delays!r} needs the scenario's timing")

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        self._check_time_keys()
        if self.slots is not None:
            for slot, ids in self.slots.items():
                if not ids or len(set(ids)) != len(ids):
                    raise ValueError(f"slots.{slot}: expected a non-empty list of distinct ids, got {ids}")
                bad = [v for v in ids if "=" in v or "|" in v]
                if bad or "=" in slot or "|" in slot:
                    raise ValueError(f"slots.{slot}: slot and variant ids may not contain '=' or '|'")
            if self.variants != combination_names(self.slots):
                raise ValueError("variants: with slots, leave variants out (they are the combinations "
                                 f"{combination_names(self.slots)})")
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants: duplicate ids in {self.variants}")
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ValueError(f"segments: duplicate names in {names}")
        total = sum(s.share for s in self.segments)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"segments: shares must sum to 1, got {total:.6g}")
        for i, segment in enumerate(self.segments):
            missing = [v for v in self.variants if v not in segment.rates]
            extra = [v for v in segment.rates if v not in self.variants]
            if missing or extra:
                raise ValueError(
                    f"segments[{i}] ({segment.name}).rates: "
                    + (f"missing variants {missing}" if missing else f"unknown variants {extra}")
                )
        feature_kinds: dict[str, set[str]] = {}
        for segment in self.segments:
            for name, feature in segment.features.items():
                feature_kinds.setdefault(name, set()).add(
                    "categorical" if isinstance(feature, Categorical) else "numeric"
                )
        for name, kinds in feature_kinds.items():
            if len(kinds) > 1:
                raise ValueError(f"features: {name!r} is numeric in one segment and categorical in another")
        for i, effect in enumerate(self.effects):
            if not self.variant_columns(effect.variant):
                raise ValueError(f"effects[{i}].variant: unknown variant {effect.variant!r}")
            kinds = feature_kinds.get(effect.feature)
            if kinds is None:
                raise ValueError(f"effects[{i}].feature: no segment has a feature {effect.feature!r}")
            expected = "numeric" if effect.per_unit is not None else "categorical"
            if expected not in kinds:
                raise ValueError(f"effects[{i}]: feature {effect.feature!r} is not {expected}")
        return self


def scenario_from_mapping(raw: object, where: str = "scenario") -> Scenario:
    """Validate a scenario document; errors become one :class:`SimulationInputError` naming each field."""
    if not isinstance(raw, dict):
        raise SimulationInputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    try:
        return Scenario(**raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{location}: {message}" if location else message)
        raise SimulationInputError(f"{where}: " + "; ".join(problems)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario from a YAML (or JSON) file."""
    path = Path(path)
    if not path.exists():
        raise SimulationInputError(f"scenario: file {path} does not exist")
    with reading(path):
        text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SimulationInputError(f"{path}: not valid YAML: {exc}") from None
    return scenario_from_mapping(raw, str(path))
