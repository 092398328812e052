"""The experiment service: one façade over the use cases, each in its own module.

- :mod:`~experiments.service.catalog`: create, list, read, pause / resume / archive, graduate;
- :mod:`~experiments.service.assignment`: assign one recipient or a whole send, preview;
- :mod:`~experiments.service.outcomes`: record outcome events;
- :mod:`~experiments.service.learning`: the learning loop, its schedule, the policy snapshots;
- :mod:`~experiments.service.reading`: summaries, segments, covariates, traffic, export, learning;
- :mod:`~experiments.service.explanation`: why a decision was made, what a policy relies on.

They share a :class:`~experiments.service.core.ServiceCore` (engine, clock, generator) and its
:class:`~experiments.store.repository.Repository`, which owns every query of an experiment's state.
State lives in the database only, so several API workers can share one PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy.engine import Engine

from experiments.adaptive_reader import AdaptiveData
from experiments.drift_reader import DriftLog
from experiments.export import EXPORT_CHUNK_ROWS, LogExport
from experiments.feature_context import store_features
from experiments.insight import FeatureImportance
from experiments.models import (
    CovariateSummary,
    Decision,
    ExperimentInfo,
    ExperimentSummary,
    ExperimentTraffic,
    LearningSummary,
    LoggedDecision,
    OutcomeCounts,
    OutcomeEvent,
    PolicySnapshotInfo,
    Preview,
    SegmentedSummary,
)
from experiments.preview import PreviewReport
from experiments.recipients import Erasure, erase_recipient
from experiments.service.assignment import Assigner, preview_seed
from experiments.service.catalog import STATUSES, Catalog
from experiments.service.core import ServiceCore, utcnow
from experiments.service.explanation import Explanation
from experiments.service.inputs import check_outcome_events
from experiments.service.learning import Learning
from experiments.service.outcomes import OutcomeRecording
from experiments.service.reading import Reading
from experiments.service.results import ResultsReading
from experiments.store.features import FeatureVersion

if TYPE_CHECKING:
    from experiments.features import FeatureSet

__all__ = ["STATUSES", "ExperimentService", "check_outcome_events", "preview_seed", "utcnow"]

Recipients = Sequence[tuple[str, Mapping[str, Any]]]


class ExperimentService:
    """Create experiments, assign recipients, record outcomes, learn, and summarise.

    Parameters
    ----------
    engine : sqlalchemy Engine
        From :func:`experiments.store.make_engine`; the tables must exist (``create_tables``).
    clock : callable returning an aware datetime
        The time of decisions and of outcomes without a timestamp (injected in tests).
    seed : int, optional
        Seeds the generator bandit policies draw with (None: fresh entropy from the OS).
    learn_batch : int
        Decisions, then late outcomes, learned per transaction (one policy snapshot per batch).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        seed: int | None = None,
        learn_batch: int = 5000,
    ) -> None:
        self._engine = engine
        core = ServiceCore(engine, clock, np.random.default_rng(seed))
        self.catalog = Catalog(core)
        self.learning_loop = Learning(core, self.catalog, learn_batch)
        self.assigner = Assigner(core)
        self.outcomes = OutcomeRecording(core)
        self.reading = Reading(core)
        self.explanation = Explanation(core, self.learning_loop)
        self.results_reading = ResultsReading(core, self.reading)
        #: The analysed results, read in one transaction (:meth:`ResultsReading.results
        #: <experiments.service.results.ResultsReading.results>`).
        self.results = self.results_reading.results
        self.core = core

    @property
    def engine(self) -> Engine:
        """The store the service works on."""
        return self.core.engine

    @property
    def clock(self) -> Callable[[], datetime]:
        """The service's clock (aware UTC)."""
        return self.core.clock

    # ---------------------------------------------------------------- catalog

    def create(self, spec: Any) -> ExperimentInfo:
        """:meth:`Catalog.create <experiments.service.catalog.Catalog.create>`."""
        return self.catalog.create(spec)

    def list(self) -> list[ExperimentInfo]:
        """Every experiment, by key."""
        return self.catalog.list()

    def get(self, key: str) -> ExperimentInfo:
        """One experiment; NotFound if there is none under ``key``."""
        return self.catalog.get(key)

    def set_status(self, key: str, status: Literal["running", "paused", "archived"]) -> ExperimentInfo:
        """Pause, resume or archive. Archiving is final (Conflict on any later change)."""
        return self.catalog.set_status(key, status)

    def graduate(self, key: str) -> ExperimentInfo:
        """End the apprenticeship of a warm-started policy: from now on it chooses (and explores)."""
        return self.catalog.graduate(key)

    # ---------------------------------------------------------------- assignment

    def assign(
        self,
        key: str,
        recipient_id: str,
        context: Mapping[str, Any],
        *,
        send_id: str | None = None,
        send_at: datetime | None = None,
        send_date: date | None = None,
    ) -> Decision:
        """Choose and log the variants of one recipient (a bad input is reported at ``recipient_id`` or
        ``context.<name>``); ``send_id``, ``send_at`` and ``send_date`` as in :meth:`assign_batch`."""
        return self.assigner.assign(
            key, [(recipient_id, context)], single=True, send_id=send_id, send_at=send_at,
            send_date=send_date,
        )[0]

    def assign_batch(
        self,
        key: str,
        recipients: Recipients,
        *,
        send_id: str | None = None,
        send_at: datetime | Sequence[datetime | None] | None = None,
        send_date: date | None = None,
    ) -> list[Decision]:
        """Choose and log the variants of a whole send, once per recipient of ``send_id``, sent at
        ``send_at`` or, for a ``send_time`` experiment, at the chosen hour of ``send_date``
        (:meth:`Assigner.assign <experiments.service.assignment.Assigner.assign>`)."""
        return self.assigner.assign(
            key, recipients, send_id=send_id, send_at=send_at, send_date=send_date
        )

    def check_recipients(self, key: str, recipients: Recipients) -> None:
        """Raise what :meth:`assign_batch` would raise for this input, and store nothing."""
        self.assigner.check_recipients(key, recipients)

    def preview(self, key: str, recipients: Recipients) -> list[Preview]:
        """What each recipient would get and why (rendered); nothing is logged."""
        return self.assigner.preview(key, recipients)

    def preview_report(self, key: str, recipients: Recipients) -> PreviewReport:
        """:meth:`preview` for a sample, with its coverage. Nothing is logged."""
        return self.assigner.preview_report(key, recipients)

    def store_features(self, features: FeatureSet) -> FeatureVersion:
        """Store a feature computation as a new version of the feature table, which specs with
        ``context_from: features`` read from at assignment (:mod:`experiments.feature_context`)."""
        return store_features(self.engine, features, self.clock())

    def erase_recipient(self, recipient_id: str, secret: bytes) -> Erasure:
        """Erase the recipient's data (:func:`experiments.recipients.erase_recipient`) and forget the
        feature rows this service keeps of them, so that its next assignment reads none."""
        erasure = erase_recipient(self.engine, recipient_id, secret)
        self.assigner.features.forget(recipient_id)
        return erasure

    # ---------------------------------------------------------------- outcomes and learning

    def record_outcomes(self, events: Sequence[OutcomeEvent]) -> OutcomeCounts:
        """Store outcome events; idempotent on ``event_id``, committed before returning."""
        return self.outcomes.record(events)

    def learn(self, key: str, *, batch: int | None = None, pause_seconds: float = 0.0) -> int:
        """Learn every mature decision and late outcome not learned yet; return the policy version
        (:meth:`Learning.learn <experiments.service.learning.Learning.learn>`)."""
        return self.learning_loop.learn(key, batch=batch, pause_seconds=pause_seconds)

    def policy_state(self, key: str) -> tuple[int, bytes]:
        """The latest policy snapshot of an adaptive experiment: ``(version, bytes)``."""
        return self.learning_loop.policy_state(key)

    def policy_history(self, key: str, limit: int | None = None) -> list[PolicySnapshotInfo]:
        """Every stored policy version of an experiment, oldest first (at most ``limit``, spread)."""
        return self.learning_loop.policy_history(key, limit)

    # ---------------------------------------------------------------- reading

    def summarize(self, key: str, *, include_machine: bool = False) -> ExperimentSummary:
        """Summary statistics of the current version, aggregated by SQL in the database."""
        return self.reading.summarize(key, include_machine=include_machine)

    def learning(self, key: str) -> LearningSummary:
        """Is it learning? The learning summary of an adaptive experiment."""
        return self.reading.learning(key)

    def summarize_with_learning(self, key: str) -> tuple[ExperimentSummary, LearningSummary | None]:
        """:meth:`summarize` and, for adaptive designs, :meth:`learning`, sharing one pass."""
        return self.reading.summarize_with_learning(key)

    def read_adaptive(self, key: str, *, include_machine: bool = False) -> AdaptiveData:
        """:meth:`ResultsReading.read_adaptive <experiments.service.results.ResultsReading.read_adaptive>`."""
        return self.results_reading.read_adaptive(key, include_machine=include_machine)

    def read_drift(self, key: str, *, include_machine: bool = False) -> DriftLog:
        """:meth:`ResultsReading.read_drift <experiments.service.results.ResultsReading.read_drift>`."""
        return self.results_reading.read_drift(key, include_machine=include_machine)

    def summarize_segments(self, key: str, attribute: str) -> SegmentedSummary:
        """The summary per value of a context attribute stored with the decisions."""
        return self.reading.summarize_segments(key, attribute)

    def summarize_covariate(self, key: str, attribute: str) -> CovariateSummary:
        """The sums CUPED needs for a numeric context attribute, per slot variant."""
        return self.reading.summarize_covariate(key, attribute)

    def traffic(self) -> list[ExperimentTraffic]:
        """Every experiment's current version with its decisions so far, by key."""
        return self.reading.traffic()

    def export_log_summary(self, key: str) -> LogExport:
        """How many learnable decisions the current version has, and the variants of each arm."""
        return self.reading.export_log_summary(key)

    def export_log_chunks(
        self, key: str, chunk_rows: int = EXPORT_CHUNK_ROWS
    ) -> Iterator[list[LoggedDecision]]:
        """:meth:`export_log` in chunks of ``chunk_rows`` decisions, read lazily."""
        return self.reading.export_log_chunks(key, chunk_rows)

    def export_log(self, key: str) -> list[LoggedDecision]:
        """Every learnable decision of the current version with its reward, in time order."""
        return self.reading.export_log(key)

    # ---------------------------------------------------------------- explanation

    def explain(self, decision_id: str) -> dict[str, Any]:
        """A logged decision with the reasons behind it, re-evaluated on the stored context."""
        return self.explanation.explain(decision_id)

    def insight(self, key: str, sample: int = 1000) -> FeatureImportance:
        """Which recipient attributes the current policy relies on (a contextual design only)."""
        return self.explanation.insight(key, sample)
