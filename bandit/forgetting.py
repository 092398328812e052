r"""How a policy forgets: every row kept, rows discounted by age, or a sliding window of recent rows.

A non-stationary policy weights each learned row by its age :math:`a_i = T - t_i` in days, where
:math:`t_i` is the row's time (``times`` passed to ``update``: the decision's send time) and
:math:`T` the newest time the policy has learned. Forgetting is measured from the newest row learned,
not from a clock, so a policy stays a pure function of what it learned.

- **Discount** :math:`\gamma` per day: row ``i`` counts :math:`w_i \gamma^{a_i}` (discounted UCB,
  Garivier & Moulines, "On upper-confidence bound policies for switching bandit problems", ALT 2011;
  discounted Thompson sampling, Raj & Kalyani, "Taming non-stationary bandits: a Bayesian approach",
  2017, which discount the success and failure counts and keep the prior).
- **Window** of ``window_days``: row ``i`` counts while its hour (``floor(24 t_i)``) is among the
  last ``ceil(24 window_days)`` hours up to the newest row's hour (sliding-window UCB, Garivier &
  Moulines 2011). Rows are kept per hour, so the snapshot holds one set of statistics per hour of the
  window.

Both are per unit time rather than per ``update`` call: SendLab's learning loop splits a backlog into
batches of any size and late outcomes arrive out of order, so a per-call discount would make the state
depend on batching, and ``revise`` could not know how often a row had been discounted. A weight that
depends only on the row's time and the newest time is the same whatever the order and batching of the
updates (to rounding), and ``revise`` of a row (given its time) is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, Self

import numpy as np

from bandit.inputs import check_positive
from bandit.policy import PolicyError
from bandit.row_changes import RowChanges

HOURS_PER_DAY = 24
#: The longest sliding window, in days (a year of hourly statistics per arm).
MAX_WINDOW_DAYS = 366.0


class Stats(Protocol):
    """What :mod:`bandit.arm_stats` provides."""

    def replaced(self, changes: RowChanges) -> Self: ...
    def scaled(self, factor: float) -> Self: ...
    def merged(self, other: Self) -> Self: ...

    @classmethod
    def combined(cls, parts: list[Self]) -> Self: ...
    def state(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self: ...

    @classmethod
    def empty(cls, k: int) -> Self: ...


def check_discount(value: object) -> float:
    """``options.discount``: the weight per day of age, in (0, 1] (1 forgets nothing)."""
    number = check_positive("discount", value)
    if number > 1:
        raise PolicyError(f"options.discount: must lie in (0, 1] (a weight per day of age), got {value!r}")
    return number


def check_window_days(value: object) -> float:
    """``options.window_days``: the window's length in days, > 0 and at most :data:`MAX_WINDOW_DAYS`."""
    number = check_positive("window_days", value)
    if number > MAX_WINDOW_DAYS:
        raise PolicyError(f"options.window_days: at most {MAX_WINDOW_DAYS:g} days, got {value!r}")
    return number


def _times_of(changes: RowChanges, option: str) -> np.ndarray:
    if changes.times is None:
        raise PolicyError(f"times: required by options.{option} (each row's time in days)")
    return changes.times


@dataclass(frozen=True)
class Stationary:
    """Every row counts with its own weight; times are ignored."""

    stats: Stats

    def applied(self, changes: RowChanges) -> Stationary:
        return Stationary(self.stats.replaced(changes))

    def current(self) -> Stats:
        return self.stats

    def state(self) -> dict[str, Any]:
        return self.stats.state()


@dataclass(frozen=True)
class Discounted:
    r"""Statistics of the rows weighted :math:`\gamma^{T - t_i}`, with :math:`T` = ``reference_time``."""

    discount: float
    stats: Stats
    reference_time: float | None = None

    def applied(self, changes: RowChanges) -> Discounted:
        if len(changes) == 0:
            return self
        times = _times_of(changes, "discount")
        newest = float(times.max())
        reference = newest if self.reference_time is None else max(self.reference_time, newest)
        stats = self.stats
        if self.reference_time is not None and reference > self.reference_time:
            stats = stats.scaled(self.discount ** (reference - self.reference_time))
        factors = self.discount ** (reference - times)
        return Discounted(self.discount, stats.replaced(changes.reweighted(factors)), reference)

    def current(self) -> Stats:
        return self.stats

    def state(self) -> dict[str, Any]:
        return {**self.stats.state(), "discount": self.discount, "reference_time": self.reference_time}


@dataclass(frozen=True)
class Windowed:
    """Statistics per hour; those of the last ``ceil(24 window_days)`` hours up to the newest count."""

    window_days: float
    empty: Stats
    hour_to_stats: dict[int, Stats]

    @property
    def span(self) -> int:
        """The window's length in hours."""
        return max(1, math.ceil(round(self.window_days * HOURS_PER_DAY, 9)))  # 7 days: 168, not 169

    def applied(self, changes: RowChanges) -> Windowed:
        if len(changes) == 0:
            return self
        hours = np.floor(_times_of(changes, "window_days") * HOURS_PER_DAY).astype(np.int64)
        newest = int(hours.max())
        if self.hour_to_stats:
            newest = max(newest, max(self.hour_to_stats))
        oldest = newest - self.span + 1
        kept = {hour: stats for hour, stats in self.hour_to_stats.items() if hour >= oldest}
        for hour in np.unique(hours[hours >= oldest]).tolist():
            kept[hour] = kept.get(hour, self.empty).replaced(changes.subset(hours == hour))
        return Windowed(self.window_days, self.empty, dict(sorted(kept.items())))

    @cached_property
    def _current(self) -> Stats:
        if not self.hour_to_stats:
            return self.empty
        return type(self.empty).combined(list(self.hour_to_stats.values()))  # in hour order: same rounding

    def current(self) -> Stats:
        return self._current

    def state(self) -> dict[str, Any]:
        k = self.empty.state()
        hours = list(self.hour_to_stats)
        stacked = {
            key: np.stack([self.hour_to_stats[h].state()[key] for h in hours]) if hours
            else np.zeros((0, k[key].shape[0]))
            for key in k
        }
        return {**stacked, "window_days": self.window_days, "hours": np.asarray(hours, dtype=np.int64)}


Memory = Stationary | Discounted | Windowed


def new_memory(stats_type: Any, k: int, discount: float | None, window_days: float | None) -> Memory:
    """Empty statistics that forget as asked (at most one of ``discount`` and ``window_days``)."""
    if discount is not None and window_days is not None:
        raise PolicyError("options: discount and window_days are alternatives; give one of them")
    empty = stats_type.empty(k)
    if discount is not None:
        return Discounted(check_discount(discount), empty)
    if window_days is not None:
        return Windowed(check_window_days(window_days), empty, {})
    return Stationary(empty)


def restore_memory(stats_type: Any, k: int, state: dict[str, Any]) -> Memory:
    """The memory whose :meth:`state` is ``state`` (a snapshot without either option is stationary)."""
    if state.get("window_days") is not None:
        hours = np.asarray(state["hours"], dtype=np.int64).tolist()
        arrays = {key: np.asarray(state[key], dtype=np.float64) for key in stats_type.state_keys}
        hour_to_stats = {
            hour: stats_type.from_state({key: column[i] for key, column in arrays.items()})
            for i, hour in enumerate(hours)
        }
        return Windowed(float(state["window_days"]), stats_type.empty(k), hour_to_stats)
    stats = stats_type.from_state(state)
    if state.get("discount") is not None:
        reference = state.get("reference_time")
        return Discounted(float(state["discount"]), stats, None if reference is None else float(reference))
    return Stationary(stats)


def forgetting_options(memory: Memory) -> dict[str, float | None]:
    """The ``discount`` and ``window_days`` a memory was built with (None when not set)."""
    return {
        "discount": memory.discount if isinstance(memory, Discounted) else None,
        "window_days": memory.window_days if isinstance(memory, Windowed) else None,
    }
