"""Rollups: the cells results read (:mod:`experiments.store.cells`), kept exact in the transactions that
write what they summarise, rebuilt and checked against the log.

Design
------
What changes a cell, and where it is kept:

- **a decision inserted** (:func:`record_decisions`, called by :func:`experiments.sends.write_decisions`
  on every assignment path: a group commit, a frequency-capped send, a repeated send) adds 1 to its
  cell's ``decisions`` (and ``explored``); its reward is 0 until outcomes arrive. A group commit's rows
  are aggregated first, so a whole group is one upsert per cell. A send's rows skipped as repeats are
  not counted (only the ids that exist after the insert are).
- **outcomes accepted** (:class:`OutcomeRollup`, in :mod:`experiments.service.outcomes`): each decision
  that got an accepted, attributed, non-machine outcome of a type its spec version knows has its state
  read before the insert (its value sum and 0/1 flags, by the same SQL that computes the full scan,
  :func:`experiments.store.summaries.attribution`); its state after is that plus the outcomes accepted
  for it, and the difference of the rewards (computed as that SQL computes them) is added to its cell
  (:mod:`experiments.rollup_deltas`). Every accepted outcome also counts in ``rollup_counts`` (machine
  inside or after the window, late, a value the reward does not count). Duplicates are not accepted, so
  they count nowhere; orphans are never attributed (an orphan stays aside even when its decision arrives
  later), so they count nowhere either.
- **decisions learned** (:func:`record_learned`, in the learner's transaction): the decisions marked
  learned for the first time add to ``learned``.
- **the drift monitor's sums** (``drift_rollups``, learned decisions only: the cells of those not
  learned yet are derived from the cells above) change with outcome posts and learning, by the hooks
  marked ``drift.`` here (:mod:`experiments.store.drift_rollups`); :func:`record_learned` locks the
  decisions it marks as outcome posts do, as a learned decision's reward moves to its snapshot's drift
  cell.
- **erasure and retention** change recipient ids, event ids and contexts only, which no cell reads: the
  cells stay as they are; the breakdowns by segment and covariate move the decisions whose context goes
  to the missing segment (:mod:`experiments.store.context_drops`). A new spec version starts cells of
  its own (the version is in the key).

Each write also keeps the breakdowns (:mod:`experiments.store.breakdown_rollups`: the adaptive
inverse-propensity sums, the decisions by segment, the CUPED sums by covariate) from the same decisions
and the same before/after states.

Concurrency: two posts of outcomes for the same decision must not both read the same "before". On SQLite
the outcome transaction takes the write lock first (``BEGIN IMMEDIATE``, :func:`begin_write`), so its
reads and writes are serialised with every other writer. On PostgreSQL every decision a post names is
locked by a transaction-scoped advisory lock (:func:`lock_decisions`, in sorted order) before anything of
it is read, whether its rollups change or not: the post reads each decision once, under its lock
(:meth:`OutcomeRollup.read`), for what its outcomes copy as for what its rollups change from; advisory
locks, unlike row locks on ``decisions``, cannot deadlock with the learner's updates of those rows.
Rollup rows are upserted in key order, tables in one order, so writers sharing rows wait, never
deadlock.

Float sums kept by deltas agree with the log's to rounding
(:data:`experiments.rollup_deltas.RELATIVE_TOLERANCE`); counts agree exactly. Rebuilding them from the
log and comparing them with it (``sendlab verify``) is :mod:`experiments.store.rollup_checks`.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.breakdown_deltas import DecisionState
from experiments.limits import CACHED_SPECS
from experiments.rollup_deltas import (
    Attributed,
    CellChange,
    Valued,
    add_decision,
    add_learned,
    fold_outcomes,
    reward_changes,
)
from experiments.store import drift_rollups as drift  # the drift monitor's sums, kept alongside
from experiments.store.breakdown_rollups import (
    ARM,
    DAY,
    FALLBACK,
    ID,
    LEARNED_VERSION,
    POLICY_VERSION,
    REASON,
    BreakdownStates,
    CompiledOf,
    LockedDecision,
    VersionBreakdowns,
    add_breakdowns,
    compiled_version,
    inserted_changes,
    locked_rows,
    outcome_change,
)
from experiments.store.cells import CellKey
from experiments.store.id_lists import column_in, ids_parameter, rows_by_ids
from experiments.store.lru import LRU
from experiments.store.repository import chunks
from experiments.store.rollup_tables import (
    LATE,
    MACHINE_IN_WINDOW,
    MACHINE_LATE,
    UNCOUNTED_VALUE,
    add_cell_changes,
    add_outcome_counts,
)
from experiments.store.summaries import attribution, event_types, reward_rule
from experiments.store.tables import decisions_table as D
from experiments.store.writes import DECISION_COLUMNS

#: The first key of the PostgreSQL advisory locks on decisions (``pg_advisory_xact_lock(int, int)``).
DECISION_LOCK_SPACE = 0x524F4C4C
#: The PostgreSQL advisory lock a context drop holds exclusive and outcome transactions shared
#: (:mod:`experiments.store.context_drops`).
DROP_LOCK = (0x43545854, 0)

_POSITIONS = {c: DECISION_COLUMNS.index(c) for c in (
    "id", "experiment_key", "version", "fallback", "reason", "arm", "day", "policy_version", "explored",
    "learned_version",
)}
#: The per-decision state queries built so far, by reward definition (:func:`_state_query`).
_STATE_QUERIES: LRU[tuple[Any, ...], Any] = LRU(CACHED_SPECS)
#: Per (experiment key, spec version), the change of each of its cells.
VersionChanges = dict[tuple[str, int], dict[CellKey, CellChange]]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def decision_changes(rows: Sequence[tuple[Any, ...]]) -> VersionChanges:
    """What inserting decision rows (:data:`DECISION_COLUMNS` order, as encoded for the database) adds
    to each cell."""
    p = _POSITIONS
    at = [p[c] for c in ("experiment_key", "version", "fallback", "reason", "arm", "day", "policy_version",
                         "explored")]
    # rows alike counted by C-level itemgetter (a send's rows share all but a few values); whether
    # learned is read once per distinct learned version, not per row
    alike = Counter(map(itemgetter(*at, p["learned_version"]), rows))
    out: VersionChanges = {}
    for (key, version, fallback, reason, arm, day, policy, explored, learned), n in alike.items():
        cell = (bool(fallback), str(reason), int(arm), _day(day), policy)
        add_decision(out.setdefault((key, int(version)), {}), cell, bool(explored), learned is not None, n)
    return out


def add_changes(conn: Connection, changes: VersionChanges) -> None:
    """Add each version's cell changes, versions in key order (so that writers lock in one order)."""
    for (key, version) in sorted(changes):
        add_cell_changes(conn, key, version, changes[(key, version)])


def record_decisions(conn: Connection, rows: Sequence[tuple[Any, ...]],
                     compiled_of: CompiledOf = compiled_version) -> None:
    """Count decision rows just inserted on ``conn`` in their cells and breakdowns (same transaction);
    ``compiled_of`` gives each version's compiled spec (default: compiled from its stored text)."""
    if rows:
        add_changes(conn, decision_changes(rows))
        add_breakdowns(conn, inserted_changes(conn, rows, compiled_of))


def inserted_rows(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Of decision rows an insert may have skipped (a send's repeats), those whose id is stored."""
    position = _POSITIONS["id"]
    stored: set[str] = set()
    for chunk in chunks([row[position] for row in rows]):
        stored.update(conn.execute(select(D.c.id).where(D.c.id.in_(chunk))).scalars())
    return [row for row in rows if row[position] in stored]


# ------------------------------------------------------------------------------ outcomes


def begin_write(conn: Connection) -> None:
    """SQLite: take the write lock before the transaction reads (``BEGIN IMMEDIATE``), so what it reads
    cannot change before it writes. PostgreSQL: nothing (see :func:`lock_decisions`)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


#: How many advisory locks the decisions are spread over. PostgreSQL keeps every lock a transaction
#: holds in a shared table of ``max_locks_per_transaction`` x connections entries (6,400 by default): one
#: lock per decision failed ("out of shared memory") for a post of 10,000 to 20,000 decisions, so a
#: decision locks its bucket, and a transaction holds at most this many locks however many it touches.
DECISION_LOCK_BUCKETS = 256


def decision_lock_key(decision_id: str) -> int:
    """The second key of the advisory lock on a decision: its bucket, a hash of its id modulo
    :data:`DECISION_LOCK_BUCKETS`."""
    digest = hashlib.blake2b(decision_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % DECISION_LOCK_BUCKETS


def lock_keys(decision_ids: Iterable[str]) -> set[int]:
    """The lock keys (:func:`decision_lock_key`) of the listed decisions; hashing stops once every
    bucket is among them (a post of more than a few thousand decisions reaches all of them)."""
    keys: set[int] = set()
    for decision_id in decision_ids:
        keys.add(decision_lock_key(decision_id))
        if len(keys) == DECISION_LOCK_BUCKETS:
            break
    return keys


def lock_decisions(conn: Connection, decision_ids: Sequence[str]) -> None:
    """PostgreSQL: lock the listed decisions (those whose rollups this transaction may change), until it
    ends, in sorted order of their lock keys (ids sharing a bucket take turns with those of other
    transactions: two posts wait for each other only when their decisions share a bucket), after
    :data:`DROP_LOCK` shared. SQLite: nothing (:func:`begin_write` holds the database's write lock)."""
    if conn.dialect.name != "postgresql" or not decision_ids:
        return
    keys = sorted(lock_keys(decision_ids))
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", DROP_LOCK)  # no context drop meanwhile
        cursor.executemany("SELECT pg_advisory_xact_lock(%s, %s)", [(DECISION_LOCK_SPACE, k) for k in keys])


def _state_query(compiled: CompiledExperiment, dialect: str) -> Any:
    """The query of :func:`attributed_values` for the version (ids bound as ``ids``,
    :func:`experiments.store.id_lists.ids_parameter`), built once per reward definition and database:
    building the expressions costs more than running the query for a few ids."""
    reward = compiled.spec.reward
    key = (dialect, compiled.spec.key, compiled.version, tuple(event_types(compiled)),
           tuple(reward.value_event_types), tuple(sorted(reward.events.items())))
    query = _STATE_QUERIES.get(key)
    if query is None:
        att = attribution(compiled, ids_parameter(dialect))
        query = select(att.sub.c.decision_id, att.sub.c.value_sum, att.reward, *att.flags)
        _STATE_QUERIES[key] = query
    return query


def attributed_values(conn: Connection, compiled: CompiledExperiment, decision_ids: Sequence[str]
                      ) -> dict[str, tuple[Valued, float]]:
    """The value sum and event flags, and the reward, of each listed decision that has attributed,
    non-machine outcomes (the per-decision part of the full scan,
    :func:`experiments.store.summaries.attribution`)."""
    out: dict[str, tuple[Valued, float]] = {}
    for row in rows_by_ids(conn, _state_query(compiled, conn.dialect.name), sorted(decision_ids)):
        out[row[0]] = ((float(row[1]), tuple(int(f) for f in row[3:])), float(row[2]))
    return out


def attributed_states(conn: Connection, compiled: CompiledExperiment, decision_ids: Sequence[str]
                      ) -> dict[str, Attributed]:
    """The reward and event flags of each listed decision that has attributed, non-machine outcomes
    (the per-decision part of the full scan, :func:`experiments.store.summaries.attribution`)."""
    values = attributed_values(conn, compiled, decision_ids)
    return {i: (reward, flags) for i, ((_, flags), reward) in values.items()}


def _outcome_kinds(row: Mapping[str, Any], valued: Sequence[str]) -> list[str]:
    kinds = []
    if row["machine"]:
        kinds.append(MACHINE_IN_WINDOW if row["attributed"] else MACHINE_LATE)
    elif not row["attributed"]:
        kinds.append(LATE)
    if row["value"] is not None and row["type"] not in valued:
        kinds.append(UNCOUNTED_VALUE)
    return kinds


@dataclass
class OutcomeRollup:
    """The rollup side of one outcome transaction: :meth:`read` the decisions, then :meth:`before` the
    insert and :meth:`after` it.

    Every decision the outcomes name is locked, then read once (:meth:`read`): what the outcomes copy of
    it, its breakdown state, its learned version. Before the insert, each decision that may change has
    its attributed value sum and flags read. After the insert its new state is those plus the outcomes
    accepted for it (:func:`experiments.rollup_deltas.fold_outcomes`; under the lock no other outcome of
    it can arrive meanwhile), and the reward of both follows in Python as the log's SQL computes it
    (:class:`experiments.store.summaries.RewardRule`).

    Parameters
    ----------
    compiled_of : callable (experiment key, version) -> CompiledExperiment
        The spec version of each decision.
    """

    compiled_of: Callable[[str, int], CompiledExperiment]
    _decisions: dict[str, LockedDecision] = field(default_factory=dict)
    _rows: list[Mapping[str, Any]] = field(default_factory=list)
    _rewarding: list[bool] = field(default_factory=list)  # per row of _rows
    _versions: dict[tuple[str, int], CompiledExperiment] = field(default_factory=dict)
    _types: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict)  # event_types, per version
    _id_to_key: dict[str, CellKey] = field(default_factory=dict)
    _before: dict[tuple[str, int], dict[str, Valued]] = field(default_factory=dict)
    _states: BreakdownStates = field(default_factory=BreakdownStates)
    _id_to_learned: dict[str, int | None] = field(default_factory=dict)  # drift: read under the lock

    def _compiled(self, key: str, version: int) -> CompiledExperiment:
        compiled = self._versions.get((key, version))
        if compiled is None:
            compiled = self._versions[(key, version)] = self.compiled_of(key, version)
            self._types[(key, version)] = frozenset(event_types(compiled))
        return compiled

    def read(self, conn: Connection, decision_ids: Collection[str]) -> Mapping[str, LockedDecision]:
        """Lock the decisions outcomes name (:func:`lock_decisions`) and read each that exists, once
        (:func:`experiments.store.breakdown_rollups.locked_rows`, by id): what an outcome copies of it
        (its experiment, version, time, send time, arm, fallback, reason, day, recipient id) and what its
        rollups change from."""
        ids = sorted(set(decision_ids))
        lock_decisions(conn, ids)
        self._decisions = {r[ID]: r for r in locked_rows(conn, ids)}
        return self._decisions

    def before(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Read the attributed states of the decisions (of :meth:`read`) that ``rows`` (outcome rows about
        to be inserted) may change."""
        self._rows = list(rows)
        version_to_ids: dict[tuple[str, int], set[str]] = defaultdict(set)
        cells: dict[tuple[Any, ...], CellKey] = {}  # one key object per cell, not one per decision
        types, id_to_key, flag = self._types, self._id_to_key, self._rewarding.append
        for row in self._rows:
            version = (row["experiment_key"], row["version"])
            counted = types.get(version)
            if counted is None:
                self._compiled(*version)
                counted = types[version]
            rewarding = row["attributed"] and not row["machine"] and row["type"] in counted
            flag(rewarding)
            if rewarding and row["decision_id"] not in id_to_key:
                version_to_ids[version].add(row["decision_id"])
                d = self._decisions[row["decision_id"]]
                stored = (d[FALLBACK], d[REASON], d[ARM], d[DAY], d[POLICY_VERSION])
                cell = cells.get(stored)
                if cell is None:
                    fallback, reason, arm, day, policy = stored
                    cell = cells[stored] = (
                        bool(fallback), str(reason), int(arm), day, None if policy is None else int(policy)
                    )
                id_to_key[row["decision_id"]] = cell
        if not self._id_to_key:
            return
        ids = sorted(self._id_to_key)
        versions = [self._compiled(*version) for version in sorted(version_to_ids)]
        changing = [self._decisions[i] for i in ids]
        self._states.read(conn, versions, changing)
        self._id_to_learned = {
            d[ID]: None if d[LEARNED_VERSION] is None else int(d[LEARNED_VERSION]) for d in changing
        }
        for compiled in versions:
            version = (compiled.spec.key, compiled.version)
            values = attributed_values(conn, compiled, list(version_to_ids[version]))
            self._before[version] = {i: v for i, (v, _) in values.items()}

    def after(self, conn: Connection, accepted: set[str]) -> None:
        """Add to the rollups what the accepted outcomes (by event id) changed."""
        version_to_outcomes: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
        version_to_counts: dict[tuple[str, int], dict[tuple[str, str], int]] = defaultdict(dict)
        for row, rewarding in zip(self._rows, self._rewarding, strict=True):
            if row["event_id"] not in accepted:
                continue
            version = (row["experiment_key"], row["version"])
            if rewarding:
                version_to_outcomes[version].append(row)
            counts = version_to_counts[version]
            if not rewarding or row["value"] is not None:  # a rewarding outcome is of no other kind
                valued = self._versions[version].spec.reward.value_event_types
                for kind in _outcome_kinds(row, valued):
                    counts[(kind, row["type"])] = counts.get((kind, row["type"]), 0) + 1
        changes: VersionChanges = {}
        breakdowns: VersionBreakdowns = {}
        drift_changes: drift.VersionDriftChanges = {}
        for (key, version), outcomes in version_to_outcomes.items():
            compiled = self._compiled(key, version)
            rule = reward_rule(compiled)
            values = self._before[(key, version)]
            folded = fold_outcomes(rule.types, rule.valued, values,
                                   ((r["decision_id"], r["type"], r["value"]) for r in outcomes))
            # decisions changing alike (one cell, learned version, breakdown state, value sum and flags
            # before and after) counted in one pass; the states shared by decisions alike are one
            # object each (:func:`experiments.store.breakdown_rollups.states_of_rows`), grouped by it
            states = self._states.states(compiled)
            shared = {id(state): state for state in states.values()}
            alike = Counter(
                (self._id_to_key[i], self._id_to_learned.get(i), id(states.get(i)), values.get(i), v)
                for i, v in folded.items()
            )
            attributed: dict[Valued | None, Attributed | None] = {None: None}  # each state's reward, once
            cells: Counter[tuple[CellKey, Attributed | None, Attributed | None]] = Counter()
            drifts: Counter[tuple[CellKey, int | None, float, float]] = Counter()
            breakdown: Counter[tuple[DecisionState, Attributed | None, Attributed | None]] = Counter()
            for (cell, learned, state, old, new), n in alike.items():
                for v in (old, new):
                    if v not in attributed:
                        attributed[v] = (rule.reward(*v), v[1])
                a0, a1 = attributed[old], attributed[new]
                cells[(cell, a0, a1)] += n
                drifts[(cell, learned, 0.0 if a0 is None else a0[0], 0.0 if a1 is None else a1[0])] += n
                if state in shared:
                    breakdown[(shared[state], a0, a1)] += n
            changes[(key, version)] = reward_changes(rule.types, cells)
            breakdowns[(key, version)] = outcome_change(compiled, breakdown)
            drift_changes[(key, version)] = drift.drift_reward_changes(drifts)
        add_changes(conn, changes)
        add_breakdowns(conn, breakdowns)
        drift.add_drift_changes(conn, drift_changes)
        for key, version in sorted(version_to_counts):
            add_outcome_counts(conn, key, version, version_to_counts[(key, version)])


# ------------------------------------------------------------------------------ learning


def record_learned(conn: Connection, decision_ids: Sequence[str], version: int) -> None:
    """Count in ``learned`` the listed decisions not learned yet, and move them to the drift cells of
    snapshot ``version``; call it in the learner's transaction before marking them (``learned_version``
    set to ``version``), which it must then do. The decisions are locked first (as outcome posts lock
    them), so that no post changes their rewards between the drift move and the commit; then read once,
    for both."""
    ids = sorted(set(decision_ids))
    lock_decisions(conn, ids)
    names = [*drift.LEARNED_COLUMNS, "reason"]
    rows = list(rows_by_ids(conn, select(*[D.c[c] for c in names]).where(column_in(conn, D.c.id)), ids))
    alike = Counter((key, spec_version, fallback, reason, arm, day, policy)
                    for _, key, spec_version, fallback, day, policy, learned, arm, reason in rows
                    if learned is None)
    changes: VersionChanges = {}
    for (key, spec_version, fallback, reason, arm, day, policy), n in alike.items():
        cell = (bool(fallback), str(reason), int(arm), day, None if policy is None else int(policy))
        add_learned(changes.setdefault((key, int(spec_version)), {}), cell, n)
    add_changes(conn, changes)
    drift.record_drift_learned(conn, rows, version, attributed_states)
