"""The decision in words for one slot of a fixed-split test: keep running, a winner, no detectable
difference, or investigate a sample ratio mismatch (:func:`decide`), from the always-valid results on the
primary metric. Bandits and contextual designs decide by the same rule on their own estimates
(:mod:`analysis.adaptive_decision`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.multiplicity import Correction, adjust_p_values
from analysis.noninferiority import NonInferiorityResult
from analysis.srm import SrmResult

if TYPE_CHECKING:
    from analysis.results import Comparison


@dataclass(frozen=True)
class Decision:
    """What to do, in words: ``keep running``, ``a winner: X``, ``no detectable difference``, or
    ``investigate: sample ratio mismatch``; ``reason`` says why."""

    verdict: str
    winner: str | None
    reason: str


def decide(
    primary: Sequence[Comparison],
    guardrails: Sequence[NonInferiorityResult],
    srm: SrmResult,
    *,
    control: str,
    alpha: float,
    correction: Correction,
    min_lift: float,
) -> Decision:
    """The decision in words, from the always-valid results on the primary metric.

    The sequential p-values are corrected across variants (``correction``) so that a team that looks
    every day keeps its error rate. A winner must beat control, and its guardrails must be shown
    non-inferior; control wins when every variant is worse, and variants worse than control while
    others are undecided are named. ``no detectable difference`` needs every confidence sequence inside
    ``+-min_lift`` of the control mean.
    """
    if srm.flagged:
        return Decision("investigate: sample ratio mismatch", None, srm.message)
    if not primary:
        return Decision("keep running", None, "no comparison on the primary metric")
    metric = primary[0].metric
    seq_p = adjust_p_values([c.sequential.p_value for c in primary], correction)
    better = [c for c, p in zip(primary, seq_p, strict=True) if p < alpha and c.absolute_lift > 0]
    worse = [c for c, p in zip(primary, seq_p, strict=True) if p < alpha and c.absolute_lift < 0]
    failing = {g.variant: g for g in guardrails if not g.non_inferior}
    if better:
        safe = [c for c in better if c.variant not in failing]
        if safe:
            top = max(safe, key=lambda c: c.absolute_lift)
            return Decision(
                f"a winner: {top.variant}", top.variant,
                f"{top.variant} beats {control} on {metric} by {signed_pct(top.lift)} (always-valid p = "
                f"{top.sequential.p_value:.3g}, {correction} corrected across {len(primary)} variant(s))"
                + (f"; its guardrails ({', '.join(sorted({g.metric for g in guardrails}))}) are non-inferior"
                   if guardrails else ""),
            )
        names = ", ".join(f"{c.variant} ({failing[c.variant].metric})" for c in better)
        return Decision(
            "keep running", None,
            f"{names} beat(s) {control} on {metric} but a guardrail is not yet shown non-inferior",
        )
    if worse and len(worse) == len(primary):
        return Decision(
            f"a winner: {control}", control,
            f"every variant is worse than {control} on {metric} (always-valid, {correction} corrected)",
        )
    base = abs(primary[0].control_mean)
    if base > 0 and all(
        c.sequential.ci[0] > -min_lift * base and c.sequential.ci[1] < min_lift * base for c in primary
    ):
        return Decision(
            "no detectable difference", None,
            f"every variant's {1 - alpha:.0%} confidence sequence for {metric} lies within "
            f"+-{min_lift:.1%} of {control}: any real difference is smaller than that",
        )
    undecided = [c for c in primary if c not in worse]
    lead = max(undecided, key=lambda c: c.absolute_lift)
    leader = (f"the leader {lead.variant} is at {signed_pct(lead.lift)} (always-valid p = "
              f"{lead.sequential.p_value:.3g}), and {_plausible_range(lead.sequential.ci, base, alpha)}")
    if worse:
        names = ", ".join(f"{c.variant} ({signed_pct(c.lift)}, always-valid p = {c.sequential.p_value:.3g})"
                          for c in worse)
        return Decision(
            "keep running", None,
            f"{names} {'is' if len(worse) == 1 else 'are'} worse than {control} on {metric} ({correction} "
            f"corrected across {len(primary)} variants); no other variant differs from {control} yet: "
            f"{leader}",
        )
    return Decision(
        "keep running", None,
        f"no variant differs from {control} on {metric} yet at the always-valid level; {leader}",
    )


def _plausible_range(ci: tuple[float, float], base: float, alpha: float) -> str:
    """What the leader's confidence sequence still allows, relative to the control's mean when it is not 0."""
    low, high = ci
    if not (math.isfinite(low) and math.isfinite(high)):
        return "its confidence sequence has no bound yet (no spread in the data)"
    if base > 0:
        return (f"its {1 - alpha:.0%} confidence sequence still allows anything from "
                f"{signed_pct(low / base)} to {signed_pct(high / base)}")
    return f"its {1 - alpha:.0%} confidence sequence still allows a difference from {low:+.4g} to {high:+.4g}"


def signed_pct(x: float) -> str:
    """A relative lift as a signed percentage with one decimal (``n/a`` for NaN)."""
    return "n/a" if math.isnan(x) else f"{x:+.1%}"
