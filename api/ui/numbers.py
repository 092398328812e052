"""What the pages read from the service, and how they are kept in the pages' cache.

An experiment page needs its summary, for adaptive designs its learning summary and policy history
(:class:`ExperimentNumbers`); the list needs every experiment's traffic (one aggregated query). These
are the slow part of a page (SQL over the decision log); the analysis and the charts are computed from
them. :func:`refresh_numbers` recomputes them all and stores them in the cache: the background
refresher (:mod:`api.ui.refresher`) calls it at start-up and then every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from api.ui.cache import TimedCache
from api.ui.views import HISTORY_POINTS
from experiments.adaptive_block import EstimatedLog, estimate_log
from experiments.drift_block import DriftVerdict, monitor_log
from experiments.models import (
    ExperimentInfo,
    ExperimentSummary,
    ExperimentTraffic,
    LearningSummary,
    PolicySnapshotInfo,
)
from experiments.result_analysis import ADAPTIVE_DESIGNS
from experiments.service import ExperimentService

log = logging.getLogger("sendlab.ui")

TRAFFIC_KEY: tuple[str] = ("traffic",)


@dataclass(frozen=True)
class ExperimentNumbers:
    """An experiment's numbers as read from the store at ``computed_at`` (aware UTC)."""

    info: ExperimentInfo
    summary: ExperimentSummary
    learning: LearningSummary | None
    history: list[PolicySnapshotInfo]
    computed_at: datetime
    adaptive: EstimatedLog | None = None  # bandit and contextual designs: the adaptive estimates' inputs
    drift: DriftVerdict | None = None  # the drift monitor of the results' ``drift`` block


def numbers_key(info: ExperimentInfo) -> Hashable:
    """The cache key of an experiment version's numbers."""
    return ("numbers", info.key, info.version)


def gather_numbers(service: ExperimentService, info: ExperimentInfo) -> ExperimentNumbers:
    """Read an experiment's summary (and, for adaptive designs, what its policy learned) now."""
    computed_at = datetime.now(UTC)
    summary, learning = service.summarize_with_learning(info.key)
    adaptive = summary.design in ADAPTIVE_DESIGNS
    history = service.policy_history(info.key, limit=HISTORY_POINTS) if adaptive else []
    estimated = estimate_log(service.read_adaptive(info.key)) if adaptive else None
    drift = monitor_log(service.read_drift(info.key))
    return ExperimentNumbers(info, summary, learning, history, computed_at, estimated, drift)


def cached_numbers(
    cache: TimedCache, service: ExperimentService, info: ExperimentInfo
) -> tuple[ExperimentNumbers, float]:
    """The cached numbers of ``info``'s version and their age in seconds (computed now when missing)."""
    numbers: ExperimentNumbers
    numbers, age = cache.get(numbers_key(info), lambda: gather_numbers(service, info))
    return numbers, age


def cached_traffic(cache: TimedCache, service: ExperimentService) -> tuple[list[ExperimentTraffic], float]:
    """Every experiment's traffic, from the cache, and its age in seconds (computed now when missing)."""
    traffic: list[ExperimentTraffic]
    traffic, age = cache.get(TRAFFIC_KEY, service.traffic)
    return traffic, age


def refresh_numbers(
    service: ExperimentService,
    cache: TimedCache,
    *,
    idle_after_seconds: float,
    after_each: Callable[[ExperimentNumbers], None] | None = None,
) -> int:
    """Recompute the list's traffic and the numbers of every running experiment; those of paused and
    archived experiments (whose outcomes may still arrive) once their cached numbers are older than
    ``idle_after_seconds``. Return how many experiments were refreshed.

    An experiment whose refresh fails is logged and skipped; the others go on. ``after_each`` runs on
    each new set of numbers (the pages pre-render their default view with it).
    """
    infos = service.list()
    try:
        cache.put(TRAFFIC_KEY, service.traffic())
    except Exception:
        log.exception("refreshing the experiments' traffic failed")
    refreshed = 0
    for info in infos:
        key = numbers_key(info)
        if info.status != "running":
            age = cache.age(key)
            if age is not None and age < idle_after_seconds:
                continue
        try:
            numbers = gather_numbers(service, info)
            cache.put(key, numbers)
            if after_each is not None:
                after_each(numbers)
        except Exception:
            log.exception("refreshing the numbers of experiment %s failed", info.key)
            continue
        refreshed += 1
    return refreshed
