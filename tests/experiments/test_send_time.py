"""``send_time``: the hour of the recipient's local day as a decision, its ``send_at`` in UTC (time zones
and daylight-saving changes included) and the hour's own propensity in the log."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import select

from experiments.errors import InvalidInput, SpecError
from experiments.service import ExperimentService
from experiments.store import decisions_table
from tests.experiments.conftest import Clock, make_spec

TIMED = {"hours": [9, 12, 18], "timezone_attr": "tz", "default_timezone": "UTC"}
ONE_SUBJECT = {"subject": {"variants": [{"id": "plain", "content": "Spring sale"}]}}
TWO_SUBJECTS = {"subject": {"variants": [{"id": "a", "content": "A"}, {"id": "b", "content": "B"}]}}


def nine_am(**overrides: object) -> dict[str, object]:
    return {**TIMED, "hours": [9], **overrides}


def stored(service: ExperimentService, key: str) -> dict[str, dict[str, object]]:
    d = decisions_table
    with service.engine.connect() as conn:
        rows = conn.execute(
            select(d.c.recipient_id, d.c.variants, d.c.propensity, d.c.send_at, d.c.send_time_propensity)
            .where(d.c.experiment_key == key)
        )
        return {r.recipient_id: r._asdict() for r in rows}


@pytest.mark.parametrize(
    ("local_date", "utc_hour"),
    [
        (date(2026, 3, 7), 14),  # EST, UTC-5
        (date(2026, 3, 8), 13),  # the spring-forward day: 09:00 is EDT, UTC-4
        (date(2026, 10, 31), 13),  # EDT
        (date(2026, 11, 1), 14),  # the fall-back day: 09:00 is EST again
    ],
)
def test_send_at_is_the_local_hour_across_daylight_saving_changes(
    service: ExperimentService, local_date: date, utc_hour: int
) -> None:
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=nine_am()))
    ny, paris = {"tz": "America/New_York"}, {"tz": "Europe/Paris"}
    a, b = service.assign_batch("t", [("ny", ny), ("paris", paris)], send_date=local_date)
    assert a.send_at == datetime(local_date.year, local_date.month, local_date.day, utc_hour, tzinfo=UTC)
    # Paris changes on 29 March and 25 October 2026: UTC+1 on all four dates
    assert b.send_at == datetime(local_date.year, local_date.month, local_date.day, 8, tzinfo=UTC)
    assert stored(service, "t")["ny"]["send_at"] == a.send_at.replace(tzinfo=None)
    assert "send_time" not in a.variants  # beside the variants, not among them


def test_a_skipped_local_hour_is_an_hour_after_the_one_before(service: ExperimentService) -> None:
    spec = make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=nine_am(hours=[1, 2, 3]))
    service.create(spec)
    decisions = service.assign_batch("t", [(f"r{i}", {"tz": "America/New_York"}) for i in range(60)],
                                     send_date=date(2026, 3, 8))
    local_to_utc = {d.send_at.hour for d in decisions}
    # 01:00 EST = 06:00Z; 02:00 does not exist that day: 07:00Z (03:00 EDT); 03:00 EDT = 07:00Z
    assert local_to_utc == {6, 7}


def test_the_default_date_is_read_in_each_recipients_zone(service: ExperimentService, clock: Clock) -> None:
    clock.now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 22:00 on 1 March in New York, 12:00 on 2 March
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=nine_am()))
    ny, tokyo, none = service.assign_batch(
        "t", [("ny", {"tz": "America/New_York"}), ("tokyo", {"tz": "Asia/Tokyo"}), ("x", {})]
    )
    # 09:00 has passed on each one's local date (1 March in New York, 2 March in Tokyo): the next day's
    assert ny.send_at == datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert tokyo.send_at == datetime(2026, 3, 3, 0, tzinfo=UTC)
    assert none.send_at == datetime(2026, 3, 2, 9, tzinfo=UTC)  # the default zone: still ahead today
    assert ny.content_notes == tokyo.content_notes == none.content_notes == {}


@pytest.mark.parametrize(
    ("now", "zone", "hour", "expected"),
    [
        # Tokyo (UTC+9) at 08:30 on 8 December while it is still 7 December in UTC: 09:00 is ahead today
        (datetime(2026, 12, 7, 23, 30, tzinfo=UTC), "Asia/Tokyo", 9, datetime(2026, 12, 8, 0, tzinfo=UTC)),
        # Tokyo at 09:19: 09:00 has passed, so 09:00 on 9 December (the tester's case)
        (datetime(2026, 12, 8, 0, 19, tzinfo=UTC), "Asia/Tokyo", 9, datetime(2026, 12, 9, 0, tzinfo=UTC)),
        (datetime(2026, 12, 8, 0, 19, tzinfo=UTC), "Asia/Tokyo", 18, datetime(2026, 12, 8, 9, tzinfo=UTC)),
        # Kiritimati (UTC+14) at 02:00 on 2 June, still 1 June in UTC
        (datetime(2026, 6, 1, 12, tzinfo=UTC), "Pacific/Kiritimati", 9, datetime(2026, 6, 1, 19, tzinfo=UTC)),
        # New York (behind UTC) at 22:00 on 1 March: 2 March 09:00 EST
        (datetime(2026, 3, 2, 3, tzinfo=UTC), "America/New_York", 9, datetime(2026, 3, 2, 14, tzinfo=UTC)),
        # exactly at the hour is not in the past
        (datetime(2026, 3, 2, 9, tzinfo=UTC), "UTC", 9, datetime(2026, 3, 2, 9, tzinfo=UTC)),
        (datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC), "UTC", 9, datetime(2026, 3, 3, 9, tzinfo=UTC)),
        # 10:00 EST on 7 March: 09:00 on the spring-forward day is EDT, 23 hours later (not 24)
        (datetime(2026, 3, 7, 15, tzinfo=UTC), "America/New_York", 9, datetime(2026, 3, 8, 13, tzinfo=UTC)),
        # 03:00 EST on 7 March: 02:00 on 8 March does not exist, so 03:00 EDT
        (datetime(2026, 3, 7, 8, tzinfo=UTC), "America/New_York", 2, datetime(2026, 3, 8, 7, tzinfo=UTC)),
        # 10:00 EDT on 31 October: 09:00 on the fall-back day is EST, 25 hours later
        (datetime(2026, 10, 31, 14, tzinfo=UTC), "America/New_York", 9,
         datetime(2026, 11, 1, 14, tzinfo=UTC)),
    ],
)
def test_a_default_send_date_never_gives_a_send_at_in_the_past(
    service: ExperimentService, clock: Clock, now: datetime, zone: str, hour: int, expected: datetime
) -> None:
    clock.now = now
    spec = make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=nine_am(hours=[hour]))
    service.create(spec)
    (d,) = service.assign_batch("t", [("r", {"tz": zone})])
    assert d.send_at == expected and d.send_at >= now
    assert d.content_notes == {}


def test_a_default_send_date_moves_only_the_date_not_the_hour_or_its_propensity(
    service: ExperimentService, clock: Clock
) -> None:
    """The tester's case: 09:19 in Tokyo, hours 9, 12 and 18 split evenly. The sticky hash gives each
    recipient the same hour with and without ``send_date``; only 09:00 moves, to the next day."""
    clock.now = datetime(2026, 12, 8, 0, 19, tzinfo=UTC)
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=TIMED))
    recipients = [(f"tk{i}", {"tz": "Asia/Tokyo"}) for i in range(300)]
    dated = service.assign_batch("t", recipients, send_date=date(2026, 12, 8))
    default = service.assign_batch("t", recipients)
    tokyo = ZoneInfo("Asia/Tokyo")
    hours = set()
    for a, b in zip(dated, default, strict=True):
        hour = a.send_at.astimezone(tokyo).hour
        hours.add(hour)
        assert b.send_at.astimezone(tokyo).hour == hour and b.propensity == a.propensity
        assert b.send_at >= clock.now and b.content_notes == {}
        assert b.send_at.astimezone(tokyo).date() == date(2026, 12, 9 if hour == 9 else 8)
    assert hours == {9, 12, 18}
    rows = stored(service, "t")
    assert all(r["send_time_propensity"] == pytest.approx(1 / 3) for r in rows.values())


def test_an_explicit_send_date_already_past_is_kept_with_a_note(service: ExperimentService,
                                                                clock: Clock) -> None:
    clock.now = datetime(2026, 12, 8, 0, 19, tzinfo=UTC)  # 09:19 in Tokyo
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"},
                             send_time=nine_am(default_timezone="Asia/Tokyo")))
    past, lost, ahead = service.assign_batch(
        "t",
        [("tk", {"tz": "Asia/Tokyo"}), ("x", {"tz": "Mars/Olympus"}), ("ny", {"tz": "America/New_York"})],
        send_date=date(2026, 12, 8),
    )
    assert past.send_at == datetime(2026, 12, 8, 0, tzinfo=UTC)  # the caller's date is kept
    assert past.content_notes == {"send_time": "send_date 2026-12-08: 09:00 in Asia/Tokyo"
                                  " (2026-12-08T00:00:00Z) is already past at 2026-12-08T00:19:00Z"}
    # the default zone's note and the past one, both
    zone_note, past_note = lost.content_notes["send_time"].split("; ")
    assert "Mars/Olympus" in zone_note and past_note.startswith("send_date 2026-12-08: 09:00 in Asia/Tokyo")
    assert ahead.send_at == datetime(2026, 12, 8, 14, tzinfo=UTC) and ahead.content_notes == {}


def test_an_unknown_zone_in_context_takes_the_default_with_a_reason(service: ExperimentService) -> None:
    spec = make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"},
                     send_time=nine_am(default_timezone="Europe/Berlin"))
    service.create(spec)
    (d,) = service.assign_batch("t", [("r", {"tz": "Mars/Olympus"})], send_date=date(2026, 6, 1))
    assert d.send_at == datetime(2026, 6, 1, 7, tzinfo=UTC)  # 09:00 CEST
    assert "Mars/Olympus" in d.content_notes["send_time"] and "Europe/Berlin" in d.content_notes["send_time"]


@pytest.mark.parametrize(
    ("send_time", "path"),
    [
        ({**TIMED, "default_timezone": "Mars/Olympus"}, "send_time.default_timezone"),
        ({**TIMED, "hours": [9, 24]}, "send_time.hours"),
        ({**TIMED, "hours": [9, 9]}, "send_time.hours"),
        ({**TIMED, "hours": []}, "send_time.hours"),
        ({**TIMED, "window": 3}, "send_time.window"),
        ({"windows": [{"start": "09:00", "end": "11:00"}, {"start": "10:30", "end": "12:00"}]},
         "send_time.windows"),  # overlapping
        ({"windows": [{"start": "9:00", "end": "11:00"}]}, "send_time.windows[0].start"),
        ({"windows": [{"start": "09:00", "end": "24:30"}]}, "send_time.windows[0].end"),
        ({"windows": [{"start": "11:00", "end": "11:00"}]}, "send_time.windows[0]"),
        ({"windows": []}, "send_time.windows"),
        ({"timezone_attr": "tz"}, "send_time"),  # neither hours nor windows
        ({**TIMED, "windows": [{"start": "09:00", "end": "11:00"}]}, "send_time"),  # both
    ],
)
def test_a_bad_send_time_in_the_spec_names_its_field(send_time: dict[str, object], path: str) -> None:
    with pytest.raises(SpecError) as info:
        make_spec(key="t", send_time=send_time)
    assert any(p.path == path for p in info.value.problems), info.value.problems


def test_a_slot_may_not_be_named_send_time() -> None:
    with pytest.raises(SpecError) as info:
        make_spec(key="t", slots={"send_time": ONE_SUBJECT["subject"]}, send_time=TIMED)
    assert "send_time" in str(info.value)


def test_send_date_and_send_at_are_checked(service: ExperimentService) -> None:
    service.create(make_spec(key="plain"))
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=TIMED))
    with pytest.raises(InvalidInput) as info:
        service.assign_batch("plain", [("r", {})], send_date=date(2026, 3, 8))
    assert info.value.field == "send_date"
    with pytest.raises(InvalidInput) as info:
        service.assign_batch("t", [("r", {})], send_at=datetime(2026, 3, 8, 9, tzinfo=UTC))
    assert info.value.field == "send_at"
    with pytest.raises(InvalidInput) as info:
        service.assign_batch("t", [("r", {})], send_date="8 March")  # type: ignore[arg-type]
    assert info.value.field == "send_date"
    assert stored(service, "t") == {} and stored(service, "plain") == {}


def test_a_fixed_split_explores_the_hours_evenly_and_logs_their_propensity(
    service: ExperimentService,
) -> None:
    spec = make_spec(key="t", slots=TWO_SUBJECTS, design={"type": "ab"}, send_time=TIMED)
    service.create(spec)
    n = 3000
    decisions = service.assign_batch("t", [(f"r{i}", {}) for i in range(n)], send_date=date(2026, 3, 9))
    hours = np.array([d.send_at.hour for d in decisions])
    counts = [int((hours == h).sum()) for h in (9, 12, 18)]
    assert sum(counts) == n
    assert stats.chisquare(counts).pvalue > 1e-4  # PlanOut-style: a strict level over many units
    rows = stored(service, "t")
    assert {round(r["send_time_propensity"], 12) for r in rows.values()} == {round(1 / 3, 12)}
    assert {round(r["propensity"], 12) for r in rows.values()} == {round(1 / 6, 12)}
    assert {r["variants"]["send_time"] for r in rows.values()} == {"09:00", "12:00", "18:00"}
    # the arms report the hours like any slot
    arms = {(a.slot, a.variant): a.decisions for a in service.summarize("t").arms}
    assert [arms[("send_time", h)] for h in ("09:00", "12:00", "18:00")] == counts


def test_a_bandit_logs_the_hours_marginal_propensity(service: ExperimentService) -> None:
    spec = make_spec(key="b", slots=TWO_SUBJECTS, send_time=TIMED,
                     design={"type": "bandit", "policy": "epsilon_greedy", "options": {"epsilon": 0.3}})
    service.create(spec)
    service.assign_batch("b", [(f"r{i}", {}) for i in range(200)], send_date=date(2026, 3, 9))
    rows = stored(service, "b")
    # epsilon-greedy over 6 arms before any learning: every arm equally likely, so each hour 1/3
    assert {round(r["send_time_propensity"], 9) for r in rows.values()} == {round(1 / 3, 9)}
    assert {round(r["propensity"], 9) for r in rows.values()} == {round(1 / 6, 9)}


def test_a_retried_send_answers_the_same_send_at(service: ExperimentService) -> None:
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=TIMED))
    recipients = [(f"r{i}", {"tz": "Asia/Kolkata"}) for i in range(20)]
    first = service.assign_batch("t", recipients, send_id="s1", send_date=date(2026, 3, 9))
    again = service.assign_batch("t", recipients, send_id="s1", send_date=date(2026, 3, 10))
    assert [d.send_at for d in again] == [d.send_at for d in first]
    assert [d.variants for d in again] == [d.variants for d in first]
    assert {d.send_at.minute for d in first} == {30}  # India is UTC+05:30


def test_results_by_send_hour_are_segments_of_the_chosen_hour(service: ExperimentService) -> None:
    from experiments.models import OutcomeEvent

    service.create(make_spec(key="t", slots=TWO_SUBJECTS, design={"type": "ab"}, send_time=TIMED))
    decisions = service.assign_batch("t", [(f"r{i}", {}) for i in range(600)], send_date=date(2026, 3, 9))
    evening = [d for d in decisions if d.send_at.hour == 18]
    service.record_outcomes([
        OutcomeEvent(event_id=f"e{k}", decision_id=d.decision_id, type="click") for k, d in enumerate(evening)
    ])
    by_hour = service.summarize_segments("t", "send_time")
    assert set(by_hour.segments) == {"09:00", "12:00", "18:00"} and by_hour.missing == 0
    for hour, summary in by_hour.segments.items():
        n = sum(1 for d in decisions if f"{d.send_at.hour:02d}:00" == hour)
        clicks = sum(a.event_counts.get("click", 0) for a in summary.arms if a.slot == "subject")
        assert summary.learnable_decisions == n
        assert clicks == (n if hour == "18:00" else 0)
    with pytest.raises(InvalidInput):
        service.create(make_spec(key="plain"))
        service.summarize_segments("plain", "send_time")  # no send_time: not a stored attribute


def test_the_hours_count_in_the_arms_a_design_allows() -> None:
    # contextual designs score at most 64 arms: 2 subjects x 24 hours is 48, x 2 CTAs is 96
    hours = {**TIMED, "hours": list(range(24))}
    design = {"type": "contextual", "policy": "linucb", "context": ["opens_h09"]}
    make_spec(key="t", slots=TWO_SUBJECTS, design=design, send_time=hours)
    with pytest.raises(SpecError) as info:
        make_spec(key="t", design=design, send_time=hours)
    assert "96 (2 × 2 × 24)" in str(info.value)


WINDOWS = {"windows": [{"start": "09:30", "end": "11:00"}, {"start": "11:00", "end": "24:00"}],
           "timezone_attr": "tz"}


@pytest.mark.parametrize(
    ("local_date", "utc_hour"),
    [(date(2026, 3, 7), 14), (date(2026, 3, 8), 13), (date(2026, 11, 1), 14)],  # EST, EDT, EST again
)
def test_a_window_is_sent_at_its_local_start_across_daylight_saving_changes(
    service: ExperimentService, local_date: date, utc_hour: int
) -> None:
    service.create(make_spec(key="t", slots=ONE_SUBJECT, design={"type": "ab"}, send_time=WINDOWS))
    recipients = [(f"r{i}", {"tz": "America/New_York"}) for i in range(40)]
    decisions = service.assign_batch("t", recipients, send_date=local_date)
    day = datetime(local_date.year, local_date.month, local_date.day, tzinfo=UTC)
    first = day.replace(hour=utc_hour, minute=30)
    second = day.replace(hour=utc_hour + 2)  # 11:00 local
    rows = stored(service, "t")
    for d in decisions:
        window = rows[d.recipient_id]["variants"]["send_time"]
        assert (window, d.send_at) in {("09:30-11:00", first), ("11:00-24:00", second)}
        assert rows[d.recipient_id]["send_time_propensity"] == pytest.approx(0.5)
    assert {d.send_at for d in decisions} == {first, second}  # both windows drawn among 40


def test_a_spec_with_hours_keeps_its_text() -> None:
    assert '"windows"' not in make_spec(key="t", send_time=TIMED).canonical_json()
    assert '"hours"' not in make_spec(key="t", send_time=WINDOWS).canonical_json()
