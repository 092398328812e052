"""Comparing estimates computed on one chunk and on many (their sums differ by per-chunk roundings)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from simulations.estimates import PolicyEstimate


def assert_same_estimates(got: Sequence[PolicyEstimate], want: Sequence[PolicyEstimate]) -> None:
    """Equal up to the rounding of each chunk's sums: numbers to 1e-12 relative (NaN where the other is
    NaN: an estimate without an interval), the rest exactly.

    A chunk's sums are numpy pairwise sums, each within about 1e-16 of the exact total relative to the
    sum of magnitudes; the estimates derived from them agree to far better than 1e-12.
    """
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        assert (mine.estimator, mine.n, mine.warnings, mine.ci_method) == \
            (theirs.estimator, theirs.n, theirs.warnings, theirs.ci_method)
        for field in ("value", "std_error", "effective_sample_size", "max_weight"):
            want = pytest.approx(getattr(theirs, field), rel=1e-12, abs=1e-15, nan_ok=True)
            assert getattr(mine, field) == want, field
        assert mine.ci == pytest.approx(theirs.ci, rel=1e-12, abs=1e-15, nan_ok=True)
