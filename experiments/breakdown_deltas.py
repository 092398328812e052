"""What one learnable decision adds to the breakdown rollups (by segment, by covariate, the adaptive
inverse-propensity sums), and what a write changes: the difference of a decision's contribution after
and before it. Pure.

A decision's contribution depends on its arm, policy version and propensity :math:`p` (fixed when it
is written), its segment text and numeric covariate per attribute (which become missing when its
context is dropped: retention, erasure) and its attributed reward :math:`r` and 0/1 event flags
:math:`f_t` (which change as outcomes arrive). Rows, each keyed per table:

- ``adaptive`` ``(policy version, arm, "")``: ``decisions`` 1, ``inv_p_sum`` :math:`1/p`,
  ``inv_p2_sum`` :math:`1/p^2`, and for the reward ``value_sum`` :math:`r`, ``value_sum_squares``
  :math:`r^2`, ``w_value_sum`` :math:`r/p`, ``w2_value_sum`` :math:`r/p^2`, ``w2_value_squares_sum``
  :math:`r^2/p^2`; ``(policy version, arm, t)``: the same five sums of :math:`f_t`. The smallest
  propensity is kept apart (a minimum is not undone by a difference; decisions are never deleted).
- ``segments`` ``(attribute, has value, segment, arm, "")``: ``decisions`` 1 and ``reward_sum``,
  ``reward_sum_squares``, ``reward_sum_cubes``; ``(..., t)``: ``decisions`` :math:`f_t`.
- ``covariates`` ``(attribute, arm)``: ``decisions`` 1; with a numeric :math:`x`: ``n`` 1, ``sum_x``,
  ``sum_x_squares``, ``sum_y`` :math:`r`, ``sum_y_squares``, ``sum_xy`` :math:`xr`, and ``magnitude``
  :math:`|x| + x^2 + |r| + r^2 + |xr|`, added whichever the sign of the change (:data:`MAGNITUDE`).

Zero sums are left out, so a decision with reward 0 and no event adds only its counts and propensity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

#: The tables of :func:`contribution`, in the order their rows are written.
ADAPTIVE, SEGMENTS, COVARIATES = "adaptive", "segments", "covariates"
TABLES = (ADAPTIVE, SEGMENTS, COVARIATES)
#: The ``metric``/``type`` of the rows holding a group's decisions and reward (other rows: event types).
ALL = ""
#: A covariate row's scale of rounding: the absolute values of every term ever added to or taken from
#: its float sums (a value taken out again, its context dropped, leaves rounding in proportion to it).
MAGNITUDE = "magnitude"
#: Per table, per row key, the sums added.
Sums = dict[str, dict[tuple[Any, ...], dict[str, float]]]


@dataclass(frozen=True)
class DecisionState:
    """What a learnable decision contributes from: see the module docstring.

    ``segments`` holds ``(attribute, text or None)`` and ``covariates`` ``(attribute, number or None)``,
    each in attribute order; ``flags`` one 0/1 per event type of the version.
    """

    policy_version: int
    arm: int
    propensity: float
    segments: tuple[tuple[str, str | None], ...]
    covariates: tuple[tuple[str, float | None], ...]
    reward: float = 0.0
    flags: tuple[int, ...] = ()

    def with_outcomes(self, reward: float, flags: tuple[int, ...]) -> DecisionState:
        return replace(self, reward=reward, flags=flags)

    def without_context(self, kept: frozenset[str] = frozenset()) -> DecisionState:
        """The state once its context is dropped: every attribute missing but those in ``kept`` (a
        segment read from the decision's variants, the send time)."""
        return replace(
            self,
            segments=tuple((a, s if a in kept else None) for a, s in self.segments),
            covariates=tuple((a, None) for a, _ in self.covariates),
        )


def _put(sums: Sums, table: str, key: tuple[Any, ...], values: dict[str, float], sign: int = 1) -> None:
    row = sums[table].setdefault(key, {})
    for name, value in values.items():
        if value:
            row[name] = row.get(name, 0) + (abs(value) if name == MAGNITUDE else sign * value)


def contribution(state: DecisionState, types: Sequence[str], sums: Sums | None = None, sign: int = 1
                 ) -> Sums:
    """Add ``sign`` times the decision's rows (module docstring) to ``sums`` (new when None).

    Examples
    --------
    >>> s = DecisionState(1, 0, 0.5, (("country", "CA"),), (("age", 30.0),), reward=2.0, flags=(1,))
    >>> out = contribution(s, ["click"])
    >>> out["adaptive"][(1, 0, "click")]["w2_value_squares_sum"]
    4.0
    >>> out["covariates"][("age", 0)]["sum_xy"]
    60.0
    """
    sums = sums if sums is not None else {t: {} for t in TABLES}
    p, r, arm = state.propensity, state.reward, state.arm
    _put(sums, ADAPTIVE, (state.policy_version, arm, ALL), {
        "decisions": 1, "inv_p_sum": 1.0 / p, "inv_p2_sum": 1.0 / (p * p),
        **_weighted(r, p),
    }, sign)
    for t, f in zip(types, state.flags, strict=True):
        if f:
            _put(sums, ADAPTIVE, (state.policy_version, arm, t), _weighted(f, p), sign)
    for attribute, text in state.segments:
        key = (attribute, text is not None, "" if text is None else text, arm)
        _put(sums, SEGMENTS, (*key, ALL), {
            "decisions": 1, "reward_sum": r, "reward_sum_squares": r * r, "reward_sum_cubes": r * r * r,
        }, sign)
        for t, f in zip(types, state.flags, strict=True):
            if f:
                _put(sums, SEGMENTS, (*key, t), {"decisions": f}, sign)
    for attribute, x in state.covariates:
        values: dict[str, float] = {"decisions": 1}
        if x is not None:
            values.update(n=1, sum_x=x, sum_x_squares=x * x, sum_y=r, sum_y_squares=r * r, sum_xy=x * r)
            values[MAGNITUDE] = abs(x) + x * x + abs(r) + r * r + abs(x * r)
        _put(sums, COVARIATES, (attribute, arm), values, sign)
    return sums


def _weighted(v: float, p: float) -> dict[str, float]:
    return {"value_sum": v, "value_sum_squares": v * v, "w_value_sum": v / p, "w2_value_sum": v / (p * p),
            "w2_value_squares_sum": v * v / (p * p)}


def _differences(new: dict[str, float], old: dict[str, float], n: int = 1) -> dict[str, float]:
    """``n`` times each ``new`` value less the ``old`` one, the zero differences left out."""
    out = {}
    for name, value in new.items():
        difference = value - old[name]
        if difference:
            out[name] = difference if n == 1 else n * difference
    return out


def _add(rows: dict[tuple[Any, ...], dict[str, float]], key: tuple[Any, ...], values: dict[str, float]
         ) -> None:
    row = rows.setdefault(key, {})
    for name, value in values.items():
        row[name] = row.get(name, 0) + value


def _powers(r: float) -> dict[str, float]:
    return {"reward_sum": r, "reward_sum_squares": r * r, "reward_sum_cubes": r * r * r}


def _covariate_terms(x: float, r: float) -> dict[str, float]:
    return {"sum_y": r, "sum_y_squares": r * r, "sum_xy": x * r}


def _magnitude(x: float, r: float) -> float:
    return abs(x) + x * x + abs(r) + r * r + abs(x * r)


@dataclass
class BreakdownChange:
    """What one write adds to the breakdown rollups of one spec version: :data:`Sums`, and per
    ``(policy version, arm)`` the smallest propensity of the decisions it inserted."""

    sums: Sums = field(default_factory=lambda: {t: {} for t in TABLES})
    min_propensity: dict[tuple[int, int], float] = field(default_factory=dict)
    overflowed: set[str] = field(default_factory=set)  # segment attributes with too many values

    def insert_new(self, states: Sequence[DecisionState], counts: Sequence[int] | None = None) -> None:
        """Decisions just written (reward 0, no event; ``counts[i]`` of them in state ``states[i]``, one
        each when None): the sum of their :func:`contribution`, each distinct adaptive and segment key
        counted once for all its decisions, and the smallest propensity per (policy version, arm).

        Examples
        --------
        >>> a = DecisionState(1, 0, 0.5, (("c", "CA"),), (("x", 2.0),))
        >>> b = DecisionState(1, 0, 0.25, (("c", None),), (("x", None),))
        >>> one, many = BreakdownChange(), BreakdownChange()
        >>> for s in (a, a, b):
        ...     _ = contribution(s, [], one.sums)
        >>> many.insert_new([a, a, b])
        >>> one.rows("adaptive") == many.rows("adaptive") and one.rows("segments") == many.rows("segments")
        True
        >>> many.rows("covariates")
        [(('x', 0), {'decisions': 3, 'n': 2, 'sum_x': 4.0, 'sum_x_squares': 8.0, 'magnitude': 12.0})]
        >>> many.min_propensity
        {(1, 0): 0.25}
        >>> counted = BreakdownChange()
        >>> counted.insert_new([a, b], [2, 1])
        >>> all(counted.rows(t) == many.rows(t) for t in TABLES)
        True
        """
        if any(s.reward or any(s.flags) for s in states):
            raise ValueError("insert_new: a decision just written has reward 0 and no event")
        weights = [1] * len(states) if counts is None else counts
        adaptive: Counter[tuple[Any, ...]] = Counter()
        segments: Counter[tuple[Any, ...]] = Counter()
        for s, k in zip(states, weights, strict=True):
            adaptive[(s.policy_version, s.arm, s.propensity)] += k
            for a, t in s.segments:
                segments[(a, t, s.arm)] += k
        for (policy, arm, p), n in adaptive.items():
            _put(self.sums, ADAPTIVE, (policy, arm, ALL),
                 {"decisions": n, "inv_p_sum": n / p, "inv_p2_sum": n / (p * p)})
            self.min_propensity[(policy, arm)] = min(self.min_propensity.get((policy, arm), p), p)
        for (attribute, text, arm), n in segments.items():
            key = (attribute, text is not None, "" if text is None else text, arm, ALL)
            _put(self.sums, SEGMENTS, key, {"decisions": n})
        covariates = self.sums[COVARIATES]
        for s, k in zip(states, weights, strict=True):
            for attribute, x in s.covariates:
                row = covariates.setdefault((attribute, s.arm), {})
                row["decisions"] = row.get("decisions", 0) + k
                if x is not None:
                    row["n"] = row.get("n", 0) + k
                    row["sum_x"] = row.get("sum_x", 0.0) + k * x
                    row["sum_x_squares"] = row.get("sum_x_squares", 0.0) + k * x * x
                    row[MAGNITUDE] = row.get(MAGNITUDE, 0.0) + k * (abs(x) + x * x)

    def change(self, before: DecisionState, after: DecisionState, types: Sequence[str]) -> None:
        """A decision going from ``before`` to ``after`` (new outcomes, or its context dropped)."""
        if before != after:
            contribution(after, types, self.sums)
            contribution(before, types, self.sums, -1)

    def outcome(self, state: DecisionState, before: tuple[float, tuple[int, ...]],
                after: tuple[float, tuple[int, ...]], types: Sequence[str], n: int = 1) -> None:
        """``n`` decisions (``state``, their reward and flags aside) whose reward and flags go from
        ``before`` to ``after``: what :meth:`change` adds for each, from the terms that depend on them
        alone (the rest would be added and taken away again, to exactly 0), and the covariates'
        ``magnitude`` as :meth:`change` adds it; times ``n`` (``n`` times a difference, not ``n``
        differences added one by one: equal to rounding).

        Examples
        --------
        >>> s = DecisionState(1, 0, 0.5, (("c", "CA"),), (("x", 2.0),), flags=(0,))
        >>> one, other = BreakdownChange(), BreakdownChange()
        >>> one.change(s.with_outcomes(1.0, (0,)), s.with_outcomes(3.0, (1,)), ["click"])
        >>> other.outcome(s, (1.0, (0,)), (3.0, (1,)), ["click"])
        >>> all(one.rows(t) == other.rows(t) for t in TABLES)
        True
        """
        if before == after:
            return
        (r0, f0), (r1, f1) = before, after
        p, arm, sums = state.propensity, state.arm, self.sums
        changed = [(t, n * (b - a)) for t, a, b in zip(types, f0, f1, strict=True) if a != b]
        if r1 != r0:
            weighted = _differences(_weighted(r1, p), _weighted(r0, p), n)
            _add(sums[ADAPTIVE], (state.policy_version, arm, ALL), weighted)
        for t, sign in changed:
            _put(sums, ADAPTIVE, (state.policy_version, arm, t), _weighted(1, p), sign)
        powers = _differences(_powers(r1), _powers(r0), n) if r1 != r0 else {}
        segments = sums[SEGMENTS]
        for attribute, text in state.segments:
            key = (attribute, text is not None, "" if text is None else text, arm)
            if powers:
                _add(segments, (*key, ALL), powers)
            for t, sign in changed:
                row = segments.setdefault((*key, t), {})
                row["decisions"] = row.get("decisions", 0) + sign
        ys = _differences({"sum_y": r1, "sum_y_squares": r1 * r1}, {"sum_y": r0, "sum_y_squares": r0 * r0}, n)
        covariates = sums[COVARIATES]
        for attribute, x in state.covariates:
            if x is None:
                continue
            row = covariates.setdefault((attribute, arm), {})
            if r1 != r0:
                xy = _differences({"sum_xy": x * r1}, {"sum_xy": x * r0}, n)
                _add(covariates, (attribute, arm), {**ys, **xy})
            magnitude = _magnitude(x, r1) + _magnitude(x, r0)
            if magnitude:
                row[MAGNITUDE] = row.get(MAGNITUDE, 0.0) + n * magnitude

    def rows(self, table: str) -> list[tuple[tuple[Any, ...], dict[str, float]]]:
        """The nonzero rows of ``table``, in key order."""
        return [(k, {n: v for n, v in row.items() if v}) for k, row in sorted(self.sums[table].items())
                if any(row.values())]

