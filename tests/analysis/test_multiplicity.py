"""Holm and Benjamini-Hochberg against the step-down / step-up definitions computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from analysis.errors import AnalysisInputError
from analysis.multiplicity import adjust_p_values

P = [0.01, 0.04, 0.03, 0.005, 0.20]


def _holm(p: list[float]) -> list[float]:
    # Holm (1979): sorted ascending, adjusted_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))
    m, order = len(p), np.argsort(p)
    out, running = [0.0] * m, 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def _bh(p: list[float]) -> list[float]:
    # Benjamini-Hochberg (1995): adjusted_(i) = min_{j>=i} min(1, m p_(j) / j)
    m, order = len(p), np.argsort(p)
    out, running = [0.0] * m, 1.0
    for rank in range(m - 1, -1, -1):
        idx = order[rank]
        running = min(running, m * p[idx] / (rank + 1))
        out[idx] = running
    return out


def test_holm_matches_the_definition() -> None:
    assert adjust_p_values(P, "holm") == pytest.approx(_holm(P), abs=1e-12)
    # by hand: sorted .005 .01 .03 .04 .2 -> .025 .04 .09 .09 .2
    assert adjust_p_values(P, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2], abs=1e-12)


def test_bh_matches_the_definition() -> None:
    assert adjust_p_values(P, "bh") == pytest.approx(_bh(P), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_and_bh_match_statsmodels(p: list[float]) -> None:
    assert adjust_p_values(p, "holm") == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)
    assert adjust_p_values(p, "bh") == pytest.approx(multipletests(p, method="fdr_bh")[1], abs=1e-12)


def test_none_and_nan() -> None:
    assert adjust_p_values(P, "none") == pytest.approx(P)
    out = adjust_p_values([0.01, math.nan, 0.04], "holm")
    assert math.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.02, 0.04])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_adjusted_p_values_are_valid_and_not_smaller(p: list[float]) -> None:
    for method in ("holm", "bh"):
        q = adjust_p_values(p, method)
        assert np.all((q >= 0) & (q <= 1))
        assert np.all(q >= np.asarray(p) - 1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [(([0.1], "bonferroni"), "correction"), (([1.2], "holm"), "p_values"), (([[0.1]], "holm"), "p_values")],
)
def test_bad_inputs(args, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        adjust_p_values(*args)
