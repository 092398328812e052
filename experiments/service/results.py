"""The results use case: read everything an experiment's results need in one transaction (one
consistent snapshot of the log, while decisions and outcomes keep arriving), then analyse it."""

from __future__ import annotations

from experiments.adaptive_reader import AdaptiveData, read_adaptive
from experiments.drift_reader import DriftLog, read_drift_cells
from experiments.result_analysis import ExperimentResults, analyze_segmented, analyze_summary
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
    ) -> ExperimentResults:
        """The analysed results of ``key``'s current version.

        The covariate's sums, the summary by ``segment`` and the summary are read in one transaction,
        so they describe the same decisions and outcomes. ``covariate`` CUPED-adjusts the reward
        comparisons; ``segment`` adds the results per value of that attribute
        (:attr:`ExperimentResults.segments`).

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
        with consistent_read(self._core.engine) as conn:
            cov = None if covariate is None else reading.covariate_on(conn, key, covariate)
            segmented = None if segment is None else reading.segments_on(conn, key, segment)
            summary = reading.summary_on(conn, key, include_machine)[2]
        results = analyze_summary(summary, alpha=alpha, correction=correction, seed=seed, covariate=cov)
        if segmented is None:
            return results
        by_segment = analyze_segmented(segmented, alpha=alpha, correction=correction, seed=seed)
        return ExperimentResults(
            results.summary, results.analyses, results.skipped, results.factorials, results.covariate,
            results.srm, by_segment,
        )

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
        spec = compiled.spec
        return DriftLog(key, spec.design.type, spec.reward.window_hours, self._core.now(), cells,
                        tuple(compiled.arm_variants(a) for a in range(compiled.n_arms)))
