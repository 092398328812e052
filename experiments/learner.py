"""The learning schedule, run off the request path.

Assigning and recording outcomes never learn. A :class:`ScheduledLearner` checks, when asked (by the
background task of each ``sendlab serve`` worker, :mod:`api.learner_task`, or by ``sendlab learn
--watch``), whether each running adaptive experiment is due by its spec's ``design.update``:

- ``every_seconds``: that long since the latest policy snapshot, or since this learner's last run of
  the experiment, whichever is later;
- ``every_outcomes``: that many attributed outcomes not learned yet, beyond those this learner's last
  run left behind under the same snapshot (outcomes of decisions not mature yet), so that it does not
  run again on every check while they wait;
- ``delay_hours`` (how old a decision must be to be learned) is applied by the run itself
  (:meth:`experiments.service.ExperimentService.learn`).

An experiment with neither trigger learns only when asked (``POST /learn``, ``sendlab learn KEY``).
Learners in several processes may check the same experiment: each run takes the experiment's
learning lock (:func:`experiments.store.lock_for_learning`) batch by batch, so one learns at a time and
the next finds the new snapshot (and usually nothing left to learn).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from experiments.models import ExperimentInfo
from experiments.service import ExperimentService
from experiments.spec import UpdateSchedule
from experiments.store import to_db_time
from experiments.store.learning_log import pending_outcomes
from experiments.store.repository import SnapshotRecord, latest_snapshot

log = logging.getLogger(__name__)

SQLITE_SCHEDULED_BATCH = 1000
"""Decisions per transaction of a scheduled run on SQLite (one write lock for the whole database)."""
SQLITE_PAUSE_SECONDS = 0.15
"""The pause between a scheduled run's batches on SQLite."""


@dataclass(frozen=True)
class LearnRun:
    """What one learning run of an experiment did.

    ``version_before`` and ``version`` are the policy versions before and after; ``decisions`` and
    ``outcomes`` how many were learned (``outcomes`` counts late outcomes revised in too); ``at`` is
    when the run started (aware UTC).
    """

    key: str
    version_before: int
    version: int
    decisions: int
    outcomes: int
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready values (``at`` in ISO 8601)."""
        return {
            "key": self.key,
            "version_before": self.version_before,
            "version": self.version,
            "decisions": self.decisions,
            "outcomes": self.outcomes,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class _Attempt:
    """This learner's last run of an experiment: when, the policy version after it, and the outcomes it
    left unlearned."""

    at: datetime
    version: int
    pending: int


def has_schedule(schedule: UpdateSchedule) -> bool:
    """True when the spec asks for learning by itself (``every_outcomes`` or ``every_seconds``)."""
    return schedule.every_outcomes is not None or schedule.every_seconds is not None


class ScheduledLearner:
    """Runs the learning that experiments' ``design.update`` schedules call for.

    Parameters
    ----------
    service : ExperimentService
        The service whose :meth:`~ExperimentService.learn` runs are scheduled; the schedule reads its
        store (the latest snapshot, the pending outcomes) and keeps its clock.
    """

    def __init__(self, service: ExperimentService) -> None:
        self._service = service
        self._engine = service.engine
        self._clock = service.clock
        self._attempts: dict[str, _Attempt] = {}
        self._repo = service.core.repo
        # SQLite has one write lock: a scheduled run learns in small batches and pauses between them
        # for longer than SQLite's busy handler sleeps (100 ms at most), so that an assign waiting for
        # the lock gets it after one small batch instead of after the whole run.
        sqlite = self._engine.dialect.name == "sqlite"
        self._polite: dict[str, Any] = (
            {"batch": SQLITE_SCHEDULED_BATCH, "pause_seconds": SQLITE_PAUSE_SECONDS} if sqlite else {}
        )

    def _snapshot(self, key: str) -> SnapshotRecord | None:
        with self._engine.connect() as conn:
            return latest_snapshot(conn, key)

    def learn(self, key: str) -> LearnRun:
        """Learn now, whatever the schedule (every mature decision and late outcome not learned yet)."""
        at = self._clock()
        before = self._snapshot(key)
        version = self._service.learn(key)
        return self._run(key, before, version, at)

    def _run(self, key: str, before: SnapshotRecord | None, version: int, at: datetime) -> LearnRun:
        after = self._snapshot(key)
        if before is None or after is None:  # the service found a snapshot: only a race with a reset
            return LearnRun(key, version, version, 0, 0, at)
        return LearnRun(
            key,
            before.version,
            version,
            after.learned_decisions - before.learned_decisions,
            after.cursor - before.cursor,
            at,
        )

    def check(self, info: ExperimentInfo) -> LearnRun | None:
        """Learn ``info``'s experiment if it is running, adaptive and due by its schedule; else None."""
        if info.status != "running":
            return None
        with self._engine.connect() as conn:
            compiled = self._repo.compiled(info.key, info.version, conn=conn)
        schedule = compiled.spec.design.update
        if not compiled.adaptive or not has_schedule(schedule):
            return None
        snap = self._snapshot(info.key)
        if snap is None:
            return None
        now = to_db_time(self._clock())
        attempt = self._attempts.get(info.key)
        since = snap.created_at if attempt is None else max(snap.created_at, attempt.at)
        due, pending = False, 0
        if schedule.every_seconds is not None:
            due = (now - since).total_seconds() >= schedule.every_seconds
        if not due and schedule.every_outcomes is not None:
            with self._engine.connect() as conn:
                pending = pending_outcomes(conn, compiled)
            left = attempt.pending if attempt is not None and attempt.version == snap.version else 0
            due = pending - left >= schedule.every_outcomes
        if not due:
            return None
        self._attempts[info.key] = _Attempt(now, snap.version, pending)  # kept if the run fails
        started = self._clock()
        version = self._service.learn(info.key, **self._polite)
        with self._engine.connect() as conn:
            self._attempts[info.key] = _Attempt(now, version, pending_outcomes(conn, compiled))
        return self._run(info.key, snap, version, started)

    def check_key(self, key: str) -> LearnRun | None:
        """:meth:`check` of the experiment ``key`` as stored now."""
        return self.check(self._service.get(key))

    def check_all(self) -> list[LearnRun]:
        """:meth:`check` every experiment; a failing run is logged and the others still run."""
        runs = []
        for info in self._service.list():
            try:
                run = self.check(info)
            except Exception:  # one experiment's failure must not stop the others' learning
                log.exception("experiment %s: scheduled learning failed", info.key)
                continue
            if run is not None:
                runs.append(run)
        return runs


class LearnerThread:
    """A daemon thread that calls ``tick`` every ``poll_seconds`` until :meth:`stop`.

    ``tick`` runs at once when started, then ``poll_seconds`` after the end of the previous one; an
    exception in it is logged and the thread goes on.
    """

    def __init__(
        self, tick: Callable[[], object], poll_seconds: float, name: str = "sendlab-learner"
    ) -> None:
        self._tick = tick
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("background learner: a check failed")
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        """Start checking (the first check at once)."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for the current check to end (at most ``timeout`` seconds)."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()
