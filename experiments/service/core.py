"""What the use cases of the service share: the engine, the clock, the generator policies draw with,
and the repository."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.engine import Engine

from experiments.store import to_db_time
from experiments.store.repository import Repository


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


@dataclass
class ServiceCore:
    """The engine, clock and generator of one service, and its repository.

    ``draw_lock`` serialises the draws of the shared generator (and the policies' own state while
    they choose), so that concurrent requests of one process never interleave inside a draw.
    """

    engine: Engine
    clock: Callable[[], datetime]
    rng: np.random.Generator
    repo: Repository = field(default_factory=Repository)
    draw_lock: threading.RLock = field(default_factory=threading.RLock)

    def now(self) -> datetime:
        """The clock's time as stored (naive UTC)."""
        return to_db_time(self.clock())
