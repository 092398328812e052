"""Domain objects returned by the service: frozen dataclasses, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from analysis.stats import RegressionStats, SampleStats
from experiments.preview import RecipientDetail
from experiments.spec import ExperimentSpec

Status = Literal["running", "paused", "archived"]

#: Why a recipient got what they got. ``assigned`` (hash bucket), ``policy`` (a bandit draw),
#: ``apprentice`` (the incumbent choice while a warm-started policy learns) and ``content_fallback`` (the
#: hash bucket's variant, shown with the default variant's content because a merge field was missing)
#: are learned from and counted in the arm statistics; the others are fallbacks to the default variants.
Reason = Literal[
    "assigned", "policy", "apprentice", "content_fallback", "holdout", "ineligible", "no_consent", "paused",
    "policy_error", "frequency_cap", "no_features", "no_score", "low_confidence_score",
]
#: ``no_features``, ``no_score`` and ``low_confidence_score``: a spec with ``context_from: features``
#: found no stored features for the recipient, or its rules read a score the recipient lacks or whose
#: model is below the spec's ``min_score_auc`` (:mod:`experiments.feature_context`).
FALLBACK_REASONS: frozenset[str] = frozenset(
    {"holdout", "ineligible", "no_consent", "paused", "policy_error", "frequency_cap", "no_features",
     "no_score", "low_confidence_score"}
)


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment as stored: its current spec version and status."""

    key: str
    version: int
    status: Status
    spec: ExperimentSpec
    warnings: list[str]
    created_at: datetime
    updated_at: datetime
    apprentice: bool = False


@dataclass(frozen=True)
class VariantChoice:
    """The variant chosen for one slot, with its rendered content."""

    id: str
    content: str


@dataclass(frozen=True)
class Decision:
    """One logged assignment.

    ``propensity`` is the probability of the whole combination of variants (1.0 for fallbacks);
    ``reason`` says how it was made (see :data:`Reason`). ``content_notes`` says, per slot, where the
    content fell back: variants not offered because their template needs a field the recipient lacks,
    or content taken from the slot's default variant.
    """

    decision_id: str
    experiment: str
    recipient_id: str
    variants: dict[str, VariantChoice]
    propensity: float
    policy_version: int | None
    reason: str
    explored: bool
    created_at: datetime
    content_notes: dict[str, str] = field(default_factory=dict)
    send_at: datetime | None = None  # when the email goes out (aware UTC); None: at once
    #: ``context_from: features``: the stored feature version the context was filled from
    feature_version: int | None = None


@dataclass(frozen=True)
class OutcomeEvent:
    """An outcome posted back for a decision.

    ``machine`` marks a bot's open or click (left out of rewards); ``user_agent``, when given, is
    matched against the spec's ``reward.machine_user_agents``.
    """

    event_id: str
    decision_id: str
    type: str
    value: float | None = None
    timestamp: datetime | None = None
    machine: bool = False
    user_agent: str | None = None


@dataclass(frozen=True)
class OutcomeCounts:
    """What ``record_outcomes`` did with a batch: stored, seen before, for an unknown decision, or for a
    decision of an erased recipient (not stored: the recipient asked to be forgotten)."""

    accepted: int
    duplicates: int
    orphans: int
    erased: int = 0


@dataclass(frozen=True)
class ArmSummary:
    """Statistics of one slot's variant over the learnable decisions (or of the holdout).

    ``event_counts`` counts decisions with at least one attributed event of each type; ``reward``
    holds the count, sum, sum of squares and of cubes of the per-decision rewards of the spec, as the
    analysis takes them.
    """

    slot: str
    variant: str
    intended_share: float
    event_counts: dict[str, int]
    reward: SampleStats

    @property
    def decisions(self) -> int:
        return self.reward.n

    @property
    def reward_mean(self) -> float:
        return self.reward.sum / self.reward.n if self.reward.n else 0.0


@dataclass(frozen=True)
class CombinationSummary:
    """Statistics of one combination of variants (one arm of the bandit)."""

    variants: dict[str, str]
    event_counts: dict[str, int]
    reward: SampleStats

    @property
    def decisions(self) -> int:
        return self.reward.n


@dataclass(frozen=True)
class DailyArmSummary:
    """Decisions and attributed-event counts of one slot's variant on one UTC day.

    ``explored`` counts the decisions whose draw was not the policy's greedy choice.
    """

    day: date
    slot: str
    variant: str
    decisions: int
    event_counts: dict[str, int]
    explored: int = 0


@dataclass(frozen=True)
class ExperimentSummary:
    """Summary statistics of an experiment's current version, aggregated in the database.

    ``machine_events`` counts the machine-made outcomes stored (flagged, or a user agent of
    ``reward.machine_user_agents``); ``machine_included`` says whether the statistics count those
    inside the reward window. ``excluded_machine_events`` and ``excluded_late_events`` count the
    outcomes the statistics leave out: every machine-made one unless included, and those outside the
    reward window (before the decision, or more than ``reward.window_hours`` after it). Of the outcomes
    that arrived after their decision was learned, ``revised_outcomes`` were learned by revising the
    decision's reward in the policy, and ``unlearnable_outcomes`` were left out because the policy
    cannot revise (Vowpal Wabbit). ``uncounted_value_events`` counts, per event type, the outcomes
    posted with a value that the reward does not count (not of ``value_event_types``, the types whose
    values the reward adds up).
    """

    key: str
    version: int
    design: str
    slots: dict[str, list[str]]
    control: dict[str, str]
    arms: list[ArmSummary]
    combinations: list[CombinationSummary]
    holdout: ArmSummary | None
    daily: list[DailyArmSummary]
    guardrails: list[str]
    reward_events: list[str]
    fallbacks: dict[str, int] = field(default_factory=dict)
    excluded_machine_events: int = 0
    excluded_late_events: int = 0
    machine_events: int = 0
    machine_included: bool = False
    apprentice_decisions: int = 0
    apprentice_agreement: float | None = None
    explored_decisions: int = 0
    revised_outcomes: int = 0
    unlearnable_outcomes: int = 0
    uncounted_value_events: dict[str, int] = field(default_factory=dict)
    value_event_types: list[str] = field(default_factory=list)

    @property
    def learnable_decisions(self) -> int:
        """Decisions that are learned from (not fallbacks)."""
        return sum(c.decisions for c in self.combinations)


@dataclass(frozen=True)
class SegmentedSummary:
    """An experiment's summary per value of a context attribute stored with its decisions.

    ``segments`` maps the attribute's value, as text (``CA``, ``true``, ``3``), to the summary of the
    learnable decisions with that value (arms and combinations only: no daily series, no fallbacks);
    ``missing`` counts the learnable decisions without the attribute (absent, null, or no context
    stored because the recipient did not consent).
    """

    attribute: str
    segments: dict[str, ExperimentSummary]
    missing: int

    @property
    def decisions(self) -> int:
        """Learnable decisions, with the attribute or without."""
        return self.missing + sum(s.learnable_decisions for s in self.segments.values())


@dataclass(frozen=True)
class CovariateArmSummary:
    """One slot variant's sums for CUPED: a numeric context attribute ``x`` recorded at send time and
    the per-decision reward ``y``.

    ``decisions`` counts the variant's learnable decisions; ``xy`` holds the sums over those whose
    ``x`` is a number (``observed`` of them), as CUPED takes them.
    """

    slot: str
    variant: str
    decisions: int
    xy: RegressionStats

    @property
    def observed(self) -> int:
        return self.xy.n

    @property
    def missing(self) -> int:
        return self.decisions - self.observed


@dataclass(frozen=True)
class CovariateSummary:
    """The CUPED sums of every slot variant for one covariate (a context attribute)."""

    attribute: str
    arms: list[CovariateArmSummary]


@dataclass(frozen=True)
class PolicySnapshotInfo:
    """One stored policy version of an adaptive experiment.

    ``learned_decisions`` is the cumulative number of decisions learned from up to this version;
    ``arm_probabilities`` (length ``n_arms``, sums to 1) is the policy's distribution over the arms
    (combinations) for non-contextual policies, None for contextual ones or an unreadable state.
    """

    version: int
    spec_version: int
    created_at: datetime
    learned_decisions: int
    arm_probabilities: list[float] | None


@dataclass(frozen=True)
class VersionAllocation:
    """The learnable decisions of the current spec version made under one policy version.

    ``slot_to_variant_decisions`` maps each slot to the decisions given to each of its variants (every
    variant listed, zeros included); ``explored`` counts the decisions whose draw was not the policy's
    greedy choice, ``learned`` those learned from so far. ``created_at`` is when the version was stored
    (None when no snapshot of it is left, or for decisions without a policy version).
    """

    policy_version: int | None
    created_at: datetime | None
    decisions: int
    explored: int
    learned: int
    slot_to_variant_decisions: dict[str, dict[str, int]]

    @property
    def explored_share(self) -> float:
        return self.explored / self.decisions if self.decisions else 0.0


@dataclass(frozen=True)
class LearningSummary:
    """What an adaptive experiment's policy has learned from, and where its choices went per version.

    ``learned_decisions`` counts the learnable decisions of the current spec version learned from
    (``learned_version`` set); ``learned_reward`` is the total reward of those decisions (their
    attributed outcomes, by the spec's reward); ``versions`` lists the policy versions that made
    decisions, oldest first.
    """

    key: str
    version: int
    learnable_decisions: int
    learned_decisions: int
    learned_reward: float
    versions: list[VersionAllocation]


@dataclass(frozen=True)
class VariantTraffic:
    """The learnable decisions one slot's variant got, and its intended share (its weight's share)."""

    slot: str
    variant: str
    decisions: int
    intended_share: float


@dataclass(frozen=True)
class ExperimentTraffic:
    """An experiment's current version in the experiments list: its decisions so far, by variant.

    ``decisions`` counts every decision of the version, fallbacks included; ``fallbacks`` those that
    got the default variants, by reason; ``arms`` the learnable decisions of each slot variant, for hash
    designs (A/B, multivariate) only: an adaptive design's split moves as it learns and is not checked.
    """

    key: str
    version: int
    design: str
    slots: dict[str, list[str]]
    decisions: int
    fallbacks: dict[str, int]
    arms: list[VariantTraffic]


@dataclass(frozen=True)
class LoggedDecision:
    """One learnable decision for offline replay: what was chosen, with which probability, what it earned."""

    decision_id: str
    context: dict[str, Any] | None
    arm: int
    variants: dict[str, str]
    propensity: float
    reward: float
    created_at: datetime
    send_time_propensity: float | None = None  # the chosen hour's own probability (send_time only)


@dataclass(frozen=True)
class Preview:
    """What a recipient would get, and why; nothing is logged.

    ``detail`` holds the rules that fired, the variants offered per slot with their rendered content
    and probabilities (:class:`experiments.preview.RecipientDetail`).
    """

    decision: Decision
    explanation: list[str]
    detail: RecipientDetail | None = None
