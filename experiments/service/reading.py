"""Reading: the summaries of an experiment (overall, per segment, with a covariate), its learning
progress, the traffic of every experiment, and the export of its log. Each answer is read on one
connection."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy.engine import Connection

from analysis.errors import AnalysisInputError
from experiments.assignment import CompiledExperiment
from experiments.errors import Conflict, InvalidInput
from experiments.event_values import uncounted_value_counts
from experiments.export import (
    EXPORT_CHUNK_ROWS,
    LogExport,
    arm_variants,
    count_learnable,
    iter_logged_decisions,
    logged_decision,
)
from experiments.learning_progress import build_learning_summary
from experiments.limits import MAX_SEGMENTS
from experiments.models import (
    CovariateSummary,
    ExperimentSummary,
    ExperimentTraffic,
    LearningSummary,
    LoggedDecision,
    SegmentedSummary,
)
from experiments.overview import build_traffic, version_counts
from experiments.results import (
    ResultGroups,
    build_covariate_summary,
    build_segmented_summary,
    build_summary,
    intended_shares,
)
from experiments.send_time import SEND_TIME_SLOT
from experiments.service.core import ServiceCore
from experiments.spec import ATTRIBUTE_PATTERN
from experiments.store.breakdown_tables import stored_covariate_stats, stored_segment_stats
from experiments.store.learning_log import after_learning_counts
from experiments.store.segments import segment_arm_stats
from experiments.store.snapshot_summaries import recorded_learned_reward
from experiments.store.summaries import (
    DecisionGroup,
    all_rewards,
    apprentice_agreement,
    arm_stats,
    daily_stats,
    event_types,
    excluded_counts,
    fallback_stats,
    learnable_decisions,
    log_cells,
    summary_day_cells,
    version_groups,
)


def check_attribute(compiled: CompiledExperiment, attribute: str, field: str) -> str:
    """``attribute`` when it names a context attribute stored with the decisions (or, as a segment,
    ``send_time``: the send hour an experiment chose), else :class:`InvalidInput` at ``field``."""
    if not isinstance(attribute, str) or not re.fullmatch(ATTRIBUTE_PATTERN, attribute):
        raise InvalidInput(
            field, f"{attribute!r} is not an attribute name (1 to 64 characters, no quotes, "
            "backslashes or control characters)"
        )
    if attribute not in compiled.stored_attributes and not (
        field == "segment" and attribute == SEND_TIME_SLOT and compiled.send_time is not None
    ):
        stored = sorted(compiled.stored_attributes)
        raise InvalidInput(
            field, f"{attribute!r} is not stored with the decisions of {compiled.spec.key!r} "
            f"(stored: {stored}); list it under the spec's 'record' to store it from now on"
        )
    return attribute


class Reading:
    """Summaries, learning progress, traffic and exports, by SQL aggregation in the database."""

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    def _shares(self, conn: Connection, compiled: CompiledExperiment) -> dict:
        probs = self._core.repo.latest_arm_probabilities(conn, compiled)
        return intended_shares(compiled, None if probs is None else np.asarray(probs))

    def summary_on(
        self, conn: Connection, key: str, include_machine: bool = False
    ) -> tuple[CompiledExperiment, list[DecisionGroup], ExperimentSummary]:
        """The summary of ``key``'s current version read on ``conn``, with the compiled spec and the
        cells it summed (the rollups' cells summed over policy versions, or with ``include_machine``
        the log's)."""
        _, compiled = self._core.repo.current(conn, key)
        # machine events are left out of the rollups: with them, the cells come from the log in full
        cells = log_cells(conn, compiled, include_machine=True) if include_machine else summary_day_cells(
            conn, compiled)
        groups = ResultGroups(
            by_arm=arm_stats(conn, compiled, cells),
            by_reason=fallback_stats(conn, compiled, cells),
            by_day=daily_stats(conn, compiled, cells),
            excluded=excluded_counts(conn, compiled),
            apprentice=apprentice_agreement(conn, compiled),
            after_learning=after_learning_counts(conn, compiled),
            uncounted_values=uncounted_value_counts(conn, compiled),
        )
        shares = self._shares(conn, compiled)
        return compiled, cells, build_summary(compiled, groups, shares, include_machine=include_machine)

    def summarize(self, key: str, *, include_machine: bool = False) -> ExperimentSummary:
        """Summary statistics of the current version, aggregated by SQL in the database.

        For A/B and multivariate designs ``intended_share`` is the variant's weight share; for bandits
        the current policy's marginal probability; for contextual designs the uniform share.
        Machine-made outcomes are left out and counted, unless ``include_machine`` (the policy never
        learns from them either way). The sums are read from the rollups (a few rows per arm and day,
        :mod:`experiments.store.rollups`); with ``include_machine`` they are computed from the log in
        full, as the rollups leave machine events out.
        """
        with self._core.engine.connect() as conn:
            return self.summary_on(conn, key, include_machine)[2]

    def learning_on(
        self, conn: Connection, compiled: CompiledExperiment, groups: Sequence[DecisionGroup]
    ) -> LearningSummary:
        """The learning summary of ``compiled``'s version read on ``conn`` from its decision groups."""
        key = compiled.spec.key
        times = self._core.repo.snapshot_times(conn, key, compiled.version)
        reward = recorded_learned_reward(conn, key, compiled.version)
        return build_learning_summary(compiled, groups, times, reward)

    def learning(self, key: str) -> LearningSummary:
        """Is it learning? Per policy version of the current spec version, where the learnable decisions
        went (per slot variant) and how many explored; and the decisions learned from so far with their
        total reward. The counts come from the rollups' cells (by policy version and arm); the total
        reward as the latest snapshot of the version records it.

        Raises
        ------
        Conflict
            The design is not adaptive (no policy learns).
        """
        with self._core.engine.connect() as conn:
            _, compiled = self._core.repo.current(conn, key)
            if not compiled.adaptive:
                raise Conflict(
                    f"experiment {key!r} is a {compiled.spec.design.type} design: no policy learns"
                )
            return self.learning_on(conn, compiled, version_groups(conn, compiled))

    def summarize_with_learning(self, key: str) -> tuple[ExperimentSummary, LearningSummary | None]:
        """:meth:`summarize` and, for adaptive designs, :meth:`learning` (None otherwise), on one
        connection: the summary from the rollups' cells summed over policy versions, the learning from
        them summed over days (each sum done by the database)."""
        with self._core.engine.connect() as conn:
            compiled, _, summary = self.summary_on(conn, key)
            learning = None
            if compiled.adaptive:
                learning = self.learning_on(conn, compiled, version_groups(conn, compiled))
        return summary, learning

    def traffic(self) -> list[ExperimentTraffic]:
        """Every experiment's current version with its decisions so far, by key (the experiments list):
        counts over ranges of an index, no summary (:mod:`experiments.overview`)."""
        repo = self._core.repo
        with self._core.engine.connect() as conn:
            return [
                build_traffic(compiled, version_counts(conn, compiled))
                for compiled in (repo.compiled_of(r) for r in repo.experiments(conn))
            ]

    def segments_on(self, conn: Connection, key: str, attribute: str) -> SegmentedSummary:
        """:meth:`summarize_segments` read on ``conn``."""
        _, compiled = self._core.repo.current(conn, key)
        check_attribute(compiled, attribute, "segment")
        groups = stored_segment_stats(conn, key, compiled.version, attribute, event_types(compiled))
        if groups is None:  # more values than segments may have: not kept, so the log is read
            groups = segment_arm_stats(conn, compiled, attribute)
        values = {seg for seg, _ in groups if seg is not None}
        if len(values) > MAX_SEGMENTS:
            raise InvalidInput(
                "segment", f"{attribute!r} has {len(values):,} values; segments need an attribute with "
                f"at most {MAX_SEGMENTS} (a category such as country or device, not an id or a number)"
            )
        return build_segmented_summary(compiled, attribute, groups, self._shares(conn, compiled))

    def summarize_segments(self, key: str, attribute: str) -> SegmentedSummary:
        """The summary per value of a context attribute stored with the decisions, read from the rollups
        (:mod:`experiments.store.breakdown_rollups`; the log's ``GROUP BY`` is their reference).

        Raises
        ------
        InvalidInput
            ``segment``: the attribute is not stored with the decisions, or has more than
            :data:`MAX_SEGMENTS` values (an identifier or a continuous number is not a segment).
        """
        with self._core.engine.connect() as conn:
            return self.segments_on(conn, key, attribute)

    def covariate_on(self, conn: Connection, key: str, attribute: str) -> CovariateSummary:
        """:meth:`summarize_covariate` read on ``conn``."""
        _, compiled = self._core.repo.current(conn, key)
        check_attribute(compiled, attribute, "covariate")
        try:
            arms = stored_covariate_stats(conn, key, compiled.version, attribute)
            return build_covariate_summary(compiled, attribute, arms)
        except AnalysisInputError:  # a sum that is not finite
            raise InvalidInput("covariate", (
                f"{attribute!r} cannot adjust the results: its stored values are too large to sum (a value "
                f"beyond ±2**53, logged before that bound)")) from None

    def summarize_covariate(self, key: str, attribute: str) -> CovariateSummary:
        """The sums CUPED needs for a numeric context attribute recorded at send time, per slot variant,
        read from the rollups (:mod:`experiments.store.breakdown_rollups`).

        Raises
        ------
        InvalidInput
            ``covariate``: the attribute is not stored with the decisions.
        """
        with self._core.engine.connect() as conn:
            return self.covariate_on(conn, key, attribute)

    def export_log_summary(self, key: str) -> LogExport:
        """How many learnable decisions the current version has, and the variants of each arm."""
        with self._core.engine.connect() as conn:
            record, compiled = self._core.repo.current(conn, key)
            return LogExport(key, record.version, count_learnable(conn, compiled), arm_variants(compiled))

    def export_log_chunks(
        self, key: str, chunk_rows: int = EXPORT_CHUNK_ROWS
    ) -> Iterator[list[LoggedDecision]]:
        """:meth:`export_log` in chunks of ``chunk_rows`` decisions, read lazily (bounded memory)."""
        with self._core.engine.connect() as conn:
            _, compiled = self._core.repo.current(conn, key)
            yield from iter_logged_decisions(conn, compiled, chunk_rows)

    def export_log(self, key: str) -> list[LoggedDecision]:
        """Every learnable decision of the current version with its reward, in time order (for replay)."""
        with self._core.engine.connect() as conn:
            _, compiled = self._core.repo.current(conn, key)
            id_to_reward = all_rewards(conn, compiled)
            rows = conn.execute(learnable_decisions(compiled))
            return [logged_decision(r, id_to_reward.get(r.id, 0.0)) for r in rows]
