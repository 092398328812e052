"""The breakdown rollups (the adaptive inverse-propensity sums, the decisions by segment and the CUPED
sums by covariate, :mod:`experiments.breakdown_deltas`) kept in the transactions that change them.

What changes a learnable decision's contribution, and where it is added:

- **inserted** (:func:`inserted_changes`, from :func:`experiments.store.rollups.record_decisions`): its
  contribution with reward 0, its segment texts and covariates computed from the context it is written
  with (:mod:`experiments.store.segment_values`);
- **outcomes accepted** (:class:`BreakdownStates`, in :class:`experiments.store.rollups.OutcomeRollup`):
  its state is read after the decision is locked, and its contribution with the reward after the insert
  less that with the reward before is added;
- **its context dropped** (retention, erasure: :mod:`experiments.store.context_drops`): its
  contribution missing every context attribute less that with them.

Decisions are never deleted (retention and erasure keep them), so the smallest propensity per
(policy version, arm), which no difference can undo, only ever takes a minimum with new decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment
from experiments.breakdown_deltas import BreakdownChange, DecisionState
from experiments.rollup_deltas import Attributed
from experiments.store.breakdown_tables import add_breakdown_change, overflowed_attributes
from experiments.store.id_lists import column_in, rows_by_ids
from experiments.store.repository import spec_text
from experiments.store.segment_values import (
    compiled_of_text,
    decision_states,
    from_variants,
    segment_attributes,
)
from experiments.store.summaries import event_types
from experiments.store.tables import decisions_table as D
from experiments.store.writes import DECISION_COLUMNS

#: Per (experiment key, spec version), what one write adds to its breakdown rollups.
VersionBreakdowns = dict[tuple[str, int], BreakdownChange]
#: The compiled spec of a stored version, given the connection to read it on (:func:`compiled_version`).
CompiledOf = Callable[[Connection, str, int], CompiledExperiment]
#: The columns a decision's state is computed from (:func:`experiments.store.segment_values.decision_states`).
STATE_COLUMNS = ("policy_version", "arm", "propensity", "context", "variants")
_POSITIONS = {c: DECISION_COLUMNS.index(c) for c in ("experiment_key", "version", "fallback", *STATE_COLUMNS)}


def compiled_version(conn: Connection, key: str, version: int) -> CompiledExperiment:
    """The compiled spec of a stored version (memoised by its text)."""
    return compiled_of_text(spec_text(conn, key, version), version)


def inserted_changes(conn: Connection, rows: Sequence[tuple[Any, ...]],
                     compiled_of: CompiledOf = compiled_version) -> VersionBreakdowns:
    """What decision rows just inserted (:data:`DECISION_COLUMNS` order, encoded) add: their learnable
    decisions' contributions with reward 0. ``compiled_of`` gives each version's compiled spec (the
    assignment path passes the one it decided with, so the spec text is not read again)."""
    p = _POSITIONS
    # rows alike in every column a state is computed from (a send's recipients of one context, or
    # without one) have one state: computed once, counted as many times; the rows are counted by a
    # C-level itemgetter, and split by version (fallback ones left out) once per distinct row
    counted = Counter(map(itemgetter(p["fallback"], p["experiment_key"], p["version"],
                                     *[p[c] for c in STATE_COLUMNS]), rows))
    version_to_rows: dict[tuple[str, int], Counter[tuple[Any, ...]]] = {}
    for (fallback, key, version_number, *state), n in counted.items():
        if not fallback:
            version = (str(key), int(version_number))
            alike = version_to_rows.get(version)
            if alike is None:
                alike = version_to_rows[version] = Counter()
            alike[tuple(state)] += n
    out: VersionBreakdowns = {}
    for (key, version), alike in version_to_rows.items():
        compiled = compiled_of(conn, key, version)
        change = out[(key, version)] = BreakdownChange()
        # the overflow marks only ever leave out segment attributes: a version without any reads none
        overflowed = overflowed_attributes(conn, key, version) if segment_attributes(compiled) else ()
        skip = frozenset(overflowed)
        decisions = [dict(zip(STATE_COLUMNS, values, strict=True)) for values in alike]
        change.insert_new(decision_states(conn, compiled, decisions, skip), list(alike.values()))
    return out


def add_breakdowns(conn: Connection, changes: VersionBreakdowns) -> None:
    """Add each version's changes, versions in key order (writers lock rows in one order)."""
    for key, version in sorted(changes):
        add_breakdown_change(conn, key, version, changes[(key, version)])


#: The columns :func:`locked_rows` reads of a decision, in the order of its tuples: what an outcome
#: copies of it, its rollup cell's key, its learned version, and what its breakdown state is computed
#: from (``context`` and ``variants`` as their stored JSON text, None for SQL NULL, parsed by
#: :func:`states_of_rows` once per distinct text).
LOCKED_COLUMNS = ("id", "experiment_key", "version", "created_at", "send_at", "recipient_id", "fallback",
                  "reason", "day", "learned_version", "policy_version", "arm", "propensity", "context",
                  "variants")
#: The positions of :data:`LOCKED_COLUMNS` in a tuple of :func:`locked_rows`. Plain tuples: a field of
#: a SQLAlchemy row by name cost ten times as much, and the garbage collector stops tracking a tuple
#: of plain values but never a named tuple (100,000 tracked ones made it walk the heap more often).
(ID, EXPERIMENT_KEY, VERSION, CREATED_AT, SEND_AT, RECIPIENT_ID, FALLBACK, REASON, DAY, LEARNED_VERSION,
 POLICY_VERSION, ARM, PROPENSITY, CONTEXT, VARIANTS) = range(len(LOCKED_COLUMNS))
#: A decision as :func:`locked_rows` reads it (:data:`LOCKED_COLUMNS`).
LockedDecision = tuple[Any, ...]


def locked_rows(conn: Connection, decision_ids: Sequence[str]) -> list[LockedDecision]:
    """The stored rows of the listed decisions that exist (:data:`LOCKED_COLUMNS`): read
    them after locking the decisions, as their contexts may be dropped meanwhile and their learned
    versions set. By id alone (the primary key): with the version's conditions in the query, PostgreSQL
    chose to scan the version's decisions and filter the ids (5 s per 1,000). ``context`` and
    ``variants`` are their JSON text: SQLAlchemy's JSON result processing parsed every row's, most of
    them alike."""
    query = _LOCKED_QUERIES.get(conn.dialect.name)
    if query is None:
        columns = [cast(D.c[c], Text).label(c) if c in ("context", "variants") else D.c[c]
                   for c in LOCKED_COLUMNS]
        query = _LOCKED_QUERIES[conn.dialect.name] = select(*columns).where(column_in(conn, D.c.id))
    return rows_by_ids(conn, query, sorted(decision_ids), make=tuple)


#: The query of :func:`locked_rows`, by database: built once (building it and its cache key cost more
#: than running it for the few ids of a post of one outcome).
_LOCKED_QUERIES: dict[str, Any] = {}


def states_of_rows(conn: Connection, compiled: CompiledExperiment, rows: Sequence[LockedDecision]
                   ) -> dict[str, DecisionState]:
    """The state (reward 0) of each row of :func:`locked_rows` that is a learnable decision of
    ``compiled``'s version. Rows alike in what a state is computed from (their contexts' and variants'
    texts among it) share one state, computed once (the context only when the version records
    attributes, the variants only when a segment reads them)."""
    key, version = compiled.spec.key, compiled.version
    variants, context = bool(from_variants(compiled)), bool(compiled.stored_attributes)
    alike: dict[tuple[Any, ...], list[str]] = {}
    for r in rows:
        if r[EXPERIMENT_KEY] == key and r[VERSION] == version and not r[FALLBACK]:
            state = (r[POLICY_VERSION], r[ARM], r[PROPENSITY], r[CONTEXT] if context else None,
                     r[VARIANTS] if variants else None)
            ids = alike.get(state)
            if ids is None:
                ids = alike[state] = []
            ids.append(r[ID])
    distinct = [dict(zip(STATE_COLUMNS, state, strict=True)) for state in alike]
    out: dict[str, DecisionState] = {}
    for ids, state in zip(alike.values(), decision_states(conn, compiled, distinct), strict=True):
        out.update(dict.fromkeys(ids, state))
    return out


def stored_states(conn: Connection, compiled: CompiledExperiment, decision_ids: Sequence[str]
                  ) -> dict[str, DecisionState]:
    """The state (reward 0) of each listed learnable decision of ``compiled``'s version, as stored now
    (read it after locking the decision: its context may be dropped meanwhile)."""
    return states_of_rows(conn, compiled, locked_rows(conn, decision_ids))


def _outcome_state(state: DecisionState, attributed: Attributed | None, n_types: int) -> DecisionState:
    reward, flags = attributed if attributed is not None else (0.0, (0,) * n_types)
    return state.with_outcomes(reward, flags)


def outcome_change(compiled: CompiledExperiment,
                   alike: Mapping[tuple[DecisionState, Attributed | None, Attributed | None], int]
                   ) -> BreakdownChange:
    """The change of the version's breakdowns from its decisions going from one attributed state to
    another (None: no attributed event), given as how many decisions ``(state, before, after)`` counts
    (decisions changing alike, added at once: ``n`` times the difference)."""
    types = event_types(compiled)
    none: Attributed = (0.0, (0,) * len(types))
    same: Counter[tuple[DecisionState, Attributed, Attributed]] = Counter()
    for (state, old, new), n in alike.items():
        if old is None:
            old = none
        if new is None:
            new = none
        if old != new:
            same[(state, old, new)] += n
    change = BreakdownChange()
    for (state, old, new), n in same.items():
        change.outcome(state, old, new, types, n)
    return change


def dropped_change(
    compiled: CompiledExperiment, states: Mapping[str, DecisionState], rewards: Mapping[str, Attributed]
) -> BreakdownChange:
    """The change of the version's breakdowns from its decisions (``states``, with their attributed
    ``rewards``) losing their contexts: each counts as missing every context attribute."""
    types = event_types(compiled)
    kept = from_variants(compiled)
    change = BreakdownChange()
    for decision_id, state in states.items():
        now = _outcome_state(state, rewards.get(decision_id), len(types))
        change.change(now, now.without_context(kept), types)
    return change


@dataclass
class BreakdownStates:
    """The breakdown side of one outcome transaction (:class:`experiments.store.rollups.OutcomeRollup`):
    the states of the decisions it may change, read once they are locked."""

    version_to_states: dict[tuple[str, int], dict[str, DecisionState]] = field(default_factory=dict)

    def read(self, conn: Connection, versions: Sequence[CompiledExperiment], rows: Sequence[LockedDecision]
             ) -> None:
        """Compute the states of the decisions of ``rows`` (:func:`locked_rows`, read under their locks)
        of the spec ``versions``."""
        for compiled in versions:
            version = (compiled.spec.key, compiled.version)
            self.version_to_states[version] = states_of_rows(conn, compiled, rows)

    def states(self, compiled: CompiledExperiment) -> Mapping[str, DecisionState]:
        """The state of each learnable decision of ``compiled``'s version read (those alike one object)."""
        return self.version_to_states.get((compiled.spec.key, compiled.version), {})
