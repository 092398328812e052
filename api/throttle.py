"""A token bucket per client for failed keys, so that keys cannot be guessed at speed.

Each client (its IP address as the server sees it) has :data:`FAILED_KEY_BURST` tokens; each failed key
(an unknown bearer key, a wrong key typed into the pages' key form) takes one, and one comes back every
:data:`FAILED_KEY_REFILL_SECONDS`. A client without a token gets 429 with ``Retry-After`` on every
authenticated call, before its key is even looked at, until a token is back. Each server process keeps
its own buckets in memory, at most :data:`FAILED_KEY_CLIENTS` of them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from experiments.limits import FAILED_KEY_BURST, FAILED_KEY_CLIENTS, FAILED_KEY_REFILL_SECONDS


class FailedKeyThrottle:
    """Per-client buckets of failed-key tokens; ``clock`` is injected (tests)."""

    def __init__(
        self,
        burst: int = FAILED_KEY_BURST,
        refill_seconds: float = FAILED_KEY_REFILL_SECONDS,
        max_clients: int = FAILED_KEY_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_clients = max_clients
        self.clock = clock
        self._client_to_bucket: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, then = self._client_to_bucket.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - then) / self.refill_seconds)

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try a key again, or None when it may now."""
        with self._lock:
            if client not in self._client_to_bucket:
                return None
            tokens = self._tokens(client, self.clock())
        if tokens >= 1:
            return None
        return max(1, math.ceil((1 - tokens) * self.refill_seconds))

    def record_failure(self, client: str) -> None:
        """Take one token from ``client``'s bucket."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(client, now)
            self._client_to_bucket[client] = (max(0.0, tokens - 1), now)
            self._client_to_bucket.move_to_end(client)
            while len(self._client_to_bucket) > self.max_clients:
                self._client_to_bucket.popitem(last=False)

    def reset(self) -> None:
        """Forget every client's failures (as a restart of the process does)."""
        with self._lock:
            self._client_to_bucket.clear()
