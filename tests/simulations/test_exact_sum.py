"""ExactSum: merging is exact (fractions.Fraction) in any order; a chunk's own total is numpy's sum."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.exact_sum import ExactSum, NonFiniteSum

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


def as_fraction(total: ExactSum) -> Fraction:
    return Fraction(total.numerator) * Fraction(2) ** total.exponent


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, max_size=80), st.integers(0, 2**32 - 1))
def test_merging_chunk_totals_is_exact_in_any_order(values, seed):
    parts = [ExactSum.of_float(v) for v in values]
    random.Random(seed).shuffle(parts)
    merged = ExactSum()
    for part in parts:
        merged = merged + part
    exact = sum((Fraction(v) for v in values), Fraction(0))
    assert as_fraction(merged) == exact
    assert merged.value == float(exact) == math.fsum(values)  # fsum is correctly rounded too


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
                max_size=200))
def test_a_chunk_total_is_the_pairwise_sum_within_its_error_bound(values):
    x = np.array(values, dtype=float)
    total = ExactSum.of(x).value
    assert total == float(np.sum(x))
    exact = float(sum((Fraction(v) for v in values), Fraction(0)))
    # pairwise summation: |error| <= n * eps * sum|x| (a loose form of the log2(n) eps bound)
    assert abs(total - exact) <= max(len(values), 1) * 2.0**-52 * float(np.abs(x).sum())


def test_cancellation_across_chunks_and_subnormals():
    parts = [1e16, 1.0, -1e16, 5e-324, 5e-324, -1e-300]
    merged = sum((ExactSum.of_float(v) for v in parts), ExactSum())
    assert merged.value == float(sum(Fraction(v) for v in parts))
    assert ExactSum.of(np.zeros(3)).value == 0.0 and ExactSum().value == 0.0


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="values must be finite"):
        ExactSum.of(np.array([1.0, np.inf]))


def test_a_merged_total_beyond_a_floats_range_is_refused():
    biggest = ExactSum.of_float(1.7e308)
    with pytest.raises(NonFiniteSum, match="the total exceeds a float's range"):
        _ = (biggest + biggest).value
    assert (biggest + biggest + ExactSum.of_float(-1.7e308)).value == 1.7e308
