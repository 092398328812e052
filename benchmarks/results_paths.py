"""The results answer two ways, for the benchmarks: as ``/results`` computes it (the summary read from
the rollups, then analysed: frequentist, Bayesian, sequential, SRM), and the same answer from a full
scan of the log (:func:`experiments.store.summaries.log_cells`, the reference the rollups are kept
equal to); and :func:`answer_differences`, which compares two answers field by field."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from experiments.assignment import CompiledExperiment
from experiments.models import ExperimentSummary
from experiments.result_analysis import ExperimentResults, analyze_summary
from experiments.results import ResultGroups, build_summary, intended_shares
from experiments.store.learning_log import after_learning_counts
from experiments.store.repository import consistent_read
from experiments.store.rollup_tables import UNCOUNTED_VALUE
from experiments.store.summaries import (
    apprentice_agreement,
    arm_stats,
    daily_stats,
    excluded_of,
    fallback_stats,
    log_cells,
    log_outcome_counts,
)

#: Floats of two answers agree within this relative tolerance (counts and every other value: exactly).
RELATIVE_TOLERANCE = 1e-9


def full_scan_summary(engine: Engine, compiled: CompiledExperiment) -> ExperimentSummary:
    """The summary of a fixed-split version that ``ExperimentService.summarize`` reads from the rollups,
    computed from the log in full instead (its cells and outcome counts), in one consistent read."""
    assert not compiled.adaptive, "a fixed split: the intended shares need no policy snapshot"
    with consistent_read(engine) as conn:
        cells = log_cells(conn, compiled)
        counts = log_outcome_counts(conn, compiled)
        groups = ResultGroups(
            by_arm=arm_stats(conn, compiled, cells),
            by_reason=fallback_stats(conn, compiled, cells),
            by_day=daily_stats(conn, compiled, cells),
            excluded=excluded_of(counts),
            apprentice=apprentice_agreement(conn, compiled),
            after_learning=after_learning_counts(conn, compiled),
            uncounted_values={t: n for (kind, t), n in sorted(counts.items()) if kind == UNCOUNTED_VALUE},
        )
    return build_summary(compiled, groups, intended_shares(compiled))


def full_scan_results(engine: Engine, compiled: CompiledExperiment) -> ExperimentResults:
    """``ExperimentService.results`` (no segment, covariate or blocks) from :func:`full_scan_summary`."""
    return analyze_summary(full_scan_summary(engine, compiled))


def answer_differences(a: Any, b: Any, where: str = "results") -> list[str]:
    """Where two answers differ (empty: the same): integers, strings and every other value exactly,
    floats within :data:`RELATIVE_TOLERANCE` (NaN equals NaN), walking dataclasses, mappings and
    sequences."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            return [f"{where}: {type(a).__name__} != {type(b).__name__}"]
        return [line for f in dataclasses.fields(a)
                for line in answer_differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")]
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"]
        return [line for k in a for line in answer_differences(a[k], b[k], f"{where}[{k!r}]")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True))
                for line in answer_differences(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE,
                                                                   abs_tol=1e-300)
        return [] if same else [f"{where}: {a!r} != {b!r}"]
    if hasattr(a, "dtype") or hasattr(b, "dtype"):  # numpy scalars and arrays
        x, y = np.asarray(a), np.asarray(b)
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            close = np.allclose(x, y, rtol=RELATIVE_TOLERANCE, atol=0, equal_nan=True)
            ok = x.shape == y.shape and bool(close)
        else:
            ok = x.shape == y.shape and bool((x == y).all())
        return [] if ok else [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]
