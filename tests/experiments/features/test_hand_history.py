"""A small hand-made history: every feature, RFM score and K-means segment computed independently.

The reference values are computed here from the events with plain Python datetimes (features), a
brute-force count of strictly worse recipients (quintile scores) and scikit-learn's KMeans and
silhouette_score run directly on a matrix built here with numpy (segments); a few are also written out
by hand. Floats are compared to 1e-9 (amounts are summed in millionths of a unit, exactly).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from experiments.features import FeatureSettings, compute_features, events_from_frame

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
WINDOW = 90
ENGAGEMENT = (7, 30)

EVENTS = [
    ("ann", "2024-05-31T12:00:00Z", "purchase", 10.00),
    ("ann", "2024-05-20", "purchase", 25.50),
    ("ann", "2024-01-10", "purchase", 99.99),            # before the 90-day window: recency only
    ("ann", "2024-05-30", "open", None),
    ("ann", "2024-05-10", "open", None),
    ("ann", "2024-05-29", "click", None),
    ("bob", "2024-04-01", "purchase", 40),
    ("bob", "2024-05-28", "open", None),
    ("cy", "2024-05-31", "open", None),                  # never bought
    ("cy", "2024-05-29", "open", None),
    ("cy", "2024-05-01", "open", None),                  # 31 days before: in no window
    ("cy", "2024-05-30", "click", None),
    ("dee", "2024-05-31T12:00:00Z", "purchase", 15),     # as recent as ann
    ("dee", "2024-05-25", "purchase", 15),
    ("eve", "2023-12-01", "purchase", 200),              # lapsed: out of the window
    ("fay", "2024-05-15T08:00:00+02:00", "purchase", 60),  # 06:00 UTC
    ("fay", "2024-06-02", "purchase", 500),              # after as_of: left out
    ("fay", "2024-06-01T00:00:00Z", "open", None),       # exactly as_of: counted
    ("gus", "2024-02-01", "click", None),                # in no window
    ("hal", "2024-05-01", "purchase", 5),
    ("hal", "2024-05-02", "purchase", 5),
    ("hal", "2024-05-03", "purchase", 5),
    ("ida", "2024-03-03T00:00:00Z", "purchase", 30),     # exactly as_of - 90 days: outside (a, b]
    ("ida", "2024-05-25T00:00:00Z", "open", None),       # exactly 7 days: in 30d, not in 7d
    ("jon", "2024-05-31", "purchase", 12.34),
]


def history() -> pd.DataFrame:
    return pd.DataFrame(EVENTS, columns=["recipient_id", "timestamp", "type", "amount"])


def reference_features() -> pd.DataFrame:
    """The features as the module docstring of experiments.features.table defines them."""
    rows = {}
    for rid, stamp, kind, amount in EVENTS:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        if when > AS_OF:
            continue
        r = rows.setdefault(rid, {"purchases": [], "events": []})
        r["events"].append((when, kind))
        if kind == "purchase":
            r["purchases"].append((when, amount))
    out = []
    for rid, r in sorted(rows.items()):
        in_window = [a for w, a in r["purchases"] if AS_OF - timedelta(days=WINDOW) < w]
        row = {
            "recipient_id": rid,
            "recency_days": (AS_OF - max(w for w, _ in r["purchases"])).total_seconds() / 86400
            if r["purchases"] else np.nan,
            "days_since_last_event": (AS_OF - max(w for w, _ in r["events"])).total_seconds() / 86400,
            "frequency": len(in_window),
            "monetary": float(sum(in_window)),
        }
        for kind in ("click", "open", "purchase"):
            for days in ENGAGEMENT:
                row[f"{kind}_{days}d"] = sum(1 for w, k in r["events"]
                                             if k == kind and AS_OF - timedelta(days=days) < w)
        out.append(row)
    return pd.DataFrame(out)


def brute_force_scores(values: np.ndarray) -> np.ndarray:
    """1 + floor(5 L / n), L = recipients with a strictly smaller value (larger is better)."""
    n = len(values)
    return np.array([1 + (5 * int(np.sum(values < v))) // n for v in values])


@pytest.fixture(scope="module")
def result():
    settings = FeatureSettings(as_of=AS_OF, window_days=WINDOW, engagement_windows=ENGAGEMENT, k=3)
    return compute_features([events_from_frame(history())], settings)


def test_features_equal_the_definitions_recipient_by_recipient(result) -> None:
    expected = reference_features()
    got = result.to_frame()
    assert got["recipient_id"].tolist() == expected["recipient_id"].tolist()
    for column in ("recency_days", "days_since_last_event", "monetary"):
        np.testing.assert_allclose(got[column], expected[column], rtol=0, atol=1e-9, err_msg=column)
    for column in ["frequency"] + [f"{k}_{d}d" for k in ("click", "open", "purchase") for d in ENGAGEMENT]:
        assert got[column].tolist() == expected[column].tolist(), column
    frequency = expected["frequency"]
    aov = np.where(frequency > 0, expected["monetary"] / frequency.clip(lower=1), np.nan)
    np.testing.assert_allclose(got["average_order_value"], aov, atol=1e-9)
    assert (result.events.read, result.events.used, result.events.after_as_of) == (25, 24, 1)


def test_a_few_values_written_out_by_hand(result) -> None:
    rows = {r.recipient_id: r for r in result.recipients()}
    assert rows["ann"].recency_days == 0.5 and rows["ann"].frequency == 2 and rows["ann"].monetary == 35.5
    assert rows["cy"].recency_days is None and rows["cy"].average_order_value is None
    assert rows["cy"].engagement == {"click_7d": 1, "click_30d": 1, "open_7d": 2, "open_30d": 2,
                                     "purchase_7d": 0, "purchase_30d": 0}
    assert rows["eve"].recency_days == 183.0 and rows["eve"].frequency == 0 and rows["eve"].monetary == 0.0
    assert rows["fay"].recency_days == 16.75 and rows["fay"].monetary == 60.0   # 16 days and 18 hours
    assert rows["fay"].days_since_last_event == 0.0
    assert rows["ida"].frequency == 0 and rows["ida"].recency_days == 90.0
    assert (rows["ida"].engagement["open_7d"], rows["ida"].engagement["open_30d"]) == (0, 1)
    assert rows["hal"].monetary == 15.0 and rows["hal"].average_order_value == 5.0


def test_rfm_scores_are_quintiles_of_strictly_worse_recipients(result) -> None:
    expected = reference_features()
    recency_goodness = np.where(np.isnan(expected["recency_days"]), -np.inf, -expected["recency_days"])
    frame = result.to_frame()
    assert frame["r"].tolist() == brute_force_scores(recency_goodness).tolist()
    assert frame["f"].tolist() == brute_force_scores(expected["frequency"].to_numpy()).tolist()
    assert frame["m"].tolist() == brute_force_scores(expected["monetary"].to_numpy(dtype=float)).tolist()
    rows = {r.recipient_id: r.rfm for r in result.recipients()}
    # ann and dee bought 12 hours ago (tied, most recent): 8 of the 10 recipients are strictly less recent
    assert rows["ann"][0] == rows["dee"][0] == 1 + (5 * 8) // 10 == 5
    # cy and gus never bought: nobody is less recent than them
    assert rows["cy"][0] == rows["gus"][0] == 1
    # hal's 3 purchases are the most: the 9 others made fewer
    assert rows["hal"][1] == 5


def segmentation_matrix(expected: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Recency capped at the window (none: the window), frequency, monetary, and each engagement type's
    count in the longest window (purchases excluded)."""
    names = ["recency_days", "frequency", "monetary", "click_30d", "open_30d"]
    capped = np.minimum(expected["recency_days"].fillna(WINDOW), WINDOW)
    matrix = np.column_stack([capped, expected["frequency"], expected["monetary"], expected["click_30d"],
                              expected["open_30d"]]).astype(float)
    return names, matrix


def test_kmeans_segments_match_scikit_learn_on_the_standardised_features(result) -> None:
    names, matrix = segmentation_matrix(reference_features())
    scaled = (matrix - matrix.mean(axis=0)) / matrix.std(axis=0)
    reference = KMeans(n_clusters=3, n_init=10, random_state=0).fit(scaled)
    labels = result.segmentation.labels
    pairs = set(zip(labels.tolist(), reference.labels_.tolist(), strict=True))
    assert len(pairs) == 3  # the same partition, numbered differently
    assert result.segmentation.features == tuple(names)
    sizes = [s.size for s in result.segmentation.segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 10
    for segment in result.segmentation.segments:
        members = matrix[labels == segment.segment]
        assert segment.size == len(members)
        np.testing.assert_allclose(list(segment.centre.values()), members.mean(axis=0), atol=1e-9)
        # the centre in original units is K-means' own centre, unscaled
        (old,) = {b for a, b in pairs if a == segment.segment}
        unscaled = reference.cluster_centers_[old] * matrix.std(axis=0) + matrix.mean(axis=0)
        np.testing.assert_allclose(list(segment.centre.values()), unscaled, atol=1e-9)
    assert result.segmentation.silhouette[3] == pytest.approx(silhouette_score(scaled, reference.labels_),
                                                              abs=1e-12)


def three_groups() -> pd.DataFrame:
    """30 recipients in three well separated groups: loyal buyers, lapsed buyers, readers who never buy."""
    rows = []
    for i in range(10):
        for day in range(1, 11):
            rows.append((f"loyal{i}", f"2024-05-{day + i % 3:02d}", "purchase", 100 + i))
        rows.append((f"lapsed{i}", f"2023-0{1 + i % 5}-15", "purchase", 20 + i))
        for day in range(1, 16 + i % 4):
            rows.append((f"reader{i}", f"2024-05-{day:02d}", "open", None))
    return pd.DataFrame(rows, columns=["recipient_id", "timestamp", "type", "amount"])


def test_k_is_chosen_by_the_highest_silhouette_and_finds_the_groups() -> None:
    events = three_groups()
    result = compute_features([events_from_frame(events)],
                              FeatureSettings(as_of="2024-06-01", window_days=WINDOW, k_range=(2, 6)))
    frame = result.to_frame()
    matrix = np.column_stack([np.minimum(frame["recency_days"].fillna(WINDOW), WINDOW), frame["frequency"],
                              frame["monetary"], frame["open_90d"]])
    scaled = (matrix - matrix.mean(axis=0)) / matrix.std(axis=0)
    reference = {
        k: silhouette_score(scaled, KMeans(n_clusters=k, n_init=10, random_state=0).fit(scaled).labels_)
        for k in range(2, 7)
    }
    assert result.segmentation.silhouette.keys() == reference.keys()
    for k, value in reference.items():
        assert result.segmentation.silhouette[k] == pytest.approx(value, abs=1e-12)
    assert result.segmentation.k == max(reference, key=reference.get) == 3
    assert result.segmentation.chosen_by == "silhouette"
    group = frame["recipient_id"].str.rstrip("0123456789")
    assert len(set(zip(group, frame["segment"], strict=True))) == 3   # each group is one segment
    loyal = result.segmentation.segments[int(frame.loc[group == "loyal", "segment"].iloc[0])]
    assert loyal.centre["frequency"] == 10.0 and loyal.centre["monetary"] == pytest.approx(10 * 104.5)
