"""Send time as a decision: the hour of the recipient's local day an email goes out. Pure, no I/O.

A spec's ``send_time: {hours: [9, 12, 18], timezone_attr: tz, default_timezone: UTC}`` adds a choice
named :data:`SEND_TIME_SLOT` to the experiment: one variant per hour (``"09:00"``, ...), chosen per
recipient by the spec's design like any slot (a fixed split for an exploratory send, a bandit, a
contextual policy that reads the recipient's engagement by hour from ``design.context``). The choice is
logged in the decision's variants, its own probability as ``send_time_propensity``, and the send time
as ``send_at`` (UTC): the chosen hour on the recipient's local date in the recipient's time zone
(``context[timezone_attr]``, else ``default_timezone``). The local date is the batch's ``send_date``
(a time it puts in the past is kept, with a note in ``content_notes.send_time``), else the next
occurrence of the chosen hour that is not in the past: today in the recipient's zone while the hour is
still ahead, else tomorrow. Only the date moves: the hour and its propensity are the design's choice.

A local hour that a daylight-saving change skips (02:00 on the spring-forward day in New York) is the
moment an hour after the one before it (03:00 daylight time); one that occurs twice (01:00 on the
fall-back day) is its first occurrence.

``send_time: {windows: [{start: "09:00", end: "11:00"}, ...], ...}`` offers windows of the local day
instead of hours (variants ``"09:00-11:00"``): a window is chosen like an hour, and sent at its start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from experiments.errors import InvalidInput

if TYPE_CHECKING:
    from experiments.assignment import Assignment
    from experiments.compiled import CompiledExperiment

#: The name of the send-time choice among an experiment's slots (a spec's own slot may not take it).
SEND_TIME_SLOT = "send_time"
#: The local dates a ``send_date`` may name: every hour of each has a UTC time in years 1 to 9999 in
#: every zone (offsets stay within a day), as a stored send time must.
SEND_DATES = (date(1, 1, 2), date(9999, 12, 30))
#: The reason noted when a recipient's time zone is missing or unknown and the default zone is used.
DEFAULT_ZONE_NOTE = "time zone {value!r} in context.{attr} is not a known IANA zone: {default} used"
#: The note on a send time that the batch's ``send_date`` puts in the past (the date is kept).
PAST_SEND_NOTE = "send_date {day}: {local} in {zone} ({at}) is already past at {now}"


def zone_problem(name: Any) -> str | None:
    """Why ``name`` is not an IANA time zone name (``Europe/Paris``, ``UTC``), or None."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 64:
        return f"not a time zone name: {name!r}"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name!r} (an IANA name such as 'America/New_York' or 'UTC')"
    return None


def clock_minutes(text: Any, last: int) -> int:
    """The minutes since midnight of a local time ``"HH:MM"``, at most ``last``; ValueError otherwise.

    Examples
    --------
    >>> clock_minutes("09:30", 24 * 60)
    570
    """
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) == 2 and all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        minutes = int(parts[0]) * 60 + int(parts[1])
        if int(parts[1]) < 60 and minutes <= last:
            return minutes
    raise ValueError(f"a local time 'HH:MM' from 00:00 to {last // 60:02d}:{last % 60:02d}, got {text!r}")


class SendWindow(BaseModel):
    """A window of the recipient's local day, ``start`` (``"00:00"`` to ``"23:59"``) before ``end`` (up
    to ``"24:00"``); its send goes out at ``start``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    end: str

    @field_validator("start")
    @classmethod
    def _a_start(cls, start: Any) -> str:
        clock_minutes(start, 23 * 60 + 59)
        return str(start)

    @field_validator("end")
    @classmethod
    def _an_end(cls, end: Any) -> str:
        clock_minutes(end, 24 * 60)
        return str(end)

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if self.end <= self.start:  # "HH:MM" sorts as the time
            raise ValueError(f"the window must end after it starts, got {self.start}-{self.end}")
        return self

    @property
    def variant_id(self) -> str:
        """``"09:00-11:00"``."""
        return f"{self.start}-{self.end}"


class SendTime(BaseModel):
    """The spec's ``send_time``: the local hours (or windows) to choose among, and where the recipient's
    zone is.

    ``hours`` are whole hours of the local day (0 to 23, distinct, in the order the variants take; the
    first is the default, what screened-out recipients get); ``windows`` instead (one of the two) are
    windows of the local day that do not overlap, each chosen like an hour and sent at its start;
    ``timezone_attr`` names the context attribute holding the recipient's IANA zone;
    ``default_timezone`` is used when the recipient has none or an unknown one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: list[int] | None = Field(default=None, min_length=1, max_length=24)
    windows: list[SendWindow] | None = Field(default=None, min_length=1, max_length=24)
    timezone_attr: str | None = Field(default=None, min_length=1, max_length=64)
    default_timezone: str = "UTC"

    @field_validator("hours")
    @classmethod
    def _hours_of_a_day(cls, hours: list[int] | None) -> list[int] | None:
        if hours is None:
            return None
        if any(not 0 <= h <= 23 for h in hours):
            raise ValueError(f"each hour is a whole hour of the local day, 0 to 23, got {hours}")
        if len(set(hours)) != len(hours):
            raise ValueError(f"the hours must be distinct, got {hours}")
        return hours

    @field_validator("windows")
    @classmethod
    def _windows_apart(cls, windows: list[SendWindow] | None) -> list[SendWindow] | None:
        spans = sorted((w.start, w.end) for w in windows or [])  # "HH:MM" sorts as the time
        for (start, end), (later, _) in zip(spans, spans[1:], strict=False):
            if later < end:
                raise ValueError(f"the windows must not overlap: {start}-{end} and one from {later}")
        return windows

    @model_validator(mode="after")
    def _hours_or_windows(self) -> SendTime:
        if (self.hours is None) == (self.windows is None):
            raise ValueError("give either hours or windows (the local times to choose among)")
        return self

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        problem = zone_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name

    @property
    def variant_ids(self) -> list[str]:
        """The variant id of each hour (``"09:00"``) or window (``"09:00-11:00"``)."""
        if self.windows is not None:
            return [w.variant_id for w in self.windows]
        return [hour_id(h) for h in self.hours or []]

    @property
    def starts(self) -> list[time]:
        """The local time each choice is sent at: the hour, or the window's start."""
        if self.windows is not None:
            return [time.fromisoformat(w.start) for w in self.windows]
        return [time(h) for h in self.hours or []]


def hour_id(hour: int) -> str:
    """The variant id of a local hour.

    Examples
    --------
    >>> hour_id(9)
    '09:00'
    """
    return f"{hour:02d}:00"


@dataclass(frozen=True)
class RecipientZone:
    """A recipient's time zone, and why the default was used instead of theirs (None when it was not)."""

    zone: ZoneInfo
    note: str | None


def recipient_zones(send_time: SendTime, contexts: Sequence[Mapping[str, Any]]) -> list[RecipientZone]:
    """Each recipient's zone: ``context[timezone_attr]`` when it names a known zone, else the default
    with a note (a missing attribute takes the default without one)."""
    default = ZoneInfo(send_time.default_timezone)
    attr = send_time.timezone_attr
    name_to_zone: dict[str, RecipientZone] = {}
    out = []
    for context in contexts:
        value = None if attr is None else context.get(attr)
        if value is None:
            out.append(RecipientZone(default, None))
            continue
        known = name_to_zone.get(value) if isinstance(value, str) else None
        if known is None:
            problem = zone_problem(value)
            known = (
                RecipientZone(ZoneInfo(value), None)
                if problem is None
                else RecipientZone(
                    default, DEFAULT_ZONE_NOTE.format(value=value, attr=attr, default=default.key)
                )
            )
            if isinstance(value, str):
                name_to_zone[value] = known
        out.append(known)
    return out


def local_send_at(local_date: date, hour: int | time, zone: ZoneInfo) -> datetime:
    """The UTC moment of ``hour``:00 (or a local time) on ``local_date`` in ``zone`` (aware, UTC).

    Examples
    --------
    >>> ny = ZoneInfo("America/New_York")
    >>> local_send_at(date(2026, 3, 7), 9, ny).isoformat()  # EST, UTC-5
    '2026-03-07T14:00:00+00:00'
    >>> local_send_at(date(2026, 3, 8), 9, ny).isoformat()  # EDT from 02:00 that day, UTC-4
    '2026-03-08T13:00:00+00:00'
    >>> local_send_at(date(2026, 3, 8), 2, ny).isoformat()  # skipped: an hour after 01:00 EST
    '2026-03-08T07:00:00+00:00'
    """
    at = time(hour) if isinstance(hour, int) else hour
    return datetime.combine(local_date, at, tzinfo=zone).astimezone(UTC)


def next_send_at(today: date, at: time, zone: ZoneInfo, now: datetime) -> datetime:
    """The next moment of local time ``at`` in ``zone`` that is not before ``now`` (aware): on
    ``today``, the local date at ``now``, while it is still ahead, else on the next local date (UTC).

    Examples
    --------
    >>> tokyo, now = ZoneInfo("Asia/Tokyo"), datetime(2026, 12, 8, 0, 19, tzinfo=UTC)  # 09:19 in Tokyo
    >>> next_send_at(date(2026, 12, 8), time(9), tokyo, now).isoformat()  # passed: tomorrow
    '2026-12-09T00:00:00+00:00'
    >>> next_send_at(date(2026, 12, 8), time(12), tokyo, now).isoformat()  # still ahead: today
    '2026-12-08T03:00:00+00:00'
    """
    moment = local_send_at(today, at, zone)
    return moment if moment >= now else local_send_at(today + timedelta(days=1), at, zone)


def as_utc(now: datetime) -> datetime:
    """``now`` as an aware datetime (a naive one is UTC)."""
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def send_dates(send_date: date | None, zones: Sequence[RecipientZone], now: datetime) -> list[date]:
    """Each recipient's local date: ``send_date`` for all, else today in the recipient's zone at ``now``
    (aware, or naive UTC)."""
    if send_date is not None:
        return [send_date] * len(zones)
    aware = as_utc(now)
    zone_to_date: dict[str, date] = {}
    out = []
    for z in zones:
        today = zone_to_date.get(z.zone.key)
        if today is None:
            today = zone_to_date[z.zone.key] = aware.astimezone(z.zone).date()
        out.append(today)
    return out


def past_send_note(day: date, at: time, zone: ZoneInfo, moment: datetime, now: datetime) -> str | None:
    """The note on ``moment`` (local ``at`` on ``day`` in ``zone``, aware) when it is before ``now``,
    else None."""
    if moment >= now:
        return None
    return PAST_SEND_NOTE.format(
        day=day.isoformat(), local=at.strftime("%H:%M"), zone=zone.key,
        at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"), now=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def check_send_date(send_date: Any, has_send_time: bool) -> date | None:
    """``send_date`` as a date (an ISO 8601 string is read), or None.

    Raises
    ------
    InvalidInput
        At ``send_date``: not a date, outside :data:`SEND_DATES`, or given to an experiment without
        ``send_time``.
    """
    if send_date is None:
        return None
    if isinstance(send_date, str):
        try:
            send_date = date.fromisoformat(send_date)
        except ValueError:
            raise InvalidInput("send_date", f"must be a date (YYYY-MM-DD), got {send_date!r}") from None
    if isinstance(send_date, datetime) or not isinstance(send_date, date):
        raise InvalidInput("send_date", f"must be a date (YYYY-MM-DD), got {send_date!r}")
    if not has_send_time:
        raise InvalidInput("send_date", "the experiment declares no send_time: give send_at instead")
    first, last = SEND_DATES
    if not first <= send_date <= last:
        raise InvalidInput("send_date", (
            f"out of range: {send_date.isoformat()} is not between {first.isoformat()} and "
            f"{last.isoformat()} (a send time in any zone must fall between years 1 and 9999 in UTC)"))
    return send_date


def chosen_send_times(
    send_time: SendTime,
    contexts: Sequence[Mapping[str, Any]],
    hour_positions: Sequence[int],
    send_date: date | None,
    now: datetime,
) -> tuple[list[datetime], list[str | None]]:
    """Per recipient, the UTC send time (aware) of the chosen hour or window's start
    (``hour_positions[i]`` indexes ``send_time.starts``) and the note on it (None when there is none).

    With ``send_date``, the time is on that local date, and noted when it is before ``now``
    (:func:`past_send_note`); without, it is the next one not before ``now`` (:func:`next_send_at`).
    The note also says when the default zone replaced the recipient's (:func:`recipient_zones`).
    """
    zones = recipient_zones(send_time, contexts)
    aware = as_utc(now)
    dates = send_dates(send_date, zones, aware)
    starts = send_time.starts
    times, notes = [], []
    for day, p, z in zip(dates, hour_positions, zones, strict=True):
        if send_date is None:
            times.append(next_send_at(day, starts[p], z.zone, aware))
            notes.append(z.note)
            continue
        moment = local_send_at(day, starts[p], z.zone)
        past = past_send_note(day, starts[p], z.zone, moment, aware)
        times.append(moment)
        notes.append("; ".join(n for n in (z.note, past) if n is not None) or None)
    return times, notes


@dataclass(frozen=True)
class SendTimes:
    """When each recipient's email goes out (naive UTC, as stored; None: at once), the chosen hour's
    own probability (None without a ``send_time`` choice) and the note on each recipient's send time
    (their zone replaced by the default, a ``send_date`` already past)."""

    times: list[datetime | None]
    hour_propensities: list[float | None] | None = None
    notes: list[str | None] | None = None


def decided_send_times(
    compiled: CompiledExperiment,
    contexts: Sequence[Mapping[str, Any]],
    result: Assignment,
    given: list[datetime | None],
    send_date: date | None,
    now: datetime,
) -> SendTimes:
    """The send times of an assignment: the ``given`` ones (naive UTC) without a ``send_time`` choice,
    else the chosen hours on the recipients' local dates (:func:`chosen_send_times`).

    Raises
    ------
    InvalidInput
        At ``send_at`` when times are given to an experiment that chooses them.
    """
    send_time = compiled.send_time
    if send_time is None:
        return SendTimes(given)
    if any(t is not None for t in given):
        raise InvalidInput(
            "send_at", "the experiment chooses the send time (send_time): give send_date, the local date"
        )
    times, notes = chosen_send_times(send_time, contexts, result.positions[:, -1].tolist(), send_date, now)
    hours = result.hour_propensities
    return SendTimes(
        [t.replace(tzinfo=None) for t in times],
        [None] * len(times) if hours is None else hours.tolist(),
        notes,
    )
