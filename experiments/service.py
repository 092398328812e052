"""The experiment service: specs, assignment, outcomes, learning and summaries over one database.

State lives in the database only: policy snapshots are read back (and cached by version) on every
assignment, so several API workers can share one PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import numpy as np
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from bandit import Policy, PolicyError, load_policy, make_policy
from experiments.adaptive_reader import AdaptiveData, read_adaptive
from experiments.arms import combination_features
from experiments.assignment import (
    CompiledExperiment,
    assign,
    compile_experiment,
    explain,
    render_batch,
    screen,
    slot_content,
)
from experiments.content import Rendering
from experiments.delayed_learning import learn_with_delays
from experiments.drift_reader import DriftLog, read_drift_cells
from experiments.errors import (
    NUL_REASON,
    AssignmentError,
    Conflict,
    InvalidInput,
    NotFound,
    Problem,
    SpecError,
)
from experiments.export import (
    EXPORT_CHUNK_ROWS,
    LogExport,
    arm_variants,
    count_learnable,
    iter_logged_decisions,
)
from experiments.group_commit import GroupCommit
from experiments.hashing import unit_hash
from experiments.insight import (
    FeatureImportance,
    contribution_lines,
    decided_by,
    feature_contributions,
    feature_importance,
)
from experiments.learning import after_learning_counts, chunks, learn_one_batch
from experiments.learning_progress import build_learning_summary
from experiments.models import (
    FALLBACK_REASONS,
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
    VariantChoice,
)
from experiments.overview import build_traffic, version_counts
from experiments.preview import PreviewReport, coverage, describe_recipients
from experiments.results import (
    ResultGroups,
    build_covariate_summary,
    build_segmented_summary,
    build_summary,
    intended_shares,
)
from experiments.rules import find_conflicts
from experiments.spec import ATTRIBUTE_PATTERN, ExperimentSpec, check_spec, content_warnings
from experiments.store import (
    decision_encoding,
    decisions_table,
    experiments_table,
    from_db_time,
    insert_decisions,
    insert_ignoring_duplicates,
    orphans_table,
    outcomes_table,
    snapshots_table,
    to_db_time,
    versions_table,
)
from experiments.summaries import (
    DecisionGroup,
    all_rewards,
    apprentice_agreement,
    arm_stats,
    covariate_arm_stats,
    daily_stats,
    decision_groups,
    excluded_counts,
    fallback_stats,
    learnable_decisions,
    learned_reward,
    segment_arm_stats,
)

log = logging.getLogger(__name__)

STATUSES = ("running", "paused", "archived")
MAX_ID_LENGTH = 128
#: The largest outcome value in absolute value (revenue of one event): a decision's reward adds its
#: values up, and results sum rewards, their squares and cubes over every decision, which must stay finite.
MAX_OUTCOME_VALUE = 1e12
MAX_SEGMENTS = 50  # distinct values of a segment attribute


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def preview_seed(key: str, recipient_ids: Sequence[str]) -> int:
    """The seed of a preview's own generator: a hash of the experiment key and the recipient ids."""
    digest = hashlib.sha256("\x1f".join(["preview", key, *recipient_ids]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


#: How deep a stored context value may nest (lists and mappings).
MAX_CONTEXT_DEPTH = 32


def _json_value_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored as JSON (on PostgreSQL too), or None: a JSON value with finite
    numbers, no NUL character in a string or a key, nested at most :data:`MAX_CONTEXT_DEPTH` levels."""
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        return NUL_REASON if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a JSON value (finite numbers), got {value!r}"
    if isinstance(value, list | tuple | Mapping):
        if depth >= MAX_CONTEXT_DEPTH:
            return f"nested too deeply (at most {MAX_CONTEXT_DEPTH} levels)"
        if isinstance(value, Mapping):
            for k in value:
                if not isinstance(k, str):
                    return f"must be a JSON value (string keys), got the key {k!r}"
                if "\x00" in k:
                    return f"a key {NUL_REASON}"
        for item in value.values() if isinstance(value, Mapping) else value:
            problem = _json_value_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    return f"must be a JSON value (finite numbers), got {value!r}"


def _stored_key(key: Any, what: str = "experiment") -> None:
    """:class:`NotFound` for a key or id that nothing stored can have (not a string, or holding a NUL
    character, which PostgreSQL cannot even be asked about), before any query."""
    if not isinstance(key, str) or "\x00" in key:
        raise NotFound(key if isinstance(key, str) else repr(key), what)


def _recipient_field(i: int, field: str, single: bool) -> str:
    """Where a problem of the ``i``-th recipient lies: ``recipients[i].<field>``, or ``<field>`` when the
    call names a single recipient (``POST .../assign``, ``sendlab assign -r``: there is no list)."""
    return field if single else f"recipients[{i}].{field}"


@cache
def _assign_state_query() -> Select:
    """One row per experiment: version, status, apprentice, and its latest policy snapshot's version
    and spec version (NULL without a snapshot). Built once, on first use."""
    e, s = experiments_table, snapshots_table
    key = bindparam("key")
    latest = select(func.max(s.c.version)).where(s.c.experiment_key == key).scalar_subquery()
    return (
        select(
            e.c.version,
            e.c.status,
            e.c.apprentice,
            s.c.version.label("policy_version"),
            s.c.spec_version.label("policy_spec_version"),
        )
        .select_from(e.outerjoin(s, (s.c.experiment_key == e.c.key) & (s.c.version == latest)))
        .where(e.c.key == key)
    )


def _plain_choices(compiled: CompiledExperiment) -> list[list[VariantChoice]]:
    """Per slot and position, the choice as shown when the variant's content is plain text."""
    return [
        [VariantChoice(v.id, v.content) for v in compiled.spec.slots[slot].variants]
        for slot in compiled.slot_names
    ]


_EPOCH = datetime(1970, 1, 1)


def _decision_ids(n: int, moment: datetime) -> list[str]:
    """``n`` version-7 UUIDs (RFC 9562) as strings: the decision time, then 74 random bits.

    ``moment`` (naive UTC) gives the first 48 bits, in milliseconds since 1970; the random bits come
    from one read of ``os.urandom`` and are sorted within the batch. So a send's decisions follow one
    another in the primary-key index instead of landing on random pages of it (the insert of 100,000
    decisions into SQLite costs about 40% less CPU than with version-4 ids). A few ids are written in
    plain Python, many at once with numpy.
    """
    millis = max(0, (moment - _EPOCH) // timedelta(milliseconds=1)) & (2**48 - 1)
    prefix = millis.to_bytes(6, "big")
    if n <= 64:
        random = os.urandom(10 * n)
        raws = sorted(
            prefix + bytes(((r[0] & 0x0F) | 0x70, r[1], (r[2] & 0x3F) | 0x80)) + r[3:]
            for r in (random[k : k + 10] for k in range(0, 10 * n, 10))
        )
        out = []
        for raw in raws:
            h = raw.hex()
            out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
        return out
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, :6] = np.frombuffer(prefix, dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 9562 variant
    high = raw[:, 6:8].copy().view(">u2").ravel()
    low = raw[:, 8:16].copy().view(">u8").ravel()
    raw = raw[np.lexsort((low, high))]
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX_DIGITS[raw >> 4]
    digits[:, 1::2] = _HEX_DIGITS[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + stop - start] = digits[:, start:stop]
    joined = text.tobytes().decode("ascii")
    return [joined[k : k + 36] for k in range(0, 36 * n, 36)]


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def check_outcome_events(events: Sequence[OutcomeEvent]) -> None:
    """Every event as :meth:`ExperimentService.record_outcomes` needs it, or :class:`InvalidInput` at
    ``events[i].<field>``: ids and type non-empty strings of at most :data:`MAX_ID_LENGTH`
    characters, no string holding a NUL character, a finite value within :data:`MAX_OUTCOME_VALUE`,
    a timestamp that has a UTC time (years 1 to 9999)."""
    if isinstance(events, str | bytes) or not isinstance(events, Sequence):
        raise InvalidInput("events", "expected a list of outcome events")
    for i, e in enumerate(events):
        if not isinstance(e, OutcomeEvent):
            raise InvalidInput(f"events[{i}]", f"expected an OutcomeEvent, got {type(e).__name__}")
        for name in ("event_id", "decision_id", "type"):
            value = getattr(e, name)
            if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
                raise InvalidInput(
                    f"events[{i}].{name}",
                    f"must be a non-empty string of at most {MAX_ID_LENGTH} chars, got {value!r}",
                )
            if "\x00" in value:
                raise InvalidInput(f"events[{i}].{name}", NUL_REASON)
        if e.value is not None and (
            isinstance(e.value, bool)
            or not isinstance(e.value, int | float)
            or not math.isfinite(e.value)
        ):
            raise InvalidInput(f"events[{i}].value", f"must be a finite number or null, got {e.value!r}")
        if e.value is not None and abs(e.value) > MAX_OUTCOME_VALUE:
            raise InvalidInput(
                f"events[{i}].value",
                f"must lie between -{MAX_OUTCOME_VALUE:.0e} and {MAX_OUTCOME_VALUE:.0e}, got {e.value!r}",
            )
        if e.user_agent is not None and not isinstance(e.user_agent, str):
            raise InvalidInput(
                f"events[{i}].user_agent", f"must be a string or null, got {e.user_agent!r}"
            )
        if e.user_agent is not None and "\x00" in e.user_agent:
            raise InvalidInput(f"events[{i}].user_agent", NUL_REASON)
        if e.timestamp is not None and not isinstance(e.timestamp, datetime):
            raise InvalidInput(
                f"events[{i}].timestamp", f"must be a datetime or null, got {e.timestamp!r}"
            )
        if e.timestamp is not None:
            try:
                to_db_time(e.timestamp)
            except OverflowError:
                raise InvalidInput(
                    f"events[{i}].timestamp",
                    f"out of range: {e.timestamp.isoformat()} is not between years 1 and 9999 in UTC",
                ) from None


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
        self._clock = clock
        self._rng = np.random.default_rng(seed)
        self._learn_batch = learn_batch
        self._lock = threading.RLock()
        self._compiled: dict[tuple[str, int], CompiledExperiment] = {}
        self._policies: dict[str, tuple[int, int, Policy]] = {}
        self._encoding = decision_encoding(engine.dialect)
        # SQLite has one writer at a time: concurrent requests share transactions; PostgreSQL takes
        # concurrent commits and groups their flushes itself
        self._decision_writer = GroupCommit(
            engine, insert_decisions, grouped=engine.dialect.name == "sqlite"
        )
        # probabilities(1) of non-contextual snapshots by (key, snapshot version): a snapshot never changes
        self._arm_probabilities: dict[tuple[str, int], list[float] | None] = {}

    @property
    def engine(self) -> Engine:
        """The store the service works on."""
        return self._engine

    @property
    def clock(self) -> Callable[[], datetime]:
        """The service's clock (aware UTC)."""
        return self._clock

    # ------------------------------------------------------------------ experiments

    def _now(self) -> datetime:
        return to_db_time(self._clock())

    def _compile(self, key: str, version: int, spec_json: str) -> CompiledExperiment:
        cached = self._compiled.get((key, version))
        if cached is None:
            cached = compile_experiment(ExperimentSpec.model_validate_json(spec_json), version)
            self._compiled[(key, version)] = cached
        return cached

    def _info(self, row: Any) -> ExperimentInfo:
        compiled = self._compile(row.key, row.version, row.spec)
        return ExperimentInfo(
            key=row.key,
            version=row.version,
            status=row.status,
            spec=compiled.spec,
            warnings=list(row.warnings or []),
            created_at=from_db_time(row.created_at),
            updated_at=from_db_time(row.updated_at),
            apprentice=bool(row.apprentice),
        )

    def _row(self, conn: Connection, key: str, lock: bool = False) -> Any:
        _stored_key(key)
        query = select(experiments_table).where(experiments_table.c.key == key)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(key)
        return row

    @staticmethod
    def _policy_seed(spec: ExperimentSpec) -> int:
        return int(unit_hash(spec.hash_salt, "policy-seed") * 2**31)

    def _new_policy(self, compiled: CompiledExperiment) -> Policy:
        design = compiled.spec.design
        options = dict(design.options)
        if design.vw_args is not None:
            options["vw_args"] = design.vw_args
        features = None
        if design.type == "contextual":
            features = combination_features(
                {
                    slot: [{"id": v.id, **v.features} for v in compiled.spec.slots[slot].variants]
                    for slot in compiled.slot_names
                }
            )
        return make_policy(
            design.policy or "",
            compiled.n_arms,
            options=options,
            action_features=features,  # type: ignore[arg-type]
            seed=self._policy_seed(compiled.spec),
        )

    def create(self, spec: ExperimentSpec) -> ExperimentInfo:
        """Save a spec: a new key starts at version 1 (running); a changed spec makes a new version.

        Saving the identical spec again returns the stored version. Warnings report rules that
        overlap and disagree, with an example recipient.
        """
        check_spec(spec)
        compiled = compile_experiment(spec, 0)
        policy = None
        if compiled.adaptive:
            try:
                policy = self._new_policy(compiled)
            except (PolicyError, ValueError, TypeError) as exc:
                raise SpecError([Problem("design.options", str(exc))]) from exc
        warnings = find_conflicts(compiled.rules) + content_warnings(spec)
        if spec.design.type == "ab" and len(spec.slots) > 1:
            warnings.append("an ab design over several slots buckets each slot independently (multivariate)")
        text = spec.canonical_json()
        for attempt in range(3):
            try:
                return self._save(spec.key, text, warnings, policy, spec.design.warm_start is not None)
            except IntegrityError:  # a concurrent create of the same key or version: read again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _save(
        self, key: str, text: str, warnings: list[str], policy: Policy | None, apprentice: bool
    ) -> ExperimentInfo:
        now = self._now()
        with self._engine.begin() as conn:
            existing = conn.execute(
                select(experiments_table).where(experiments_table.c.key == key).with_for_update()
            ).first()
            if existing is not None and existing.status == "archived":
                raise Conflict(f"experiment {key!r} is archived; use a new key")
            if existing is not None and existing.spec == text:
                return self._info(existing)
            version = 1 if existing is None else existing.version + 1
            values = {
                "version": version,
                "spec": text,
                "warnings": warnings,
                "updated_at": now,
                "apprentice": apprentice,
            }
            if existing is None:
                conn.execute(
                    experiments_table.insert().values(key=key, status="running", created_at=now, **values)
                )
            else:
                conn.execute(
                    experiments_table.update().where(experiments_table.c.key == key).values(**values)
                )
            conn.execute(versions_table.insert().values(key=key, version=version, spec=text, created_at=now))
            if policy is not None:
                last = conn.execute(
                    select(func.max(snapshots_table.c.version)).where(snapshots_table.c.experiment_key == key)
                ).scalar()
                conn.execute(
                    snapshots_table.insert().values(
                        experiment_key=key,
                        version=(last or 0) + 1,
                        spec_version=version,
                        state=policy.to_bytes(),
                        cursor=0,
                        learned_decisions=0,
                        created_at=now,
                    )
                )
            return self._info(self._row(conn, key))

    def list(self) -> list[ExperimentInfo]:
        """Every experiment, by key."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(experiments_table).order_by(experiments_table.c.key)).all()
        return [self._info(row) for row in rows]

    def get(self, key: str) -> ExperimentInfo:
        """One experiment; NotFound if there is none under ``key``."""
        with self._engine.connect() as conn:
            return self._info(self._row(conn, key))

    def set_status(self, key: str, status: Literal["running", "paused", "archived"]) -> ExperimentInfo:
        """Pause, resume or archive. Archiving is final (Conflict on any later change)."""
        if status not in STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
        with self._engine.begin() as conn:
            row = self._row(conn, key, lock=True)
            if row.status == "archived" and status != "archived":
                raise Conflict(f"experiment {key!r} is archived and cannot become {status}")
            conn.execute(
                experiments_table.update()
                .where(experiments_table.c.key == key)
                .values(status=status, updated_at=self._now())
            )
            return self._info(self._row(conn, key))

    # ------------------------------------------------------------------ assignment

    @staticmethod
    def _check_recipients(recipients: Sequence[tuple[str, Mapping[str, Any]]], single: bool = False) -> None:
        """Each recipient a ``(recipient_id, context)`` pair: a non-empty id of at most
        :data:`MAX_ID_LENGTH` characters without NUL, and a mapping. ``single``: the call names one
        recipient (:meth:`assign`), so its fields are ``recipient_id`` and ``context``."""
        if isinstance(recipients, str | bytes) or not isinstance(recipients, Sequence):
            raise InvalidInput("recipients", "expected a list of (recipient_id, context) pairs")
        for item in recipients:  # the common case first: exact types, no per-item isinstance of an ABC
            if type(item) is not tuple or len(item) != 2:
                break
            rid, context = item
            if (
                type(rid) is not str
                or not 0 < len(rid) <= MAX_ID_LENGTH
                or "\x00" in rid
                or type(context) is not dict
            ):
                break
        else:
            return
        for i, item in enumerate(recipients):
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise InvalidInput(f"recipients[{i}]", "expected a (recipient_id, context) pair")
            rid, context = item
            if not isinstance(rid, str) or not rid or len(rid) > MAX_ID_LENGTH:
                raise InvalidInput(
                    _recipient_field(i, "recipient_id", single),
                    f"must be a non-empty string of at most {MAX_ID_LENGTH} chars",
                )
            if "\x00" in rid:
                raise InvalidInput(_recipient_field(i, "recipient_id", single), NUL_REASON)
            if not isinstance(context, Mapping):
                raise InvalidInput(
                    _recipient_field(i, "context", single), f"must be a mapping, got {type(context).__name__}"
                )

    def check_recipients(self, key: str, recipients: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Raise what :meth:`assign_batch` would raise for this input, and store nothing.

        The pairs and their ids, the experiment (:class:`NotFound`, or :class:`Conflict` when archived)
        and the contexts (no NUL in a string; stored attributes JSON values that every database keeps),
        with the same :class:`InvalidInput` (``recipients[i]...``). A send split into several batches is
        checked whole first, so that a bad recipient in a later batch does not leave the earlier ones
        assigned.
        """
        self._check_recipients(recipients)
        with self._engine.connect() as conn:
            row, compiled = self._assign_state(conn, key)
        if row.status == "archived":
            raise Conflict(f"experiment {key!r} is archived: no more assignments")
        self._stored_contexts(compiled, [context for _, context in recipients])

    @staticmethod
    def _stored_contexts(
        compiled: CompiledExperiment, contexts: Sequence[Mapping[str, Any]], single: bool = False
    ) -> list[dict[str, Any]] | None:
        """Per recipient, the context attributes stored with its decision (None when the spec stores
        none), checked before anything reads them: no string value of a context holds a NUL character,
        and each stored value is a JSON value that every database can store (:func:`_json_value_problem`).

        Raises
        ------
        InvalidInput
            At ``recipients[i].context.<name>`` (``context.<name>`` when ``single``).
        """
        if any(type(v) is str and "\x00" in v for context in contexts for v in context.values()):
            for i, context in enumerate(contexts):
                for name, value in context.items():
                    if isinstance(value, str) and "\x00" in value:
                        raise InvalidInput(_recipient_field(i, f"context.{name}", single), NUL_REASON)
        attributes = sorted(compiled.stored_attributes)
        if not attributes:
            return None
        out = []
        for i, context in enumerate(contexts):
            stored = {a: context[a] for a in attributes if a in context}
            for name, value in stored.items():
                if type(value) is not str:
                    problem = _json_value_problem(value)
                    if problem is not None:
                        raise InvalidInput(_recipient_field(i, f"context.{name}", single), problem)
            out.append(stored)
        return out

    def _current_policy(self, conn: Connection, key: str, spec_version: int) -> tuple[int, Policy] | None:
        row = conn.execute(
            select(snapshots_table.c.version, snapshots_table.c.spec_version)
            .where(snapshots_table.c.experiment_key == key)
            .order_by(snapshots_table.c.version.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return self._policy_at_version(conn, key, spec_version, row.version, row.spec_version)

    def _policy_at_version(
        self,
        conn: Connection,
        key: str,
        spec_version: int,
        version: int | None,
        snapshot_spec_version: int | None,
    ) -> tuple[int, Policy] | None:
        """The latest snapshot ``version`` restored (cached per experiment until a newer version appears);
        None when there is none or it belongs to another spec version."""
        if version is None or snapshot_spec_version != spec_version:
            return None
        cached = self._policies.get(key)
        if cached is not None and cached[0] == version:
            return cached[0], cached[2]
        state = conn.execute(
            select(snapshots_table.c.state).where(
                snapshots_table.c.experiment_key == key, snapshots_table.c.version == version
            )
        ).scalar_one()
        policy = load_policy(bytes(state))
        self._policies[key] = (version, spec_version, policy)
        return version, policy

    def _assign_state(self, conn: Connection, key: str) -> tuple[Row[Any], CompiledExperiment]:
        """What assignment needs of an experiment, read in one query: its status, current version and
        latest policy snapshot version. The spec is compiled once per version (read only then)."""
        _stored_key(key)
        state = conn.execute(_assign_state_query(), {"key": key}).first()
        if state is None:
            raise NotFound(key)
        compiled = self._compiled.get((key, state.version))
        if compiled is None:
            text = conn.execute(
                select(versions_table.c.spec).where(
                    versions_table.c.key == key, versions_table.c.version == state.version
                )
            ).scalar_one()
            compiled = self._compile(key, state.version, text)
        return state, compiled

    def _decide(
        self,
        conn: Connection,
        key: str,
        recipients: Sequence[tuple[str, Mapping[str, Any]]],
        rng: np.random.Generator | None = None,
        single: bool = False,
    ) -> tuple[CompiledExperiment, Any, int | None, list[tuple[Any, ...]], list[Decision]]:
        """Choose for ``recipients``: the compiled spec, the experiment's state, the policy version,
        the rows to store (:data:`experiments.store.DECISION_COLUMNS`, encoded) and the decisions.

        ``rng`` draws instead of the service's generator (a preview's own, so that it leaves the next
        assignments' draws unchanged); ``single``: the call names one recipient (problems are reported
        at ``recipient_id`` and ``context``, not under ``recipients[0]``).

        Raises
        ------
        AssignmentError
            The design gave a propensity that is not a probability (a fault of the service, not of the
            input); no row is handed on, so no other call's transaction can fail for it.
        """
        self._check_recipients(recipients, single)
        row, compiled = self._assign_state(conn, key)
        if row.status == "archived":
            raise Conflict(f"experiment {key!r} is archived: no more assignments")
        ids = [r[0] for r in recipients]
        contexts = [r[1] for r in recipients]
        stored_contexts = self._stored_contexts(compiled, contexts, single)
        rendered, groups = render_batch(compiled, contexts) if compiled.has_templates else (None, [])
        reasons = screen(compiled, ids, contexts, paused=row.status == "paused")
        policy_version, policy = None, None
        if compiled.adaptive and any(r is None for r in reasons):
            try:
                current = self._policy_at_version(
                    conn, key, compiled.version, row.policy_version, row.policy_spec_version
                )
            except (PolicyError, ValueError) as exc:
                log.warning("experiment %s: cannot load the policy: %s", key, exc)
                current = None
            if current is not None:
                policy_version, policy = current
        with self._lock:
            result = assign(
                compiled,
                ids,
                contexts,
                reasons,
                policy,
                rng if rng is not None else self._rng,
                apprentice=bool(row.apprentice),
                rendered=rendered,
            )
        sound = (result.propensities >= 0.0) & (result.propensities <= 1.0 + 1e-9)  # NaN fails both
        if not sound.all():
            first, n_bad = float(result.propensities[np.argmin(sound)]), int((~sound).sum())
            raise AssignmentError(
                f"experiment {key!r}: the design gave {n_bad} recipient{'s' if n_bad != 1 else ''} a "
                f"propensity outside [0, 1] (such as {first}); nothing was logged"
            )
        db_now = to_db_time(self._clock())
        created_at = from_db_time(db_now)
        encoding = self._encoding
        bound_time, bound_day = encoding.time(db_now), encoding.day(db_now.date())
        true, false = encoding.flag(True), encoding.flag(False)
        no_context = encoding.json(None)
        no_attributes = encoding.json({})
        empty_context = no_attributes if stored_contexts is None else None
        arm_to_variants: dict[int, tuple[dict[str, str], Any]] = {}
        plain = _plain_choices(compiled)
        choices: dict[tuple[int, int, str], VariantChoice] = {}
        arm_group_to_shown: dict[tuple[int, int], tuple[dict[str, VariantChoice], dict[str, str]]] = {}
        decision_ids = _decision_ids(len(recipients), db_now)
        version, adaptive = compiled.version, compiled.adaptive
        arms = result.arms.tolist()
        propensities = result.propensities.tolist()
        explored = result.explored.tolist()
        agreement = [None if math.isnan(a) else a for a in result.agreement.tolist()]
        positions = result.positions.tolist()
        rows, decisions = [], []
        for i, (rid, context) in enumerate(recipients):
            reason = result.reasons[i]
            fallback = reason in FALLBACK_REASONS
            arm = arms[i]
            known = arm_to_variants.get(arm)
            if known is None:
                chosen = {
                    s: compiled.slot_ids[s][p] for s, p in zip(compiled.slot_names, positions[i], strict=True)
                }
                known = arm_to_variants[arm] = (chosen, encoding.json(chosen))
            if reason == "no_consent":
                bound_context = no_context
            elif empty_context is not None:
                bound_context = empty_context
            else:
                stored_context = stored_contexts[i]  # type: ignore[index]  # not None here
                bound_context = encoding.json(stored_context) if stored_context else no_attributes
            decision_id = decision_ids[i]
            version_used = None if fallback or not adaptive else policy_version
            rows.append(
                (
                    decision_id,
                    key,
                    version,
                    rid,
                    known[1],
                    arm,
                    propensities[i],
                    version_used,
                    true if explored[i] else false,
                    true if fallback else false,
                    reason,
                    bound_context,
                    bound_time,
                    bound_day,
                    None,
                    agreement[i],
                    None,
                )
            )
            if rendered is None:
                variants = {s: plain[k][positions[i][k]] for k, s in enumerate(compiled.slot_names)}
                notes: dict[str, str] = {}
            else:  # the same arm and rendering group: the same content and notes
                shown = arm_group_to_shown.get((arm, groups[i]))
                if shown is None:
                    shown = arm_group_to_shown[(arm, groups[i])] = self._render(
                        compiled, positions[i], context, rendered[i], plain, choices
                    )
                variants, notes = dict(shown[0]), dict(shown[1])
            decisions.append(
                Decision(
                    decision_id=decision_id,
                    experiment=key,
                    recipient_id=rid,
                    variants=variants,
                    propensity=propensities[i],
                    policy_version=version_used,
                    reason=reason,
                    explored=explored[i],
                    created_at=created_at,
                    content_notes=notes,
                )
            )
        return compiled, row, policy_version, rows, decisions

    @staticmethod
    def _render(
        compiled: CompiledExperiment,
        positions: Sequence[int],
        context: Mapping[str, Any],
        rendered: Sequence[Mapping[int, Rendering]],
        plain: Sequence[Sequence[VariantChoice]],
        choices: dict[tuple[int, int, str], VariantChoice],
    ) -> tuple[dict[str, VariantChoice], dict[str, str]]:
        """The rendered content per slot and, per slot where content fell back, a note saying how.

        ``rendered`` is :func:`experiments.assignment.render_templated` of this recipient; ``plain`` the
        choice per slot and position for variants that are plain text; ``choices`` the rendered choices
        made so far in this batch (recipients who see the same text share one).
        """
        variants, notes = {}, {}
        for s, slot in enumerate(compiled.slot_names):
            p = positions[s]
            by_position = rendered[s]
            if not by_position:  # no template in this slot
                variants[slot] = plain[s][p]
                continue
            own = by_position.get(p)
            note = None
            if own is None:
                variants[slot] = plain[s][p]
            elif own.text is not None:
                choice = choices.get((s, p, own.text))
                if choice is None:
                    choice = choices[(s, p, own.text)] = VariantChoice(compiled.slot_ids[slot][p], own.text)
                variants[slot] = choice
            else:
                text, note = slot_content(compiled, slot, p, context, first=own)
                variants[slot] = VariantChoice(compiled.slot_ids[slot][p], text)
            parts = [
                f"not offered {compiled.slot_ids[slot][j]!r}: {r.problem}"
                for j, r in by_position.items()
                if r.text is None and j != p
            ]
            if note is not None:
                parts.append(note)
            if parts:
                notes[slot] = "; ".join(parts)
        return variants, notes

    def assign(self, key: str, recipient_id: str, context: Mapping[str, Any]) -> Decision:
        """Choose and log the variants of one recipient (a bad input is reported at ``recipient_id`` or
        ``context.<name>``)."""
        return self._assign(key, [(recipient_id, context)], single=True)[0]

    def assign_batch(self, key: str, recipients: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Decision]:
        """Choose and log the variants of a whole send; return once the decisions are committed.

        The state of the experiment is read in one query; the decisions are written by
        :class:`experiments.group_commit.GroupCommit` (on SQLite concurrent calls share one transaction;
        on PostgreSQL each commits its own) and each call returns only after the transaction holding its
        decisions committed (:class:`~experiments.group_commit.GroupCommitError` when it did not: then
        none of them is stored). A bad input is reported at ``recipients[i].<field>``.
        """
        return self._assign(key, recipients)

    def _assign(
        self, key: str, recipients: Sequence[tuple[str, Mapping[str, Any]]], single: bool = False
    ) -> list[Decision]:
        with self._engine.connect() as conn:
            if not self._decision_writer.grouped:
                # PostgreSQL: the state is one SELECT and the decisions one statement (COPY, or an
                # INSERT of one row) that commits itself: no BEGIN and COMMIT round trips
                conn.execution_options(isolation_level="AUTOCOMMIT")
            _, _, _, rows, decisions = self._decide(conn, key, recipients, single=single)
            self._decision_writer.submit(rows, conn)
        return decisions

    def preview(self, key: str, recipients: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Preview]:
        """What each recipient would get and why (rendered); nothing is logged.

        Each preview holds the decision a draw would give now, the explanation lines, and the detail:
        the rules that fired (or why they were not evaluated), the variants offered per slot (and why
        the others are not), their rendered content and the probabilities the design would draw with.
        The draw uses a generator of the preview's own, seeded by the experiment key and the recipient
        ids (:func:`preview_seed`): the same request shows the same draw, and the generator that
        assignments draw with is not touched.
        """
        self._check_recipients(recipients)
        ids = [r[0] for r in recipients]
        contexts = [r[1] for r in recipients]
        rng = np.random.default_rng(preview_seed(key, ids))
        with self._engine.connect() as conn:
            compiled, row, _, _, decisions = self._decide(conn, key, recipients, rng=rng)
            policy = None
            if compiled.adaptive:
                try:
                    current = self._current_policy(conn, key, compiled.version)
                except (PolicyError, ValueError):
                    current = None
                policy = None if current is None else current[1]
        screening = screen(compiled, ids, contexts, paused=row.status == "paused")
        with self._lock:
            details = describe_recipients(
                compiled, ids, contexts, screening, policy, apprentice=bool(row.apprentice)
            )
        previews = []
        for d, detail, reason, (rid, context) in zip(decisions, details, screening, recipients, strict=True):
            lines = explain(compiled, rid, context, screening=reason) + [f"reason: {d.reason}"]
            lines += [f"content {slot}: {note}" for slot, note in d.content_notes.items()]
            previews.append(Preview(d, lines, detail))
        return previews

    def preview_report(self, key: str, recipients: Sequence[tuple[str, Mapping[str, Any]]]) -> PreviewReport:
        """:meth:`preview` for a sample, with its coverage: rule combinations no sample recipient
        reached and the recipients that only ever get the fallback. Nothing is logged."""
        previews = self.preview(key, recipients)
        with self._engine.connect() as conn:
            row = self._row(conn, key)
        compiled = self._compile(key, row.version, row.spec)
        details = [p.detail for p in previews if p.detail is not None]
        return PreviewReport(previews, coverage(compiled, details))

    def explain(self, decision_id: str) -> dict[str, Any]:
        """A logged decision with the reasons behind it, re-evaluated on the stored context."""
        _stored_key(decision_id, "decision")
        with self._engine.connect() as conn:
            row = conn.execute(select(decisions_table).where(decisions_table.c.id == decision_id)).first()
            if row is None:
                raise NotFound(decision_id, "decision")
            spec_text = conn.execute(
                select(versions_table.c.spec).where(
                    versions_table.c.key == row.experiment_key, versions_table.c.version == row.version
                )
            ).scalar_one()
        compiled = self._compile(row.experiment_key, row.version, spec_text)
        if row.context is None:
            lines = ["no context stored (the recipient did not consent)"]
        else:
            lines = explain(compiled, row.recipient_id, row.context, screening=row.reason)
        lines.append(decided_by(compiled, row.reason, row.policy_version))
        features: list[dict[str, Any]] = []
        method = None
        if (
            compiled.spec.design.type == "contextual"
            and row.reason in ("policy", "apprentice")
            and row.policy_version is not None
            and row.context is not None
        ):
            policy = self._policy_at(row.experiment_key, row.policy_version)
            if policy is not None:
                method, contributions = feature_contributions(compiled, policy, row.context, int(row.arm))
                features = [
                    {"attribute": c.attribute, "value": c.value, "contribution": c.contribution}
                    for c in contributions
                ]
                lines += contribution_lines(compiled, int(row.arm), method, contributions)
        return {
            "decision_id": row.id,
            "experiment": row.experiment_key,
            "version": row.version,
            "recipient_id": row.recipient_id,
            "variants": dict(row.variants),
            "arm": row.arm,
            "propensity": row.propensity,
            "policy_version": row.policy_version,
            "reason": row.reason,
            "explored": row.explored,
            "created_at": from_db_time(row.created_at).isoformat(),
            "explanation": lines,
            "features": features,
            "features_method": method,
        }

    def _policy_at(self, key: str, version: int) -> Policy | None:
        """The policy snapshot ``version`` of an experiment (None if it is gone or cannot be read)."""
        with self._engine.connect() as conn:
            state = conn.execute(
                select(snapshots_table.c.state).where(
                    snapshots_table.c.experiment_key == key, snapshots_table.c.version == version
                )
            ).scalar()
        if state is None:
            return None
        try:
            return load_policy(bytes(state))
        except (PolicyError, ValueError):
            return None

    def insight(self, key: str, sample: int = 1000) -> FeatureImportance:
        """Which recipient attributes the current policy relies on, over the contexts of the latest
        ``sample`` policy decisions of the current version (a contextual design only).

        Raises
        ------
        Conflict
            The design is not contextual (no policy reads recipient attributes).
        InvalidInput
            ``sample`` is not an integer in [1, 100000].
        """
        if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= 100_000:
            raise InvalidInput("sample", f"must be an integer in [1, 100000], got {sample!r}")
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            if compiled.spec.design.type != "contextual":
                raise Conflict(
                    f"experiment {key!r} is a {compiled.spec.design.type} design: "
                    "no policy reads recipient attributes"
                )
            contexts = [
                c
                for (c,) in conn.execute(
                    select(decisions_table.c.context)
                    .where(
                        decisions_table.c.experiment_key == key,
                        decisions_table.c.version == compiled.version,
                        decisions_table.c.fallback.is_(False),
                        decisions_table.c.context.is_not(None),
                    )
                    .order_by(decisions_table.c.created_at.desc(), decisions_table.c.id)
                    .limit(sample)
                )
            ]
        version, state = self.policy_state(key)
        rng = np.random.default_rng(self._policy_seed(compiled.spec))  # the same answer for the same data
        return feature_importance(compiled, load_policy(state), version, contexts, rng)

    # ------------------------------------------------------------------ outcomes

    def record_outcomes(self, events: Sequence[OutcomeEvent]) -> OutcomeCounts:
        """Store outcome events; idempotent on ``event_id``, committed before returning.

        Events of unknown decisions go to the orphan table. Events timed before their decision or later
        than the reward window after it are stored but not attributed (``attributed`` false);
        machine-made ones (flagged, or a user agent the spec lists) are stored with ``machine`` true, and
        rewards, learning and results leave them out (results include them when asked).
        """
        check_outcome_events(events)
        unique: dict[str, OutcomeEvent] = {}
        for e in events:
            unique.setdefault(e.event_id, e)
        now = self._now()
        known, orphans = [], []
        with self._engine.begin() as conn:
            decision_ids = sorted({e.decision_id for e in unique.values()})
            id_to_decision: dict[str, Any] = {}
            for chunk in chunks(decision_ids):
                query = select(
                    decisions_table.c.id,
                    decisions_table.c.experiment_key,
                    decisions_table.c.version,
                    decisions_table.c.created_at,
                    decisions_table.c.arm,
                    decisions_table.c.fallback,
                    decisions_table.c.reason,
                    decisions_table.c.day,
                ).where(decisions_table.c.id.in_(chunk))
                id_to_decision.update({row.id: row for row in conn.execute(query)})
            specs: dict[tuple[str, int], ExperimentSpec] = {}
            for e in unique.values():
                time = to_db_time(e.timestamp) if e.timestamp is not None else now
                base = {
                    "event_id": e.event_id,
                    "decision_id": e.decision_id,
                    "type": e.type,
                    "value": None if e.value is None else float(e.value),
                    "time": time,
                    "received_at": now,
                    "machine": bool(e.machine),
                }
                d = id_to_decision.get(e.decision_id)
                if d is None:
                    orphans.append(base)
                    continue
                spec = specs.get((d.experiment_key, d.version))
                if spec is None:
                    spec = specs[(d.experiment_key, d.version)] = self._spec_of(
                        conn, d.experiment_key, d.version
                    )
                machine = spec.reward.is_machine(bool(e.machine), e.user_agent)
                window = timedelta(hours=spec.reward.window_hours)
                # the attribution window runs from the decision to ``window_hours`` after it; an event
                # without a timestamp is stamped on receipt, after its decision was logged, whatever the
                # skew between the clocks of the workers that logged the two. Machine events are left
                # out by the queries (``machine`` true), not here.
                after = e.timestamp is None or time >= d.created_at
                attributed = after and time - d.created_at <= window
                known.append(
                    {
                        **base,
                        "machine": machine,
                        "experiment_key": d.experiment_key,
                        "version": d.version,
                        "attributed": attributed,
                        "arm": d.arm,
                        "fallback": d.fallback,
                        "reason": d.reason,
                        "day": d.day,
                    }
                )
            accepted = insert_ignoring_duplicates(conn, outcomes_table, known, "event_id")
            kept = insert_ignoring_duplicates(conn, orphans_table, orphans, "event_id")
        return OutcomeCounts(len(accepted), len(events) - len(accepted) - len(kept), len(kept))

    def _spec_of(self, conn: Connection, key: str, version: int) -> ExperimentSpec:
        cached = self._compiled.get((key, version))
        if cached is not None:
            return cached.spec
        text = conn.execute(
            select(versions_table.c.spec).where(
                versions_table.c.key == key, versions_table.c.version == version
            )
        ).scalar_one()
        return self._compile(key, version, text).spec

    # ------------------------------------------------------------------ learning

    def learn(self, key: str, *, batch: int | None = None, pause_seconds: float = 0.0) -> int:
        """Learn every mature decision and every late outcome not learned yet; return the policy version.

        A decision is mature when older than ``design.update.delay_hours`` (default: the reward
        window); it is learned with the outcomes attributed to it by then. An outcome that arrives
        after its decision was learned revises that decision's reward in the policy (exactly, for every
        policy but VW, whose late outcomes are counted in the summary instead). Each batch of
        ``learn_batch`` decisions (once they are all learned, of as many late outcomes) is one
        transaction that takes the experiment's learning lock, stores the next snapshot and marks what
        it learned, so a learner killed at any point loses nothing and repeats nothing, and a
        concurrent learner waits for the lock and goes on from the new snapshot (see
        :mod:`experiments.learning`). ``batch`` overrides ``learn_batch``; ``pause_seconds`` is slept
        between batches, outside any transaction, so that writers waiting for SQLite's single write
        lock get it (the background learner's politeness; ``POST /learn`` does not pause). With
        ``design.update.delays: model`` younger decisions are then learned as part of a trial
        (:mod:`experiments.delayed_learning`).
        """
        with self._engine.connect() as conn:
            row = self._row(conn, key)
        compiled = self._compile(key, row.version, row.spec)
        if not compiled.adaptive:
            raise Conflict(
                f"experiment {key!r} is a {compiled.spec.design.type} design: there is no policy to learn"
            )
        cutoff = self._now() - timedelta(hours=compiled.spec.learning_delay_hours)
        size = self._learn_batch if batch is None else batch
        while True:
            with self._engine.begin() as conn:
                done = learn_one_batch(conn, compiled, cutoff, size, self._now())
            if not done.full:
                self._maybe_graduate(key, compiled)
                return learn_with_delays(self._engine, compiled, cutoff, self._now(), done.version)
            if pause_seconds > 0:
                time.sleep(pause_seconds)

    def graduate(self, key: str) -> ExperimentInfo:
        """End the apprenticeship of a warm-started policy: from now on it chooses (and explores)."""
        with self._engine.begin() as conn:
            row = self._row(conn, key, lock=True)
            if not self._compile(key, row.version, row.spec).adaptive:
                raise Conflict(f"experiment {key!r} has no policy to graduate")
            conn.execute(
                experiments_table.update()
                .where(experiments_table.c.key == key)
                .values(apprentice=False, updated_at=self._now())
            )
            return self._info(self._row(conn, key))

    def _maybe_graduate(self, key: str, compiled: CompiledExperiment) -> None:
        warm = compiled.spec.design.warm_start
        if warm is None:
            return
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            if not row.apprentice or row.version != compiled.version:
                return
            n, share = apprentice_agreement(conn, compiled, last=warm.min_decisions)
        if n >= warm.min_decisions and share is not None and share >= warm.agreement:
            log.info(
                "experiment %s: the apprentice agreed on %.1f%% of %d decisions; exploring now",
                key,
                100 * share,
                n,
            )
            self.graduate(key)

    def policy_state(self, key: str) -> tuple[int, bytes]:
        """The latest policy snapshot of an adaptive experiment: ``(version, bytes)``."""
        _stored_key(key, "policy of experiment")
        with self._engine.connect() as conn:
            row = conn.execute(
                select(snapshots_table.c.version, snapshots_table.c.state)
                .where(snapshots_table.c.experiment_key == key)
                .order_by(snapshots_table.c.version.desc())
                .limit(1)
            ).first()
        if row is None:
            raise NotFound(key, "policy of experiment")
        return row.version, bytes(row.state)

    def policy_history(self, key: str, limit: int | None = None) -> list[PolicySnapshotInfo]:
        """Every stored policy version of an experiment, oldest first (empty for hash designs); with
        ``limit``, at most that many, evenly spread over the versions, the first and the latest included.

        One query over the snapshot table; no decision is read. A non-contextual snapshot's
        ``probabilities(1)`` come from :func:`bandit.load_policy` once per version and process (a
        snapshot never changes), so a view restores only the versions stored since the last one.

        Raises
        ------
        InvalidInput
            ``limit`` is not an integer >= 2.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
            raise InvalidInput("limit", f"must be an integer >= 2 or None, got {limit!r}")
        s = snapshots_table
        with self._engine.connect() as conn:
            self._row(conn, key)
            rows = conn.execute(
                select(s.c.version, s.c.spec_version, s.c.created_at, s.c.learned_decisions)
                .where(s.c.experiment_key == key)
                .order_by(s.c.version)
            ).all()
            if limit is not None and len(rows) > limit:
                last = len(rows) - 1
                rows = [rows[i] for i in sorted({round(j * last / (limit - 1)) for j in range(limit)})]
            spec_version_to_design = {
                v: self._spec_of(conn, key, v).design.type for v in {int(r.spec_version) for r in rows}
            }
            bandit_versions = [
                int(r.version) for r in rows if spec_version_to_design[int(r.spec_version)] == "bandit"
            ]
            version_to_probs = self._snapshot_probabilities(conn, key, bandit_versions)
        return [
            PolicySnapshotInfo(
                version=int(row.version),
                spec_version=int(row.spec_version),
                created_at=from_db_time(row.created_at),
                learned_decisions=int(row.learned_decisions),
                arm_probabilities=version_to_probs.get(int(row.version)),
            )
            for row in rows
        ]

    def _snapshot_probabilities(
        self, conn: Connection, key: str, versions: Sequence[int]
    ) -> dict[int, list[float] | None]:
        """``probabilities(1)`` of each listed (non-contextual) snapshot version, None where unreadable;
        restored once per version and kept."""
        missing = [v for v in versions if (key, v) not in self._arm_probabilities]
        for chunk in chunks(missing):
            query = select(snapshots_table.c.version, snapshots_table.c.state).where(
                snapshots_table.c.experiment_key == key, snapshots_table.c.version.in_(list(chunk))
            )
            for version, state in conn.execute(query):
                probs: list[float] | None
                try:
                    probs = [float(p) for p in load_policy(bytes(state)).probabilities(1)[0]]
                except (PolicyError, ValueError):
                    probs = None
                self._arm_probabilities[(key, int(version))] = probs
        return {v: self._arm_probabilities.get((key, v)) for v in versions}

    # ------------------------------------------------------------------ results

    def _policy_probabilities(self, conn: Connection, compiled: CompiledExperiment) -> np.ndarray | None:
        if compiled.spec.design.type != "bandit":
            return None
        latest = conn.execute(
            select(func.max(snapshots_table.c.version)).where(
                snapshots_table.c.experiment_key == compiled.spec.key
            )
        ).scalar()
        if latest is None:
            return None
        probs = self._snapshot_probabilities(conn, compiled.spec.key, [int(latest)])[int(latest)]
        return None if probs is None else np.asarray(probs)

    def _summarize(
        self, conn: Connection, key: str, include_machine: bool = False
    ) -> tuple[CompiledExperiment, list[DecisionGroup], ExperimentSummary]:
        row = self._row(conn, key)
        compiled = self._compile(key, row.version, row.spec)
        counted = decision_groups(conn, compiled)  # one pass over the decisions, shared below
        groups = ResultGroups(
            by_arm=arm_stats(conn, compiled, counted, include_machine=include_machine),
            by_reason=fallback_stats(conn, compiled, counted, include_machine=include_machine),
            by_day=daily_stats(conn, compiled, counted, include_machine=include_machine),
            excluded=excluded_counts(conn, compiled),
            apprentice=apprentice_agreement(conn, compiled),
            after_learning=after_learning_counts(conn, compiled),
        )
        shares = intended_shares(compiled, self._policy_probabilities(conn, compiled))
        return compiled, counted, build_summary(compiled, groups, shares, include_machine=include_machine)

    def summarize(self, key: str, *, include_machine: bool = False) -> ExperimentSummary:
        """Summary statistics of the current version, aggregated by SQL in the database.

        For A/B and multivariate designs ``intended_share`` is the variant's weight share; for bandits
        the current policy's marginal probability; for contextual designs the uniform share.
        Machine-made outcomes are left out and counted, unless ``include_machine`` (the policy never
        learns from them either way).
        """
        with self._engine.connect() as conn:
            return self._summarize(conn, key, include_machine)[2]

    def _learning(
        self, conn: Connection, compiled: CompiledExperiment, groups: Sequence[DecisionGroup]
    ) -> LearningSummary:
        s = snapshots_table
        created = conn.execute(
            select(s.c.version, s.c.created_at).where(
                s.c.experiment_key == compiled.spec.key, s.c.spec_version == compiled.version
            )
        )
        version_to_created = {int(v): from_db_time(t) for v, t in created}
        return build_learning_summary(compiled, groups, version_to_created, learned_reward(conn, compiled))

    def learning(self, key: str) -> LearningSummary:
        """Is it learning? Per policy version of the current spec version, where the learnable decisions
        went (per slot variant) and how many explored; and the decisions learned from so far with their
        total reward. By SQL aggregation (the decisions grouped by policy version and arm, the learned
        decisions joined to their attributed outcomes).

        Raises
        ------
        Conflict
            The design is not adaptive (no policy learns).
        """
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            if not compiled.adaptive:
                raise Conflict(
                    f"experiment {key!r} is a {compiled.spec.design.type} design: no policy learns"
                )
            return self._learning(conn, compiled, decision_groups(conn, compiled))

    def summarize_with_learning(self, key: str) -> tuple[ExperimentSummary, LearningSummary | None]:
        """:meth:`summarize` and, for adaptive designs, :meth:`learning` (None otherwise), sharing one
        pass over the decisions."""
        with self._engine.connect() as conn:
            compiled, counted, summary = self._summarize(conn, key)
            learning = self._learning(conn, compiled, counted) if compiled.adaptive else None
        return summary, learning

    def read_adaptive(self, key: str, *, include_machine: bool = False) -> AdaptiveData:
        """What the adaptive analysis of a bandit or contextual design reads, in one connection
        (:mod:`experiments.adaptive_reader`)."""
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            return read_adaptive(conn, self._compile(key, row.version, row.spec),
                                 include_machine=include_machine)

    def read_drift(self, key: str, *, include_machine: bool = False) -> DriftLog:
        """What the drift monitor reads, in one connection (:mod:`experiments.drift_reader`)."""
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            cells = read_drift_cells(conn, compiled, include_machine=include_machine)
        spec = compiled.spec
        return DriftLog(key, spec.design.type, spec.reward.window_hours, self._now(), cells)

    def traffic(self) -> list[ExperimentTraffic]:
        """Every experiment's current version with its decisions so far, by key (the experiments list):
        counts over ranges of an index, no summary (:mod:`experiments.overview`)."""
        out = []
        with self._engine.connect() as conn:
            rows = conn.execute(select(experiments_table).order_by(experiments_table.c.key)).all()
            for r in rows:
                compiled = self._compile(r.key, r.version, r.spec)
                out.append(build_traffic(compiled, version_counts(conn, compiled)))
        return out

    def export_log_summary(self, key: str) -> LogExport:
        """How many learnable decisions the current version has, and the variants of each arm."""
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            return LogExport(key, int(row.version), count_learnable(conn, compiled), arm_variants(compiled))

    def export_log_chunks(
        self, key: str, chunk_rows: int = EXPORT_CHUNK_ROWS
    ) -> Iterator[list[LoggedDecision]]:
        """:meth:`export_log` in chunks of ``chunk_rows`` decisions, read lazily (bounded memory)."""
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            yield from iter_logged_decisions(conn, compiled, chunk_rows)
    def _attribute(self, compiled: CompiledExperiment, attribute: str, field: str) -> str:
        if not isinstance(attribute, str) or not re.fullmatch(ATTRIBUTE_PATTERN, attribute):
            raise InvalidInput(
                field, f"{attribute!r} is not an attribute name (1 to 64 characters, no quotes, "
                "backslashes or control characters)"
            )
        if attribute not in compiled.stored_attributes:
            stored = sorted(compiled.stored_attributes)
            raise InvalidInput(
                field, f"{attribute!r} is not stored with the decisions of {compiled.spec.key!r} "
                f"(stored: {stored}); list it under the spec's 'record' to store it from now on"
            )
        return attribute

    def summarize_segments(self, key: str, attribute: str) -> SegmentedSummary:
        """The summary per value of a context attribute stored with the decisions, by SQL ``GROUP BY``.

        Raises
        ------
        InvalidInput
            ``segment``: the attribute is not stored with the decisions, or has more than
            :data:`MAX_SEGMENTS` values (an identifier or a continuous number is not a segment).
        """
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            self._attribute(compiled, attribute, "segment")
            groups = segment_arm_stats(conn, compiled, attribute)
            values = {seg for seg, _ in groups if seg is not None}
            if len(values) > MAX_SEGMENTS:
                raise InvalidInput(
                    "segment", f"{attribute!r} has {len(values):,} values; segments need an attribute with "
                    f"at most {MAX_SEGMENTS} (a category such as country or device, not an id or a number)"
                )
            shares = intended_shares(compiled, self._policy_probabilities(conn, compiled))
        return build_segmented_summary(compiled, attribute, groups, shares)

    def summarize_covariate(self, key: str, attribute: str) -> CovariateSummary:
        """The sums CUPED needs for a numeric context attribute recorded at send time, per slot variant.

        Raises
        ------
        InvalidInput
            ``covariate``: the attribute is not stored with the decisions.
        """
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            self._attribute(compiled, attribute, "covariate")
            by_arm = covariate_arm_stats(conn, compiled, attribute)
        return build_covariate_summary(compiled, attribute, by_arm)

    def export_log(self, key: str) -> list[LoggedDecision]:
        """Every learnable decision of the current version with its reward, in time order (for replay)."""
        with self._engine.connect() as conn:
            row = self._row(conn, key)
            compiled = self._compile(key, row.version, row.spec)
            id_to_reward = all_rewards(conn, compiled)
            return [
                LoggedDecision(
                    decision_id=r.id,
                    context=r.context,
                    arm=int(r.arm),
                    variants=dict(r.variants),
                    propensity=float(r.propensity),
                    reward=id_to_reward.get(r.id, 0.0),
                    created_at=from_db_time(r.created_at),
                )
                for r in conn.execute(learnable_decisions(compiled))
            ]
