"""The results use case: read everything an experiment's results need in one transaction (one
consistent snapshot of the log, while decisions and outcomes keep arriving), then analyse it."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from analysis.multiplicity import Correction
from experiments.adaptive_block import analyze_estimated, estimate_log
from experiments.adaptive_reader import AdaptiveData, read_adaptive
from experiments.assignment import CompiledExperiment
from experiments.drift_block import monitor_log
from experiments.drift_reader import DriftCell, DriftLog, read_drift_cells
from experiments.result_analysis import (
    ADAPTIVE_DESIGNS,
    ExperimentResults,
    analyze_segmented,
    analyze_summary,
)
from experiments.service.core import ServiceCore
from experiments.service.reading import Reading
from experiments.store.repository import consistent_read


class ResultsReading:
    """An experiment's results: its summary, optionally by segment or CUPED-adjusted by a covariate,
    analysed per slot."""

    def __init__(self, core: ServiceCore, reading: Reading) -> None:
        self._core = core
        self._reading = reading

    def results(
        self,
        key: str,
        *,
        alpha: float = 0.05,
        correction: str = "holm",
        seed: int = 0,
        include_machine: bool = False,
        segment: str | None = None,
        covariate: str | None = None,
        blocks: bool = False,
    ) -> ExperimentResults:
        """The analysed results of ``key``'s current version.

        The covariate's sums, the summary by ``segment``, the summary and (with ``blocks``) what the
        adaptive analysis and the drift monitor read are read in one transaction, so they describe the
        same decisions and outcomes. ``covariate`` CUPED-adjusts the reward comparisons; ``segment``
        adds the results per value of that attribute (:attr:`ExperimentResults.segments`); ``blocks``
        adds :attr:`ExperimentResults.adaptive` and :attr:`ExperimentResults.drift`.

        Raises
        ------
        NotFound
            No experiment under ``key``.
        InvalidInput
            ``segment`` or ``covariate`` is not an attribute stored with the decisions (or the segment
            has too many values).
        AnalysisInputError
            A bad ``alpha`` or ``correction``.
        """
        reading = self._reading
        adaptive: AdaptiveData | None = None
        drift: DriftLog | None = None
        with consistent_read(self._core.engine) as conn:
            cov = None if covariate is None else reading.covariate_on(conn, key, covariate)
            segmented = None if segment is None else reading.segments_on(conn, key, segment)
            compiled, _, summary = reading.summary_on(conn, key, include_machine)
            if blocks:
                if compiled.spec.design.type in ADAPTIVE_DESIGNS:
                    adaptive = read_adaptive(conn, compiled, include_machine=include_machine)
                cells = read_drift_cells(conn, compiled, include_machine=include_machine)
                drift = self._drift_log(compiled, cells)
        results = analyze_summary(summary, alpha=alpha, correction=correction, seed=seed, covariate=cov)
        if segmented is not None:
            by_segment = analyze_segmented(segmented, alpha=alpha, correction=correction, seed=seed)
            results = replace(results, segments=by_segment)
        if drift is None:
            return results
        analysed = None
        if adaptive is not None:  # the correction was checked by analyze_summary
            analysed = analyze_estimated(estimate_log(adaptive), summary, alpha=alpha,
                                         correction=cast(Correction, correction))
        return replace(results, adaptive=analysed, drift=monitor_log(drift))

    def read_adaptive(self, key: str, *, include_machine: bool = False) -> AdaptiveData:
        """What the adaptive analysis of a bandit or contextual design reads
        (:mod:`experiments.adaptive_reader`), in one consistent read of its own."""
        with consistent_read(self._core.engine) as conn:
            _, compiled = self._core.repo.current(conn, key)
            return read_adaptive(conn, compiled, include_machine=include_machine)

    def read_drift(self, key: str, *, include_machine: bool = False) -> DriftLog:
        """What the drift monitor reads (:mod:`experiments.drift_reader`), in one consistent read of its
        own."""
        with consistent_read(self._core.engine) as conn:
            _, compiled = self._core.repo.current(conn, key)
            cells = read_drift_cells(conn, compiled, include_machine=include_machine)
        return self._drift_log(compiled, cells)

    def _drift_log(self, compiled: CompiledExperiment, cells: tuple[DriftCell, ...]) -> DriftLog:
        spec = compiled.spec
        return DriftLog(spec.key, spec.design.type, spec.reward.window_hours, self._core.now(), cells,
                        tuple(compiled.arm_variants(a) for a in range(compiled.n_arms)))
