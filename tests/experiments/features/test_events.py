"""Events that cannot be used are refused at their row and column, with the reason."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.errors import InvalidInput
from experiments.features import EventProblem, FeatureSettings, compute_features, events_from_frame

GOOD = {"recipient_id": "a", "timestamp": "2024-05-01T10:00:00Z", "type": "purchase", "amount": 12.5}


@pytest.mark.parametrize(("field", "value", "column", "message"), [
    ("recipient_id", None, "recipient_id", "is missing"),
    ("recipient_id", "", "recipient_id", "is missing"),
    ("recipient_id", "x" * 129, "recipient_id", "is longer than 128 characters"),
    ("recipient_id", "a\x00b", "recipient_id", "must not contain a NUL character"),
    ("timestamp", "yesterday", "timestamp", "must be an ISO 8601 date or date-time, got 'yesterday'"),
    ("timestamp", None, "timestamp", "is missing"),
    ("type", None, "type", "is missing"),
    ("amount", None, "amount", "a purchase needs an amount"),
    ("amount", -1.0, "amount", "must be a number from 0 to 1e+12, got -1.0"),
    ("amount", 2e12, "amount", "must be a number from 0 to 1e+12"),
    ("amount", float("inf"), "amount", "must be a number from 0 to 1e+12"),
    ("amount", "ten", "amount", "must be a number from 0 to 1e+12, got 'ten'"),
])
def test_a_bad_row_is_named_by_row_and_column(field: str, value: object, column: str, message: str) -> None:
    rows = [GOOD, GOOD, {**GOOD, field: value}]
    with pytest.raises(EventProblem) as info:
        events_from_frame(pd.DataFrame(rows), first_row=100)
    assert (info.value.row, info.value.column) == (102, column)
    assert info.value.field == f"events[102].{column}"
    assert message in info.value.reason


def test_amounts_of_other_events_are_not_read() -> None:
    batch = events_from_frame(pd.DataFrame([GOOD, {**GOOD, "type": "open", "amount": "n/a"}]))
    assert batch.amount_micros.tolist() == [12_500_000, 0]


def test_a_frame_without_a_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"column\(s\) \['amount'\] missing"):
        events_from_frame(pd.DataFrame([GOOD]).drop(columns="amount"))


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"as_of": "soon"}, "as_of", "must be an ISO 8601 date or date-time"),
    ({"as_of": "1066-10-14"}, "as_of", "must fall in the years 1900 to 2200"),
    ({"window_days": 0}, "window_days", "must be a whole number from 1 to 3650"),
    ({"engagement_windows": ()}, "engagement_windows", "give 1 to 8 windows"),
    ({"engagement_windows": (7, 7)}, "engagement_windows", "a window is given twice"),
    ({"k": 51}, "k", "must be a whole number from 1 to 50"),
    ({"k_range": (5, 3)}, "k_range", "must be a whole number from 5 to 50, got 3"),
    ({"folds": 1}, "folds", "must be a whole number from 2 to 20"),
    ({"horizon_days": 4000}, "horizon_days", "must be a whole number from 1 to 3650"),
])
def test_bad_settings_are_refused_by_field(changes: dict, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        FeatureSettings(**{"as_of": "2024-06-01", **changes})
    assert info.value.field == field and message in info.value.reason


def test_a_history_with_nothing_before_as_of_is_refused() -> None:
    message = "no event at or before 2020-01-01T00:00:00\\+00:00 \\(1 after it\\)"
    with pytest.raises(InvalidInput, match=message):
        compute_features([events_from_frame(pd.DataFrame([GOOD]))], FeatureSettings(as_of="2020-01-01"))


def test_too_few_distinct_recipients_for_k_is_refused() -> None:
    frame = pd.DataFrame([GOOD, {**GOOD, "recipient_id": "b"}])
    with pytest.raises(InvalidInput, match="3 segments need at least 3 recipients with distinct features; "
                                           "the history has 1") as info:
        compute_features([events_from_frame(frame)], FeatureSettings(as_of="2024-06-01", k=3))
    assert info.value.field == "k"


@pytest.mark.parametrize("column", ["recipient_id", "type"])
def test_a_lone_surrogate_is_named_by_row_and_column(column: str) -> None:
    # pandas infers no string type from a column holding a lone surrogate: it stays object
    frame = pd.DataFrame([GOOD, {**GOOD, column: "ok\ud800"}], dtype=object)
    with pytest.raises(EventProblem) as info:
        events_from_frame(frame, first_row=7)
    assert info.value.field == f"events[8].{column}"
    assert info.value.reason.startswith("must be Unicode text: a lone UTF-16 surrogate")
    assert info.value.reason.endswith("got 'ok\\ud800'")
