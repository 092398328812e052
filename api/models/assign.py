"""Assignment models: one recipient or a batch in, one decision per recipient out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from experiments.limits import MAX_BATCH, MAX_ID_LENGTH, MAX_PREVIEW_RECIPIENTS

SEND_ID_DESCRIPTION = (
    "The send (campaign) this decision belongs to. A repeat of (experiment, send_id, recipient_id) "
    "returns the original decision and logs nothing, so a retried request is safe. Without it every "
    "call logs new decisions."
)


class Recipient(BaseModel):
    """A recipient to assign and the context the policy and rules see."""

    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="Stable id of the recipient."
    )
    context: dict[str, Any] = Field(default_factory=dict, description="Attributes for rules and policy.")


SEND_AT_DESCRIPTION = (
    "When the email goes out (UTC, ISO 8601; a time without offset is UTC). Stored with the decision: "
    "the reward window and the learning delay run from it. Absent: from the decision."
)


SEND_DATE_DESCRIPTION = (
    "For an experiment with send_time: the recipients' local date the chosen hour falls on "
    "(YYYY-MM-DD; default: the next date on which the chosen hour is not past, today or tomorrow in "
    "each recipient's time zone; a given date whose hour is past is kept and noted in content_notes)."
)


class SendRecipient(Recipient):
    """A recipient of a batch, with its own send time when it differs from the batch's."""

    send_at: datetime | None = Field(default=None, description=SEND_AT_DESCRIPTION)


class AssignRequest(Recipient):
    """``POST /v1/experiments/{key}/assign``."""

    send_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_LENGTH, description=SEND_ID_DESCRIPTION
    )
    send_at: datetime | None = Field(default=None, description=SEND_AT_DESCRIPTION)
    send_date: date | None = Field(default=None, description=SEND_DATE_DESCRIPTION)


class BatchAssignRequest(BaseModel):
    """``POST /v1/experiments/{key}/assign/batch``: a whole send, at most 100,000 recipients."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[SendRecipient] = Field(min_length=1, max_length=MAX_BATCH)
    send_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_LENGTH, description=SEND_ID_DESCRIPTION
    )
    send_at: datetime | None = Field(
        default=None, description=SEND_AT_DESCRIPTION + " A recipient's own send_at takes precedence."
    )
    send_date: date | None = Field(default=None, description=SEND_DATE_DESCRIPTION)


class VariantPublic(BaseModel):
    """The variant chosen for one slot and the content to put in the email."""

    id: str
    content: Any = None


class DecisionPublic(BaseModel):
    """One logged decision. ``propensity`` is the probability of the whole chosen combination."""

    decision_id: str
    experiment: str
    recipient_id: str
    variants: dict[str, VariantPublic]
    propensity: float
    policy_version: int | str | None
    reason: str
    explored: bool | None = None
    created_at: datetime | None = None
    content_notes: dict[str, str] = Field(
        default_factory=dict, description="Per slot: variants skipped because their content could not "
        "render for this recipient, and any content fallback."
    )
    send_at: datetime | None = Field(
        default=None, description="When the email goes out (UTC): the given send_at, or the hour chosen "
        "by the experiment's send_time in the recipient's zone; null: at once (or not at all: frequency_cap)."
    )
    feature_version: int | None = Field(
        default=None, description="context_from: features: the stored feature version the context was "
        "filled from (null otherwise, or when none is stored)."
    )


class BatchDecisions(BaseModel):
    """One decision per recipient, in the request's order."""

    decisions: list[DecisionPublic]


class PreviewRequest(BaseModel):
    """``POST /v1/experiments/{key}/preview``: recipients to preview; nothing is logged."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[Recipient] = Field(min_length=1, max_length=MAX_PREVIEW_RECIPIENTS)


class OfferPublic(BaseModel):
    """A variant the design may choose for a slot: its rendered content and its probability."""

    id: str
    content: Any = None
    probability: float


class SlotPreviewPublic(BaseModel):
    """One slot of a preview: the variants offered, and each other variant with why it is not."""

    offered: list[OfferPublic]
    not_offered: dict[str, str] = Field(default_factory=dict)


class CombinationPublic(BaseModel):
    """A combination (``slot=variant,slot=variant``) the design would draw with this probability."""

    variants: str
    probability: float


class PreviewPublic(BaseModel):
    """What one recipient would get, and why: the draw a decision would make now, and the detail."""

    decision: DecisionPublic
    explanation: list[str]
    content_notes: dict[str, str] = Field(
        default_factory=dict, description="Per slot: where the drawn variant's content fell back."
    )
    screening: str | None = Field(
        default=None, description="'assigned' or 'policy' (the design chooses), else the fallback reason."
    )
    rules_fired: list[str] = Field(default_factory=list, description="The targeting rules that fired.")
    rules_not_evaluated: str | None = Field(
        default=None, description="Why the rules were not applied (a screened-out recipient), else null."
    )
    slots: dict[str, SlotPreviewPublic] = Field(
        default_factory=dict,
        description="Per slot: the eligible variants with rendered content and probability, and why the "
        "others are not eligible.",
    )
    combinations: list[CombinationPublic] = Field(
        default_factory=list, description="The probabilities the design or policy would draw with."
    )
    fallback_only: bool | None = Field(
        default=None, description="Whether the recipient can only ever get the default variants."
    )


class PreviewsPublic(BaseModel):
    """One preview per recipient, in order."""

    previews: list[PreviewPublic]
