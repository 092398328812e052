"""Learning: run the learning loop over mature decisions and late outcomes (the schedule is
:mod:`experiments.learner`'s, off the request path), graduate an apprentice, and read the policy
snapshots."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from experiments.assignment import CompiledExperiment
from experiments.delayed_learning import learn_with_delays
from experiments.errors import Conflict, InvalidInput, NotFound
from experiments.learning import learn_one_batch
from experiments.models import PolicySnapshotInfo
from experiments.service.catalog import Catalog
from experiments.service.core import ServiceCore
from experiments.store import from_db_time
from experiments.store.repository import check_stored_key
from experiments.store.summaries import apprentice_agreement

log = logging.getLogger(__name__)


class Learning:
    """The learning loop of adaptive experiments and their policy snapshots.

    Parameters
    ----------
    core : ServiceCore
    catalog : Catalog
        Graduates an apprentice that agreed often enough.
    learn_batch : int
        Decisions, then late outcomes, learned per transaction (one policy snapshot per batch).
    """

    def __init__(self, core: ServiceCore, catalog: Catalog, learn_batch: int = 5000) -> None:
        self._core = core
        self._catalog = catalog
        self._learn_batch = learn_batch

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
        with self._core.engine.connect() as conn:
            _, compiled = self._core.repo.current(conn, key)
        if not compiled.adaptive:
            raise Conflict(
                f"experiment {key!r} is a {compiled.spec.design.type} design: there is no policy to learn"
            )
        cutoff = self._core.now() - timedelta(hours=compiled.spec.learning_delay_hours)
        size = self._learn_batch if batch is None else batch
        while True:
            with self._core.engine.begin() as conn:
                done = learn_one_batch(conn, compiled, cutoff, size, self._core.now())
            if not done.full:
                self._maybe_graduate(key, compiled)
                return learn_with_delays(self._core.engine, compiled, cutoff, self._core.now(), done.version)
            if pause_seconds > 0:
                time.sleep(pause_seconds)

    def _maybe_graduate(self, key: str, compiled: CompiledExperiment) -> None:
        warm = compiled.spec.design.warm_start
        if warm is None:
            return
        with self._core.engine.connect() as conn:
            record = self._core.repo.experiment(conn, key)
            if not record.apprentice or record.version != compiled.version:
                return
            n, share = apprentice_agreement(conn, compiled, last=warm.min_decisions)
        if n >= warm.min_decisions and share is not None and share >= warm.agreement:
            log.info(
                "experiment %s: the apprentice agreed on %.1f%% of %d decisions; exploring now",
                key,
                100 * share,
                n,
            )
            self._catalog.graduate(key)

    def policy_state(self, key: str) -> tuple[int, bytes]:
        """The latest policy snapshot of an adaptive experiment: ``(version, bytes)``."""
        check_stored_key(key, "policy of experiment")
        with self._core.engine.connect() as conn:
            snap = self._core.repo.latest_snapshot(conn, key, state=True)
        if snap is None or snap.state is None:
            raise NotFound(key, "policy of experiment")
        return snap.version, snap.state

    def policy_history(self, key: str, limit: int | None = None) -> list[PolicySnapshotInfo]:
        """Every stored policy version of an experiment, oldest first (empty for hash designs); with
        ``limit``, at most that many, evenly spread over the versions, the first and the latest included.

        Three queries over the snapshot table (the versions, then the rows of those drawn and, for a
        bandit's, their arm probabilities); no decision is read and no state restored (a bandit
        snapshot's ``probabilities(1)`` are stored with it, :mod:`experiments.store.snapshot_summaries`).

        Raises
        ------
        InvalidInput
            ``limit`` is not an integer >= 2.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
            raise InvalidInput("limit", f"must be an integer >= 2 or None, got {limit!r}")
        repo = self._core.repo
        with self._core.engine.connect() as conn:
            repo.experiment(conn, key)
            versions = repo.snapshot_versions(conn, key)
            if limit is not None and len(versions) > limit:
                last = len(versions) - 1
                drawn = sorted({round(j * last / (limit - 1)) for j in range(limit)})
                versions = [versions[i] for i in drawn]
            snaps = repo.snapshots(conn, key, versions)  # the rows of the versions drawn alone
            # only a bandit design's snapshots store arm probabilities (chart_probabilities): the others'
            # rows are not read for them (on SQLite a contextual state lies before them in the row)
            bandit = {v for v in {s.spec_version for s in snaps}
                      if repo.compiled(key, v, conn=conn).spec.design.type == "bandit"}
            version_to_probs = repo.arm_probabilities(conn, key, [s.version for s in snaps
                                                                  if s.spec_version in bandit])
        return [
            PolicySnapshotInfo(
                version=s.version,
                spec_version=s.spec_version,
                created_at=from_db_time(s.created_at),
                learned_decisions=s.learned_decisions,
                arm_probabilities=version_to_probs.get(s.version),
            )
            for s in snaps
        ]
