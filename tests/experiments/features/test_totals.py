"""Per-recipient totals read in chunks equal those of the whole history, to the last bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.features import FeatureSettings, compute_features, events_from_frame
from experiments.features import totals as totals_module
from experiments.features.totals import Cutoff, aggregate_history

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def random_history(seed: int, events: int, recipients: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 400 * 86400, events)
    kinds = rng.choice(["purchase", "open", "click", "bounce"], events, p=[0.3, 0.4, 0.2, 0.1])
    return pd.DataFrame({
        "recipient_id": [f"r{i}" for i in rng.integers(0, recipients, events)],
        "timestamp": pd.Timestamp("2023-05-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
        "type": kinds,
        "amount": np.round(rng.gamma(2.0, 30.0, events), 2) * (kinds == "purchase") + 0.1 / 3,
    })


def chunks(frame: pd.DataFrame, sizes: list[int]):
    start = 0
    for size in sizes:
        if start >= len(frame):
            return
        yield events_from_frame(frame.iloc[start:start + size], first_row=start)
        start += size
    if start < len(frame):
        yield events_from_frame(frame.iloc[start:], first_row=start)


CUTOFFS = [Cutoff(AS_OF.value, 90, (7, 30), "purchase"), Cutoff((AS_OF - pd.Timedelta(days=45)).value, 90,
                                                                (30,), "purchase")]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), sizes=st.lists(st.integers(1, 400), min_size=1, max_size=8),
       shuffle=st.booleans())
def test_any_chunking_and_order_gives_identical_totals(seed: int, sizes: list[int], shuffle: bool) -> None:
    frame = random_history(seed, 600, 50)
    whole = aggregate_history([events_from_frame(frame)], CUTOFFS)
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    chunked = aggregate_history(chunks(frame, sizes), CUTOFFS)
    for a, b in zip(whole, chunked, strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
        assert (a.counted, a.events_used, a.events_after) == (b.counted, b.events_used, b.events_after)


def test_the_running_merge_gives_the_same_features_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = random_history(7, 20_000, 3_000)
    settings_ = FeatureSettings(as_of=AS_OF, window_days=120, k=4, segment_rows=500)
    whole = compute_features([events_from_frame(frame)], settings_).to_frame()
    monkeypatch.setattr(totals_module, "MERGE_ROWS", 50)   # merge after (nearly) every chunk of 97 rows
    chunked = compute_features(chunks(frame, [97] * 300), settings_).to_frame()
    pd.testing.assert_frame_equal(whole, chunked, check_exact=True)


def test_monetary_is_the_exact_sum_in_millionths_whatever_the_order() -> None:
    # 0.1 + 0.2 + 0.3 in floats depends on the order; in millionths it is exactly 600,000
    frame = pd.DataFrame({"recipient_id": ["a"] * 3, "timestamp": ["2024-05-01"] * 3,
                          "type": ["purchase"] * 3, "amount": [0.1, 0.2, 0.3]})
    settings_ = FeatureSettings(as_of=AS_OF, k=1)
    forward = compute_features([events_from_frame(frame)], settings_)
    backward = compute_features([events_from_frame(frame.iloc[::-1])], settings_)
    assert forward.table.monetary[0] == backward.table.monetary[0] == 0.6
