"""The decision in words for one slot of a bandit or contextual experiment, from the adaptive comparisons.

The rule is that of :func:`analysis.decisions.decide`, on the estimates "if every eligible recipient got
this variant" (:mod:`analysis.adaptive_comparisons`) instead of the as-allocated rates: a winner needs
its always-valid p-value on the primary metric (the off-policy confidence sequence, corrected across
the slot's variants) below ``alpha`` with a positive lift, and no guardrail event significantly more
frequent than under control at the same always-valid level. Without always-valid results (no log), the
fixed-horizon p-values are used and the reason says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.adaptive_comparisons import AdaptiveComparison
from analysis.decisions import Decision, signed_pct
from analysis.multiplicity import Correction, adjust_p_values


def _p(c: AdaptiveComparison) -> float:
    return c.always_valid.p_value if c.always_valid is not None else c.p_value


def decide_adaptive(
    primary: Sequence[AdaptiveComparison],
    guardrails: Sequence[tuple[str, AdaptiveComparison]],
    *,
    metric: str,
    control: str,
    alpha: float,
    correction: Correction,
) -> Decision:
    """What to do with the slot (module docstring).

    Parameters
    ----------
    primary : Sequence[AdaptiveComparison]
        Every variant against ``control`` on the primary metric.
    guardrails : Sequence[tuple[str, AdaptiveComparison]]
        ``(event type, comparison)``: every variant against ``control`` on each guardrail event's rate
        (higher is worse).
    """
    if not primary:
        return Decision("keep running", None, "no comparison on the primary metric")
    kind = "always-valid" if all(c.always_valid is not None for c in primary) else "fixed-horizon"
    adjusted = adjust_p_values([_p(c) for c in primary], correction)
    better = [c for c, p in zip(primary, adjusted, strict=True) if p < alpha and c.absolute_lift > 0]
    worse = [c for c, p in zip(primary, adjusted, strict=True) if p < alpha and c.absolute_lift < 0]
    harmed: dict[str, str] = {}
    if guardrails:
        g_adjusted = adjust_p_values([_p(g) for _, g in guardrails], correction)
        for (event, g), p in zip(guardrails, g_adjusted, strict=True):
            if p < alpha and g.absolute_lift > 0:
                harmed.setdefault(g.variant, event)
    scope = (f"{kind}, {correction} corrected across {len(primary)} variant(s), estimated as if everyone "
             "got it")
    if better:
        safe = [c for c in better if c.variant not in harmed]
        if safe:
            top = max(safe, key=lambda c: c.absolute_lift)
            return Decision(f"a winner: {top.variant}", top.variant,
                            f"{top.variant} beats {control} on {metric} by {signed_pct(top.lift)} "
                            f"({kind} p = {_p(top):.3g}; {scope})")
        names = ", ".join(f"{c.variant} (more {harmed[c.variant]})"
                          for c in better)
        return Decision("keep running", None,
                        f"{names} beat(s) {control} on {metric} but also raise(s) a guardrail event's rate")
    if worse and len(worse) == len(primary):
        return Decision(f"a winner: {control}", control,
                        f"every variant is worse than {control} on {metric} ({scope})")
    undecided = [c for c in primary if c not in worse]
    lead = max(undecided, key=lambda c: c.absolute_lift if c.absolute_lift == c.absolute_lift else -1e300)
    leader = f"the leader {lead.variant} is at {signed_pct(lead.lift)} ({kind} p = {_p(lead):.3g})"
    if worse:
        names = ", ".join(f"{c.variant} ({signed_pct(c.lift)}, {kind} p = {_p(c):.3g})" for c in worse)
        return Decision("keep running", None,
                        f"{names} {'is' if len(worse) == 1 else 'are'} worse than {control} on {metric} "
                        f"({scope}); no other variant differs from {control} yet: {leader}")
    return Decision("keep running", None,
                    f"no variant differs from {control} on {metric} yet ({scope}); {leader}")
