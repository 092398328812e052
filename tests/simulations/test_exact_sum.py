"""ExactSum against exact rational arithmetic (fractions.Fraction) and math.fsum."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.exact_sum import ExactSum

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, max_size=80), st.lists(st.integers(0, 80), max_size=6))
def test_exact_total_and_any_chunking_agree_with_fractions(values, cuts):
    x = np.array(values, dtype=float)
    exact = sum((Fraction(v) for v in values), Fraction(0))
    whole = ExactSum.of(x)
    assert Fraction(whole.numerator) * Fraction(2) ** whole.exponent == exact
    assert whole.value == float(exact) == math.fsum(values)  # fsum is correctly rounded too
    bounds = sorted({0, len(values), *[c for c in cuts if c <= len(values)]})
    parts = [ExactSum.of(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    merged = ExactSum()
    for part in reversed(parts):
        merged = merged + part
    assert merged.value == whole.value


def test_cancellation_and_subnormals():
    x = np.array([1e16, 1.0, -1e16, 5e-324, 5e-324, -1e-300])
    assert ExactSum.of(x).value == float(sum(Fraction(v) for v in x.tolist()))
    assert ExactSum.of(np.zeros(3)).value == 0.0 and ExactSum().value == 0.0


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="values must be finite"):
        ExactSum.of(np.array([1.0, np.inf]))
