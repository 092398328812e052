"""Compiled kernels: compiled even where numba has no place for its cache; numpy's division."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.compiled import compiled


def test_a_function_without_a_cache_location_still_compiles():
    # a function whose source is no file has no place for numba's cache, as a module has none when its
    # directory and the user's cache directory are read-only: numba's cache=True alone refuses both
    namespace: dict = {}
    exec(compile("def halve(x):\n    return x / 2.0\n", "<generated>", "exec"), namespace)
    with pytest.raises(RuntimeError, match="no locator available"):
        from numba import njit

        njit(cache=True)(namespace["halve"])
    assert compiled(namespace["halve"])(3.0) == 1.5


def test_division_by_zero_gives_inf_as_in_numpy():
    @compiled
    def ratio(a: float, b: float) -> float:
        return a / b

    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) == np.inf  # no ZeroDivisionError: error_model="numpy"
