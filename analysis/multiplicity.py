"""Corrections for many comparisons (many arms against control, many metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from statsmodels.stats.multitest import multipletests

from analysis.errors import AnalysisInputError

Correction = Literal["holm", "bh", "none"]


def adjust_p_values(p_values: Sequence[float], correction: Correction = "holm") -> np.ndarray:
    """Adjusted p-values, shape (m,), in the input's order.

    ``holm`` controls the family-wise error rate (Holm 1979); ``bh`` the false discovery rate
    (Benjamini and Hochberg 1995, through statsmodels' ``multipletests``); ``none`` returns the p-values
    unchanged. NaN entries (comparisons that could not be made) stay NaN and do not count towards the
    family.

    Holm is computed here, :math:`\tilde p_{(i)} = \\max_{j \\le i} \\min(1, (m - j + 1) p_{(j)})`, because
    statsmodels' Holm branch runs ``gc.collect()`` on every call (tens of milliseconds in a large
    process); the tests check it against ``multipletests(method="holm")``.
    """
    if correction not in ("holm", "bh", "none"):
        raise AnalysisInputError(f"correction: must be 'holm', 'bh' or 'none', got {correction!r}")
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise AnalysisInputError(f"p_values: must be one-dimensional, got shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise AnalysisInputError("p_values: every p-value must lie in [0, 1]")
    out = p.copy()
    if correction == "none" or not finite.any():
        return out
    if correction == "holm":
        out[finite] = _holm(p[finite])
    else:
        out[finite] = multipletests(p[finite], method="fdr_bh")[1]
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out
