"""Frequency caps: at most ``max_sends`` emails to a recipient in any ``per_days`` days, counted across
the experiments that share a ``channel`` (or a ``program``). Pure, no I/O.

SendLab logs every send, so it can count them itself. Each recipient of a scope (``channel:news``,
``program:onboarding``, else the experiment alone: ``experiment:KEY``) has one row in the
``frequency_counts`` table holding the times of their recent sends (:mod:`experiments.store.frequency`);
a batch reads and updates its recipients' rows under a row lock, so that concurrent batches on any
worker never send anyone over the cap. A capped recipient gets the reason ``frequency_cap``, no
variants and no send time.

A send at ``t`` is allowed when fewer than ``max_sends`` recorded sends lie within ``per_days`` of it on
either side: every window of ``per_days`` that holds ``t`` lies within that span, so no window ends up
over the cap even when sends are scheduled out of order (``send_at`` in the future).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

#: The largest ``max_sends`` a spec may declare: a recipient's row keeps their latest this many sends.
MAX_CAPPED_SENDS = 100
#: The longest ``per_days``: sends older than this are dropped from a recipient's row.
MAX_CAP_DAYS = 365
#: The reason of a recipient who is not sent to because of the cap.
FREQUENCY_CAP = "frequency_cap"


class Frequency(BaseModel):
    """The spec's ``frequency``: at most ``max_sends`` sends per recipient in any ``per_days`` days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sends: int = Field(ge=1, le=MAX_CAPPED_SENDS)
    per_days: float = Field(gt=0, le=MAX_CAP_DAYS)


def cap_scope(key: str, channel: str | None, program: str | None) -> str:
    """The set of experiments whose sends count together: their channel, else program, else the one.

    Examples
    --------
    >>> cap_scope("spring", "newsletter", None)
    'channel:newsletter'
    >>> cap_scope("spring", None, None)
    'experiment:spring'
    """
    if channel is not None:
        return f"channel:{channel}"
    if program is not None:
        return f"program:{program}"
    return f"experiment:{key}"


@dataclass(frozen=True)
class CapCheck:
    """The outcome of one recipient's check: whether the send is allowed, and their sends after it."""

    allowed: bool
    sends: list[datetime]


def check_cap(sends: Sequence[datetime], at: datetime, cap: Frequency) -> CapCheck:
    """Whether a send at ``at`` keeps the recipient within ``cap`` given their recorded ``sends``
    (naive UTC), and the sends to record: with ``at`` when allowed, the latest
    :data:`MAX_CAPPED_SENDS` within :data:`MAX_CAP_DAYS` of ``at`` either way.

    Examples
    --------
    >>> day = datetime(2026, 3, 2)
    >>> cap = Frequency(max_sends=2, per_days=7)
    >>> check_cap([day - timedelta(days=8), day - timedelta(days=1)], day, cap).allowed
    True
    >>> check_cap([day - timedelta(days=3), day - timedelta(days=1)], day, cap).allowed
    False
    """
    span = timedelta(days=cap.per_days)
    near = sum(1 for s in sends if abs(s - at) < span)
    allowed = near < cap.max_sends
    keep = timedelta(days=MAX_CAP_DAYS)
    kept = sorted(s for s in sends if abs(s - at) < keep)
    if allowed:
        kept = sorted([*kept, at])
    return CapCheck(allowed, kept[-MAX_CAPPED_SENDS:])
