"""Results models: the v1 contract's fields are typed; the full analyses are passed through."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from analysis.drift import DriftPoint, DriftReport
from analysis.segments import SegmentRow
from api.models.adaptive import AdaptivePublic, PolicyValueBlockPublic
from api.models.common import model_of


class ArmPublic(BaseModel):
    """One variant of one slot."""

    slot: str
    variant: str
    decisions: int
    events: dict[str, int]
    reward_mean: float
    intended_share: float


class ComparisonPublic(BaseModel):
    """A variant against its slot's control on one metric. ``lift`` and ``ci`` are relative."""

    slot: str
    variant: str
    control: str
    metric: str
    lift: float | None
    ci: list[float | None]
    p_value: float | None
    p_value_adjusted: float | None
    significant: bool
    prob_beat_control: float | None
    variance_reduction: float | None = None
    # bandit and contextual designs: the estimates "if every eligible recipient got it"
    absolute_lift: float | None = None
    absolute_ci: list[float | None] | None = None
    control_value: float | None = None
    variant_value: float | None = None
    effective_n: float | None = None
    always_valid: dict[str, Any] | None = None
    as_allocated_lift: float | None = None
    method: str | None = None


class SrmPublic(BaseModel):
    """The sample-ratio check: the smallest p-value over the slots, and each slot's.

    ``applicable`` is false for bandit and contextual designs, whose allocation moves as they learn:
    there is no fixed split to test, so nothing is flagged.
    """

    p_value: float | None
    flagged: bool
    applicable: bool = True
    by_slot: dict[str, dict[str, Any]]


class VerdictPublic(BaseModel):
    """What to do with a slot, in words."""

    verdict: str
    winner: str | None
    reason: str


class ExcludedPublic(BaseModel):
    """Outcomes the results leave out: machine-made (unless included) and ``late``: outside the reward
    window (timed before their decision, or after the window)."""

    machine: int
    late: int


class MachineEventsPublic(BaseModel):
    """Machine-made outcomes stored (flagged, or a user agent the spec lists), and whether the results
    count them (``?include_machine=true``; never those outside the reward window)."""

    count: int
    included: bool


class ApprenticePublic(BaseModel):
    """A warm-started policy's apprenticeship: decisions made beside it and its expected agreement with
    the incumbent (the mean probability it gave the incumbent's choice; null before any)."""

    decisions: int
    agreement: float | None


SegmentRowPublic = model_of(
    "SegmentRowPublic", SegmentRow,
    "A variant against control on one metric within one segment; ``p_value_adjusted`` is corrected\n"
    "across every segment and comparison of the slot.",
    # NaN and infinities are null in JSON (analysis.json_ready)
    lift=(float | None, ...), ci=(list[float | None], ...), p_value=(float | None, ...),
    p_value_adjusted=(float | None, ...),
)


class SlotSegmentsPublic(BaseModel):
    """One slot by segment: the cross-segment table and the multiplicity warning."""

    slot: str
    correction: str
    warning: str
    rows: list[SegmentRowPublic]  # type: ignore[valid-type]
    analyses: dict[str, dict[str, Any]] = {}


class SegmentsPublic(BaseModel):
    """``?segment=ATTR``: the results per value of a context attribute stored with the decisions.

    ``values`` counts the decisions per segment; ``missing`` those without the attribute (not in any
    segment); ``skipped`` says which slot / segment could not be analysed and why.
    """

    attribute: str
    decisions: int
    missing: int
    values: dict[str, int]
    by_slot: list[SlotSegmentsPublic]
    skipped: dict[str, str]


class CovariateArmPublic(BaseModel):
    """How many of a variant's decisions have a number for the covariate."""

    slot: str
    variant: str
    decisions: int
    observed: int
    missing: int


class CovariatePublic(BaseModel):
    """``?covariate=ATTR``: the reward comparisons are CUPED-adjusted by this numeric context attribute.

    ``theta`` is the adjustment's coefficient per analysed slot; decisions ``missing`` a number are left
    unadjusted; each reward comparison's ``variance_reduction`` is what the adjustment achieved.
    """

    attribute: str
    decisions: int
    observed: int
    missing: int
    arms: list[CovariateArmPublic]
    theta: dict[str, float | None]
    note: str


DriftPointPublic = model_of("DriftPointPublic", DriftPoint,
                            "One judged day and policy version of the drift monitor.")
DriftDetectorPublic = model_of(
    "DriftDetectorPublic", DriftReport,
    "One calibrated two-sided CUSUM of the drift monitor and its judged days.",
    points=(list[DriftPointPublic], ...),  # type: ignore[valid-type]
)


class DriftArmPublic(DriftDetectorPublic):  # type: ignore[misc,valid-type]
    """A fixed split's arm watched on its own: its daily reward against its earlier days."""

    arm: int
    variants: dict[str, str]


class DriftPublic(DriftDetectorPublic):  # type: ignore[misc,valid-type]
    """The drift monitor: predicted against earned reward per day, a calibrated two-sided CUSUM; for a
    fixed split also one per arm (``arms``), ``alert`` being any of them."""

    arms: list[DriftArmPublic] = []
    note: str


class ResultsPublic(BaseModel):
    """``GET /v1/experiments/{key}/results``."""

    model_config = ConfigDict(extra="allow")

    key: str
    version: int
    design: str
    arms: list[ArmPublic]
    comparisons: list[ComparisonPublic]
    srm: SrmPublic | None
    decisions: dict[str, VerdictPublic]
    holdout: ArmPublic | None
    skipped: dict[str, str]
    excluded: ExcludedPublic | None = None
    machine_events: MachineEventsPublic | None = None
    apprentice: ApprenticePublic | None = None
    # per event type, outcomes posted with a value the reward does not count (reward.value_types)
    values_not_counted: dict[str, int] = {}
    warnings: list[str] = []
    analyses: list[dict[str, Any]] = []
    covariate: CovariatePublic | None = None
    segments: SegmentsPublic | None = None
    # bandit and contextual designs (experiments.adaptive_block)
    policy_value: PolicyValueBlockPublic | None = None
    adaptive: AdaptivePublic | None = None
    as_allocated_comparisons: list[dict[str, Any]] | None = None
    arms_note: str | None = None
    drift: DriftPublic | None = None  # experiments.drift_block
