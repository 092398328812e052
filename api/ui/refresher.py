"""A background thread that keeps the pages' numbers warm: it recomputes them at start-up and then
every few seconds, so a visitor is answered from the cache instead of waiting for the store.

Each service process (each ``uvicorn`` worker) runs its own refresher over its own cache. A failed
refresh is logged and the next one runs on schedule; the previous numbers stay in the cache, and each
page says how old they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("sendlab.ui")


class Refresher:
    """Call ``refresh`` once at :meth:`start`, then every ``interval_seconds``, in a daemon thread.

    The pause runs from the end of one refresh to the start of the next, so a slow store never stacks
    refreshes, and it is at least :attr:`PAUSE_PER_BUSY` times as long as the refresh took, so the
    refresher takes at most a third of the process's time however large the experiments grow.
    :meth:`stop` wakes the thread and waits for the refresh in progress to end.

    Parameters
    ----------
    refresh : callable
        One refresh of everything. An exception is logged with its traceback and does not end the
        thread.
    interval_seconds : float
        Pause between two refreshes (> 0).
    name : str
        The thread's name (shown in logs and thread dumps).
    """

    PAUSE_PER_BUSY = 2.0

    def __init__(
        self, refresh: Callable[[], None], interval_seconds: float, *, name: str = "sendlab-ui-refresher"
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds: must be > 0, got {interval_seconds!r}")
        self._refresh = refresh
        self.interval_seconds = float(interval_seconds)
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.refreshes = 0  # refreshes finished, with or without an error
        self.failures = 0
        self.last_duration_seconds: float | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (its first refresh begins at once). Starting a running refresher does nothing."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the thread to end and wait up to ``timeout`` seconds; True when it has ended."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                self._refresh()
            except Exception:
                self.failures += 1
                log.exception("refreshing the pages' numbers failed; trying again in %.0f s",
                              self.interval_seconds)
            busy = self.last_duration_seconds = time.perf_counter() - started
            self.refreshes += 1
            self._stop.wait(max(self.interval_seconds, self.PAUSE_PER_BUSY * busy))
