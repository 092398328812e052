"""The reward of one decision from its attributed events, by the spec's rules. Pure.

The same rule as the SQL of :mod:`experiments.store.summaries`: each event type of ``reward.events`` adds its
weight once if at least one such event was attributed (the first click counts once), and the values of
the events of ``reward.value_event_types`` add up (revenue). The learning loop uses it on explicit
sets of outcome rows, so that it knows exactly which outcomes a learned reward contains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from experiments.spec import Reward


def decision_reward(reward: Reward, events: Iterable[tuple[str, float | None]]) -> float:
    """The reward of a decision whose attributed events are ``(type, value)`` pairs (0 without any).

    Examples
    --------
    >>> from experiments.spec import Reward
    >>> rule = Reward(events={"click": 1.0, "conversion": 5.0}, value="revenue")
    >>> decision_reward(rule, [("click", None), ("click", None), ("revenue", 20.0), ("revenue", 5.5)])
    26.5
    >>> valued = Reward(events={"click": 1.0}, value="revenue", value_types=["conversion", "revenue"])
    >>> decision_reward(valued, [("conversion", 30.0), ("revenue", 5.0), ("click", 2.0)])
    36.0
    """
    seen: set[str] = set()
    values: list[float] = []
    valued = reward.value_event_types
    for kind, value in events:
        seen.add(kind)
        if value is not None and kind in valued:
            values.append(float(value))
    total = math.fsum(values)  # exact and independent of the order the rows come in
    for kind, weight in reward.events.items():
        if weight and kind in seen:
            total += float(weight)
    return total
