"""What a write adds to the rollups: the change of each cell's sums, from the decisions inserted and the
change of each decision's reward and event flags. Pure.

A decision adds 1 to its cell's ``decisions`` (and to ``explored``, ``learned`` as it is); with reward 0
and no event it adds nothing else. When outcomes arrive, a decision whose attributed state goes from
reward :math:`r_0` and flags :math:`f_0` to :math:`r_1`, :math:`f_1` adds

.. math::

    \\Delta\\text{sum} = r_1 - r_0, \\quad \\Delta\\text{squares} = r_1^2 - r_0^2, \\quad
    \\Delta\\text{cubes} = r_1^3 - r_0^3, \\quad \\Delta\\text{count}_t = f_{1,t} - f_{0,t}

to its cell, so the cell's sums stay those of its decisions' current rewards. The reward sums are
floating point: a sum kept by deltas and one recomputed in another order agree to rounding (compare
them with a relative tolerance, :data:`RELATIVE_TOLERANCE`); the counts are integers and agree exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A decision's attributed state: its reward and one 0/1 flag per event type of its spec version.
Attributed = tuple[float, tuple[int, ...]]
#: A decision's attributed outcomes summed: the values of the types whose value the reward counts, and
#: one 0/1 flag per event type (its reward follows, :class:`experiments.store.summaries.RewardRule`).
Valued = tuple[float, tuple[int, ...]]
#: The relative tolerance within which a float sum kept by deltas equals one recomputed from the log.
RELATIVE_TOLERANCE = 1e-9


@dataclass
class CellChange:
    """What one write adds to one cell (a mutable accumulator; see the module docstring)."""

    decisions: int = 0
    explored: int = 0
    learned: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    reward_sum_cubes: float = 0.0
    event_counts: dict[str, int] = field(default_factory=dict)

    @property
    def sums_changed(self) -> bool:
        return bool(self.reward_sum or self.reward_sum_squares or self.reward_sum_cubes)


def add_decision(changes: dict[Any, CellChange], key: Any, explored: bool, learned: bool, n: int = 1) -> None:
    """Count ``n`` new decisions (one by default), alike, in cell ``key`` of ``changes``."""
    change = changes.setdefault(key, CellChange())
    change.decisions += n
    change.explored += n * int(explored)
    change.learned += n * int(learned)


def add_learned(changes: dict[Any, CellChange], key: Any, n: int) -> None:
    """Count ``n`` decisions of cell ``key`` as learned from (first learned now)."""
    changes.setdefault(key, CellChange()).learned += n


def add_reward_change(
    changes: dict[Any, CellChange],
    key: Any,
    types: Sequence[str],
    before: Attributed | None,
    after: Attributed | None,
    n: int = 1,
) -> None:
    """Add the change of one decision's attributed state to cell ``key`` (None: no attributed event);
    ``n`` times, for ``n`` decisions changing alike (``n`` times a difference: equal to rounding to
    ``n`` differences added one by one).

    Examples
    --------
    >>> changes = {}
    >>> add_reward_change(changes, "k", ["click"], (1.0, (1,)), (3.0, (1,)))
    >>> c = changes["k"]
    >>> c.reward_sum, c.reward_sum_squares, c.reward_sum_cubes, c.event_counts
    (2.0, 8.0, 26.0, {})
    """
    r0, f0 = before if before is not None else (0.0, (0,) * len(types))
    r1, f1 = after if after is not None else (0.0, (0,) * len(types))
    change = changes.setdefault(key, CellChange())
    if r1 != r0:
        change.reward_sum += n * (r1 - r0)
        change.reward_sum_squares += n * (r1 * r1 - r0 * r0)
        change.reward_sum_cubes += n * (r1 * r1 * r1 - r0 * r0 * r0)
    for t, a, b in zip(types, f0, f1, strict=True):
        if a != b:
            change.event_counts[t] = change.event_counts.get(t, 0) + n * (b - a)


def fold_outcomes(
    types: Sequence[str],
    valued: Collection[str],
    before: Mapping[str, Valued],
    outcomes: Iterable[tuple[str, str, float | None]],
) -> dict[str, Valued]:
    """Each decision's value sum and flags once ``outcomes`` (``(decision id, type, value)``, attributed,
    not machine-made, of the ``types`` counted) are added to its state ``before`` (absent: none yet):
    a value of a ``valued`` type adds to the sum (missing: 0), and the type's flag is set. Only the
    decisions of ``outcomes`` are returned.

    Examples
    --------
    >>> fold_outcomes(["click", "revenue"], {"revenue"}, {"d": (2.0, (0, 1))},
    ...               [("d", "click", None), ("d", "revenue", 3.0), ("e", "revenue", None)])
    {'d': (5.0, (1, 1)), 'e': (0.0, (0, 1))}
    """
    # the flags as a bit mask while folding, one tuple per distinct mask at the end: no object is kept
    # per decision but its result (fewer objects for the garbage collector to walk)
    bit = {t: 1 << j for j, t in enumerate(types)}
    sums: dict[str, float] = {}
    masks: dict[str, int] = {}
    for decision_id, kind, value in outcomes:
        mask = masks.get(decision_id)
        if mask is None:
            old = before.get(decision_id)
            if old is None:
                sums[decision_id], mask = 0.0, 0
            else:
                sums[decision_id], mask = old[0], sum(1 << j for j, f in enumerate(old[1]) if f)
        if kind in valued:
            sums[decision_id] = sums[decision_id] + (0.0 if value is None else value)
        masks[decision_id] = mask | bit[kind]
    flags_of: dict[int, tuple[int, ...]] = {}
    out: dict[str, Valued] = {}
    for decision_id, mask in masks.items():
        flags = flags_of.get(mask)
        if flags is None:
            flags = flags_of[mask] = tuple((mask >> j) & 1 for j in range(len(types)))
        out[decision_id] = (sums[decision_id], flags)
    return out


def reward_changes(types: Sequence[str], alike: Mapping[tuple[Any, Attributed | None, Attributed | None], int]
                   ) -> dict[Any, CellChange]:
    """The change of each cell from decisions going from one attributed state to another (None: no
    attributed event), given as how many decisions ``(cell key, before, after)`` counts: decisions
    changing alike (most of a post's clicks) are added at once."""
    changes: dict[Any, CellChange] = {}
    for (key, old, new), n in alike.items():
        if old != new:
            add_reward_change(changes, key, types, old, new, n)
    return changes


def within_tolerance(a: float, b: float, scale: float = 0.0, rel: float = RELATIVE_TOLERANCE) -> bool:
    """``a`` and ``b`` agree to ``rel`` relative to the larger of them and ``scale``.

    ``scale``: the magnitude of what was summed (the sum of absolute values kept by deltas can be far
    larger than what remains, so the rounding of a sum near 0 is measured against it).
    """
    return abs(a - b) <= rel * max(abs(a), abs(b), scale, 1.0)
