"""Quintile scores: the stated convention, its invariants, and RFM's directions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from experiments.features.rfm import quintile_scores, rfm_scores


def test_distinct_values_fill_each_quintile_equally() -> None:
    values = np.random.default_rng(3).permutation(np.arange(20.0))
    scores = quintile_scores(values)
    assert np.bincount(scores, minlength=6)[1:].tolist() == [4, 4, 4, 4, 4]
    assert scores[np.argmax(values)] == 5 and scores[np.argmin(values)] == 1


def test_r_is_5_for_the_most_recent_and_never_bought_is_least_recent() -> None:
    recency = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    scores = rfm_scores(recency, np.array([5, 4, 3, 2, 0]), np.array([50.0, 40.0, 30.0, 20.0, 0.0]))
    assert scores.r.tolist() == [5, 4, 3, 2, 1]
    assert scores.f.tolist() == scores.m.tolist() == [5, 4, 3, 2, 1]


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=60))
def test_scores_are_monotone_tie_sharing_and_within_1_to_5(values: list[int]) -> None:
    array = np.array(values, dtype=float)
    scores = quintile_scores(array)
    assert scores.min() >= 1 and scores.max() <= 5
    order = np.argsort(array, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)
    for value in set(values):
        assert len(set(scores[array == value].tolist())) == 1
    assert scores[array == array.min()][0] == 1   # nobody is strictly worse than the smallest value
