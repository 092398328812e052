"""The decision and outcome log: SQLModel tables, the engine, and bulk writes.

SQLite (WAL mode, ``synchronous=NORMAL``, a busy timeout) is the embedded default; PostgreSQL
(``postgresql+psycopg://``) is the production store shared by several API workers. Times are stored as
naive UTC.

Durability on SQLite: in WAL mode with ``synchronous=NORMAL`` a commit is written to the write-ahead log
but not flushed to the disk (the log is flushed at checkpoints). A committed transaction survives the
process being killed (SIGKILL, an out-of-memory kill), which is what "committed before the answer
leaves" promises; a power cut or an operating-system crash may undo the last commits (never corrupt the
database). ``FULL`` would flush on every commit: 6 to 8 ms each on the shared benchmark machine, more
than a whole assignment. PostgreSQL keeps its own setting (``synchronous_commit=on`` by default: each
commit is flushed).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    and_,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, create_engine

from experiments.limits import (
    DECISION_ID_LENGTH,
    MAX_ATTRIBUTE_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_REASON_LENGTH,
    MAX_STATUS_LENGTH,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite's ``synchronous`` in WAL mode: durable against a killed process, not against a power cut.
SQLITE_SYNCHRONOUS = "NORMAL"


def _utc_time() -> Any:
    """A naive-UTC timestamp column (each field needs its own Column object)."""
    return Field(sa_column=Column(DateTime(timezone=False), nullable=False))


class ExperimentRow(SQLModel, table=True):
    """The current state of one experiment (one row per key)."""

    __tablename__ = "experiments"
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int
    spec: str  # canonical JSON of the current version's spec
    status: str = Field(max_length=MAX_STATUS_LENGTH)
    apprentice: bool = False  # a warm-started policy that does not choose yet
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc_time()
    updated_at: datetime = _utc_time()


class ExperimentVersionRow(SQLModel, table=True):
    """Every version of every spec, kept so old decisions can be read with the spec they were made under."""

    __tablename__ = "experiment_versions"
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True)
    spec: str
    created_at: datetime = _utc_time()


class DecisionRow(SQLModel, table=True):
    """One logged assignment. ``fallback`` decisions (holdout, ineligible, ...) are never learned from.

    ``ix_decisions_summary`` covers the full scan's count of a version's decisions
    (:func:`experiments.store.summaries.log_cells`, what verification and a rebuild of the rollups read):
    its ``GROUP BY`` columns lead, in order, and the columns it counts follow, so the count reads the
    index alone, in order, without the table. The
    experiments list counts each arm's decisions on a range of it (:mod:`experiments.overview`).
    ``ix_decisions_adaptive`` covers the adaptive results' inverse-propensity sums per policy version and
    arm (:mod:`experiments.adaptive_reader`), read in order without the table.
    """

    __tablename__ = "decisions"
    __table_args__ = (
        Index(
            "ix_decisions_summary",
            "experiment_key", "version", "fallback", "reason", "arm", "day", "policy_version",
            "explored", "learned_version", "agreement",
        ),
        Index("ix_decisions_learn", "experiment_key", "version", "learned_version", "created_at"),
        Index(
            "ix_decisions_adaptive",
            "experiment_key", "version", "fallback", "policy_version", "arm", "propensity",
        ),
        Index(
            "uq_decisions_send", "experiment_key", "send_id", "recipient_id", unique=True,
            sqlite_where=text("send_id IS NOT NULL"), postgresql_where=text("send_id IS NOT NULL"),
        ),
    )
    id: str = Field(primary_key=True, max_length=DECISION_ID_LENGTH)
    experiment_key: str = Field(max_length=MAX_KEY_LENGTH)
    version: int
    recipient_id: str
    variants: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    arm: int
    propensity: float
    policy_version: int | None = None
    explored: bool = False
    fallback: bool = False
    reason: str = Field(max_length=MAX_REASON_LENGTH)
    context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _utc_time()
    day: date
    learned_version: int | None = None
    agreement: float | None = None  # apprentice decisions: the policy's probability of the same choice
    # the send (campaign) the decision belongs to: one decision per (experiment, send, recipient)
    send_id: str | None = Field(default=None, max_length=128)
    # when the email goes out (None: at the decision): reward windows and learning delays start here
    send_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=False), nullable=True))
    # delays: model: the trial weight a decision was learned with while its window was open (None: 1)
    learned_weight: float | None = None
    # send_time experiments: the probability of the chosen hour alone (the timing policy's propensity)
    send_time_propensity: float | None = None
    # context_from: features: the feature version the context was filled from (None: none stored)
    feature_version: int | None = None


class FrequencyCountRow(SQLModel, table=True):
    """One recipient's recent sends within a frequency-cap scope (:mod:`experiments.frequency`): the
    send times, naive UTC ISO text, oldest first. Read and written under a row lock per recipient."""

    __tablename__ = "frequency_counts"
    scope: str = Field(primary_key=True, max_length=2 * MAX_KEY_LENGTH)
    recipient_id: str = Field(primary_key=True)
    sends: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class OutcomeRow(SQLModel, table=True):
    """An outcome of a known decision. ``attributed`` = inside the reward window; ``machine`` = made by
    a machine (Apple Mail Privacy Protection, a link scanner), left out of rewards and learning (results
    count it when asked).

    ``learned_version`` is the policy snapshot that learned the outcome (None: not yet). Outcomes are
    learned one by one, not by an id cursor: with their decision, or, when they arrive after it was
    learned, as a revision of its reward (``after_learning = "revised"``) or, when the policy cannot
    revise, counted and left out (``after_learning = "not_learnable"``, ``learned_version`` the
    snapshot current then).

    ``ix_outcomes_summary`` covers the results' attribution (:mod:`experiments.store.summaries`): the
    version's attributed outcomes in decision order, with every column the per-decision ``GROUP BY``
    reads, so it streams from the index without the table or a sort; ``machine`` serves the count of
    excluded events.
    """

    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_experiment", "experiment_key", "decision_id"),
        Index(
            "ix_outcomes_summary",
            "experiment_key", "version", "attributed", "decision_id", "arm", "day", "reason", "fallback",
            "type", "value", "machine",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=MAX_ID_LENGTH)
    decision_id: str = Field(max_length=DECISION_ID_LENGTH)
    experiment_key: str = Field(max_length=MAX_KEY_LENGTH)
    version: int
    type: str = Field(max_length=MAX_EVENT_TYPE_LENGTH)
    value: float | None = None
    time: datetime = _utc_time()
    received_at: datetime = _utc_time()
    machine: bool = False
    attributed: bool = True
    learned_version: int | None = None
    # "revised" | "not_learnable"
    after_learning: str | None = Field(default=None, max_length=MAX_STATUS_LENGTH)
    # copied from the decision (which never changes) so results group outcomes without a join
    arm: int
    fallback: bool
    reason: str = Field(max_length=MAX_REASON_LENGTH)
    day: date


class OrphanOutcomeRow(SQLModel, table=True):
    """An outcome whose decision is unknown: kept aside, counted, never attributed."""

    __tablename__ = "orphan_outcomes"
    event_id: str = Field(primary_key=True, max_length=MAX_ID_LENGTH)
    decision_id: str
    type: str = Field(max_length=MAX_EVENT_TYPE_LENGTH)
    value: float | None = None
    time: datetime = _utc_time()
    received_at: datetime = _utc_time()
    machine: bool = False


class PolicySnapshotRow(SQLModel, table=True):
    """A stored policy state. ``(experiment_key, version)`` is unique: a safety net behind the lock that
    makes learners take turns (:func:`lock_for_learning`). Beside the state it keeps what the pages show
    of it (:mod:`experiments.store.snapshot_summaries`), so that no page restores a state or scans the
    log for them."""

    __tablename__ = "policy_snapshots"
    __table_args__ = (UniqueConstraint("experiment_key", "version", name="uq_policy_snapshot_version"),)
    id: int | None = Field(default=None, primary_key=True)
    experiment_key: str = Field(max_length=MAX_KEY_LENGTH)
    version: int
    spec_version: int
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # outcomes learned up to this snapshot, in total (with their decisions or as revisions); until the
    # learning loop tracked each outcome (``outcomes.learned_version``) it was the largest outcome id
    cursor: int = 0
    learned_decisions: int = 0  # decisions learned from in total, up to this snapshot
    created_at: datetime = _utc_time()
    # the total reward the spec version's policy has learned from, up to this snapshot (each learned
    # decision's reward from the outcomes it learned: experiments.store.summaries.learned_reward over the
    # log), kept by the learning transaction; None only in snapshots older than the latest of their spec
    # version when the column was added
    learned_reward: float | None = None
    # a bandit design's distribution over the arms in this state (probabilities(1)[0]); None for other
    # designs or a state that cannot be read
    arm_probabilities: list[float] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class FeatureVersionRow(SQLModel, table=True):
    """One stored feature computation (``sendlab features refresh``). Its rows in ``features`` are
    written in the transaction that inserts it, so a version is read whole or not at all."""

    __tablename__ = "feature_versions"
    version: int | None = Field(default=None, primary_key=True)
    as_of: datetime = _utc_time()
    settings: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    recipients: int
    events: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))  # read, used, after_as_of
    model: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # auc, ...
    created_at: datetime = _utc_time()


class FeatureRow(SQLModel, table=True):
    """One recipient's features in one version, as the context attributes assignment reads."""

    __tablename__ = "features"
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    recipient_id: str = Field(primary_key=True, max_length=MAX_ID_LENGTH)
    attributes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


#: ``policy_version`` of a rollup whose decisions were made without a policy snapshot (a key column
#: cannot be NULL); snapshot versions start at 1.
NO_POLICY_VERSION = -1


class RollupRow(SQLModel, table=True):
    """The decisions of one group of a spec version summed (:mod:`experiments.store.rollups`): how many,
    how many explored and were learned from, and their rewards' sum, sum of squares and of cubes over
    their attributed, non-machine outcomes. Kept in the transactions that write the rows it sums.

    The key is the group of :func:`experiments.store.summaries.decision_groups`; ``policy_version`` is
    :data:`NO_POLICY_VERSION` for decisions made without a policy.
    """

    __tablename__ = "rollups"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    fallback: bool = Field(primary_key=True)
    reason: str = Field(primary_key=True, max_length=MAX_REASON_LENGTH)
    arm: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    day: date = Field(primary_key=True)
    policy_version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    decisions: int = 0
    explored: int = 0
    learned: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    reward_sum_cubes: float = 0.0


class RollupEventRow(SQLModel, table=True):
    """Of one rollup group, the decisions with at least one attributed, non-machine event of ``type``."""

    __tablename__ = "rollup_events"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    fallback: bool = Field(primary_key=True)
    reason: str = Field(primary_key=True, max_length=MAX_REASON_LENGTH)
    arm: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    day: date = Field(primary_key=True)
    policy_version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    type: str = Field(primary_key=True, max_length=MAX_EVENT_TYPE_LENGTH)
    decisions: int = 0


class RollupCountRow(SQLModel, table=True):
    """Outcomes of a spec version counted by ``kind`` and event ``type``: those the results leave out
    (``machine_in_window``, ``machine_late``, ``late``) and those carrying a value the reward does not
    count (``uncounted_value``)."""

    __tablename__ = "rollup_counts"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(primary_key=True, max_length=MAX_STATUS_LENGTH)
    type: str = Field(primary_key=True, max_length=MAX_EVENT_TYPE_LENGTH)
    outcomes: int = 0


class RollupAdaptiveRow(SQLModel, table=True):
    """The inverse-propensity sums of one (policy version, arm) of a spec version's learnable decisions
    (:mod:`experiments.breakdown_deltas`): with ``metric`` empty, the decisions, :math:`\\sum 1/p`,
    :math:`\\sum 1/p^2`, the smallest propensity and the reward's sums; with ``metric`` an event type,
    the sums of its 0/1 flag. ``policy_version`` is :data:`NO_POLICY_VERSION` without a policy."""

    __tablename__ = "rollup_adaptive"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    policy_version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    arm: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    metric: str = Field(primary_key=True, max_length=MAX_EVENT_TYPE_LENGTH)
    decisions: int = 0
    inv_p_sum: float = 0.0
    inv_p2_sum: float = 0.0
    min_propensity: float | None = None
    value_sum: float = 0.0
    value_sum_squares: float = 0.0
    w_value_sum: float = 0.0
    w2_value_sum: float = 0.0
    w2_value_squares_sum: float = 0.0


class RollupSegmentRow(SQLModel, table=True):
    """A spec version's learnable decisions per segment attribute, segment text (``has_value`` false:
    the attribute missing, ``segment`` empty) and arm: with ``type`` empty, the decisions and their
    rewards' sums; with ``type`` an event type, the decisions with such an event. The key holds a hash
    of the text (``segment_key``: a context value may be longer than an index entry may be)."""

    __tablename__ = "rollup_segments"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    attribute: str = Field(primary_key=True, max_length=MAX_ATTRIBUTE_LENGTH)
    has_value: bool = Field(primary_key=True)
    segment_key: str = Field(primary_key=True, max_length=32)
    arm: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    type: str = Field(primary_key=True, max_length=MAX_EVENT_TYPE_LENGTH)
    segment: str = Field(sa_column=Column(Text, nullable=False))
    decisions: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    reward_sum_cubes: float = 0.0


class RollupOverflowRow(SQLModel, table=True):
    """A segment attribute of a spec version with more values than a segment may have
    (:data:`experiments.limits.MAX_SEGMENTS`: an identifier or a continuous number): its rows in
    ``rollup_segments`` are no longer kept, and results by it read the log."""

    __tablename__ = "rollup_segment_overflow"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    attribute: str = Field(primary_key=True, max_length=MAX_ATTRIBUTE_LENGTH)


class RollupCovariateRow(SQLModel, table=True):
    """A spec version's learnable decisions per covariate attribute and arm, and over those whose
    attribute is a number ``x`` (``n``) the sums CUPED needs with the reward ``y``."""

    __tablename__ = "rollup_covariates"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    attribute: str = Field(primary_key=True, max_length=MAX_ATTRIBUTE_LENGTH)
    arm: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    decisions: int = 0
    n: int = 0
    sum_x: float = 0.0
    sum_x_squares: float = 0.0
    sum_y: float = 0.0
    sum_y_squares: float = 0.0
    sum_xy: float = 0.0
    magnitude: float = 0.0  # the rounding scale of the sums (experiments.breakdown_deltas.MAGNITUDE)
# -- drift rollups (experiments.store.drift_rollups) --
#: ``learned_version`` of a drift rollup whose decisions no snapshot has learned yet.
NO_LEARNED_VERSION = -1


class DriftRollupRow(SQLModel, table=True):
    """The learnable (non-fallback) decisions of one (day, policy version, learned version, arm) of a
    spec version, and their rewards' sum and sum of squares (attributed, non-machine outcomes): what
    the drift monitor reads (:mod:`experiments.store.drift_rollups`). ``policy_version`` is
    :data:`NO_POLICY_VERSION`, ``learned_version`` :data:`NO_LEARNED_VERSION` when absent."""

    __tablename__ = "drift_rollups"
    experiment_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    day: date = Field(primary_key=True)
    policy_version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    learned_version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    arm: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    decisions: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0


experiments_table = ExperimentRow.__table__  # type: ignore[attr-defined]
versions_table = ExperimentVersionRow.__table__  # type: ignore[attr-defined]
decisions_table = DecisionRow.__table__  # type: ignore[attr-defined]
outcomes_table = OutcomeRow.__table__  # type: ignore[attr-defined]
orphans_table = OrphanOutcomeRow.__table__  # type: ignore[attr-defined]
snapshots_table = PolicySnapshotRow.__table__  # type: ignore[attr-defined]
feature_versions_table = FeatureVersionRow.__table__  # type: ignore[attr-defined]
features_table = FeatureRow.__table__  # type: ignore[attr-defined]
frequency_table = FrequencyCountRow.__table__  # type: ignore[attr-defined]
rollups_table = RollupRow.__table__  # type: ignore[attr-defined]
rollup_events_table = RollupEventRow.__table__  # type: ignore[attr-defined]
rollup_counts_table = RollupCountRow.__table__  # type: ignore[attr-defined]
rollup_adaptive_table = RollupAdaptiveRow.__table__  # type: ignore[attr-defined]
rollup_segments_table = RollupSegmentRow.__table__  # type: ignore[attr-defined]
rollup_covariates_table = RollupCovariateRow.__table__  # type: ignore[attr-defined]
rollup_overflow_table = RollupOverflowRow.__table__  # type: ignore[attr-defined]
drift_rollups_table = DriftRollupRow.__table__  # type: ignore[attr-defined]

#: Predicate of the outcomes the learning loop has still to learn. A partial index over exactly these
#: rows stays as small as the backlog (queries must repeat the predicate for SQLite to use it).
OUTCOME_PENDING = and_(
    outcomes_table.c.learned_version.is_(None),
    outcomes_table.c.attributed.is_(True),
    outcomes_table.c.machine.is_(False),
    outcomes_table.c.fallback.is_(False),
)
Index(
    "ix_outcomes_pending",
    outcomes_table.c.experiment_key,
    outcomes_table.c.version,
    outcomes_table.c.day,
    sqlite_where=OUTCOME_PENDING,
    postgresql_where=OUTCOME_PENDING,
)
# every column the pages read of a snapshot but its state (on SQLite the columns after a large state are
# read through its overflow pages): the policy history and the learning summary read this index alone
Index(
    "ix_policy_snapshots_versions",
    snapshots_table.c.experiment_key,
    snapshots_table.c.version,
    snapshots_table.c.spec_version,
    snapshots_table.c.created_at,
    snapshots_table.c.cursor,
    snapshots_table.c.learned_decisions,
)
Index(
    "ix_outcomes_after_learning",
    outcomes_table.c.experiment_key,
    outcomes_table.c.version,
    outcomes_table.c.after_learning,
    sqlite_where=outcomes_table.c.after_learning.is_not(None),
    postgresql_where=outcomes_table.c.after_learning.is_not(None),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite (WAL, ``synchronous=NORMAL``, busy timeout) or PostgreSQL (psycopg 3).

    ``postgresql://`` and ``postgres://`` URLs are taken as ``postgresql+psycopg://``.
    """
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql+psycopg://"):
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(f"url: unsupported database {url.split(':', 1)[0]!r} (use sqlite or postgresql+psycopg)")


def to_db_time(moment: datetime) -> datetime:
    """Naive UTC, as stored."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db_time(moment: datetime) -> datetime:
    """Aware UTC, as returned."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


