"""A small time-limited cache of what the pages compute from the store (summaries, page contents).

Reading an experiment's numbers from a store of a million decisions is the slow part of a page (see
the ``ui`` section of BENCHMARKS.md). The background refresher (:mod:`api.ui.refresher`) puts fresh
numbers here every few seconds. Without it, the pages reuse a value for ``ttl_seconds``; after that, up
to ``stale_seconds``, they still answer at once with the old value while one background refresh
computes the new one (stale-while-revalidate). Each page says how old its numbers are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sendlab.ui")

Spawn = Callable[[Callable[[], None]], None]


def spawn_daemon_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a new daemon thread."""
    threading.Thread(target=work, daemon=True, name="sendlab-ui-refresh").start()


@dataclass(frozen=True)
class Cached:
    """A computed value and the clock reading when it was computed."""

    value: Any
    computed_at: float


class TimedCache:
    """Values by key: fresh for ``ttl_seconds``, served stale while refreshing up to ``stale_seconds``.

    Parameters
    ----------
    ttl_seconds : float
        How long a value is served as is (0: every request wants a new value).
    stale_seconds : float
        Up to this age an older value is still served, and a refresh starts in the background (at most
        one per key at a time). Beyond it, or when 0, the value is computed during the request.
    clock : callable returning float seconds
        Monotonic clock (injected in tests).
    spawn : callable
        Runs a refresh in the background (a daemon thread; tests pass a synchronous runner).
    max_entries : int
        The oldest entries are dropped beyond this many.
    """

    def __init__(
        self,
        ttl_seconds: float = 15.0,
        *,
        stale_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        spawn: Spawn = spawn_daemon_thread,
        max_entries: int = 256,
    ) -> None:
        if not ttl_seconds >= 0:
            raise ValueError(f"ttl_seconds: must be >= 0, got {ttl_seconds!r}")
        if not stale_seconds >= 0:
            raise ValueError(f"stale_seconds: must be >= 0, got {stale_seconds!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries: must be >= 1, got {max_entries!r}")
        self.ttl_seconds = ttl_seconds
        self.stale_seconds = stale_seconds
        self._clock = clock
        self._spawn = spawn
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[Hashable, Cached] = {}
        self._refreshing: set[Hashable] = set()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, float]:
        """The value for ``key`` and its age in seconds.

        Fresh values are returned as they are; stale ones too, after starting a background refresh;
        missing or too old ones are computed now. ``compute`` runs outside the lock; when it raises
        during a request the exception propagates and nothing is stored (a failed background refresh
        leaves the old value in place).
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            age = None if entry is None else now - entry.computed_at
            refresh = (
                entry is not None and age is not None and self.ttl_seconds <= age < self.stale_seconds
                and key not in self._refreshing
            )
            if refresh:
                self._refreshing.add(key)
        if entry is not None and age is not None and (age < self.ttl_seconds or age < self.stale_seconds):
            if refresh:
                self._spawn(lambda: self._refresh(key, compute))
            return entry.value, age
        value = compute()
        self._store(key, value)
        return value, 0.0

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            self._store(key, compute())
        except Exception:  # the old value stays; the next stale request tries again
            log.warning("background refresh of %r failed", key, exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def age(self, key: Hashable) -> float | None:
        """Seconds since the value of ``key`` was computed, or None when there is none."""
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else self._clock() - entry.computed_at

    def remember(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value of ``key`` whatever its age, computed now (and stored) when missing: for values
        derived from others, whose keys name what they were derived from."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            return entry.value
        value = compute()
        self._store(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` for ``key`` as computed now."""
        self._store(key, value)

    def _store(self, key: Hashable, value: Any) -> None:
        entry = Cached(value, self._clock())
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = entry
            while len(self._entries) > self._max:
                self._entries.pop(next(iter(self._entries)))

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
