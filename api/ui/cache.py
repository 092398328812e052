"""A small time-limited cache of what the pages compute from the store (summaries, analyses).

A summary of an experiment with a million decisions is a few SQL aggregations; the pages reuse it for
``ttl_seconds`` so that reloading a page, or opening the list and then an experiment, stays fast. Each
page says how old its numbers are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cached:
    """A computed value and the clock reading when it was computed."""

    value: Any
    computed_at: float


class TimedCache:
    """Values by key, recomputed when older than ``ttl_seconds``.

    Parameters
    ----------
    ttl_seconds : float
        How long a value is served before it is computed again (0 disables caching).
    clock : callable returning float seconds
        Monotonic clock (injected in tests).
    max_entries : int
        The oldest entries are dropped beyond this many.
    """

    def __init__(
        self,
        ttl_seconds: float = 15.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 256,
    ) -> None:
        if not ttl_seconds >= 0:
            raise ValueError(f"ttl_seconds: must be >= 0, got {ttl_seconds!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries: must be >= 1, got {max_entries!r}")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[Hashable, Cached] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, float]:
        """The value for ``key`` and its age in seconds, computing it when missing or stale.

        ``compute`` runs outside the lock; an exception from it is raised and nothing is stored.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry.computed_at < self.ttl_seconds:
            return entry.value, now - entry.computed_at
        value = compute()
        entry = Cached(value, self._clock())
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self._max:
                self._entries.pop(next(iter(self._entries)))
        return value, 0.0

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
