"""The same results broken down by a context attribute, corrected across segments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.errors import AnalysisInputError
from analysis.json_ready import to_jsonable
from analysis.multiplicity import Correction, adjust_p_values
from analysis.results import ArmData, SlotAnalysis, analyze_slot


@dataclass(frozen=True)
class SegmentRow:
    """One variant against control on one metric within one segment.

    ``p_value_adjusted`` is corrected across every segment and comparison together.
    """

    segment: str
    variant: str
    metric: str
    lift: float
    ci: tuple[float, float]
    p_value: float
    p_value_adjusted: float
    significant: bool


@dataclass(frozen=True)
class SegmentAnalysis:
    """Per-segment analyses of one slot, the cross-segment table, and the multiplicity warning."""

    slot: str
    attribute: str
    segments: dict[str, SlotAnalysis]
    rows: list[SegmentRow]
    correction: Correction
    warning: str

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def analyze_segments(
    slot: str,
    attribute: str,
    segment_to_arms: Mapping[str, Sequence[ArmData]],
    control: str,
    *,
    metrics: Sequence[str],
    value_metric: str | None = "reward",
    alpha: float = 0.05,
    correction: Correction = "holm",
    **options: Any,
) -> SegmentAnalysis:
    """:func:`~analysis.results.analyze_slot` per value of ``attribute``, then one correction across all.

    ``options`` pass on to ``analyze_slot`` (``guardrails``, ``seed``, ...). Segments are where chance
    findings hide: with k segments and m comparisons each, about ``k * m * alpha`` raw p-values fall
    below alpha when nothing differs, so significance is judged on ``p_value_adjusted``.
    """
    if not segment_to_arms:
        raise AnalysisInputError("segment_to_arms: give at least one segment")
    segments = {
        str(seg): analyze_slot(slot, arms, control, metrics=metrics, value_metric=value_metric,
                               alpha=alpha, correction=correction, **options)
        for seg, arms in segment_to_arms.items()
    }
    return combine_segments(slot, attribute, segments, alpha=alpha, correction=correction)


def combine_segments(
    slot: str,
    attribute: str,
    segments: Mapping[str, SlotAnalysis],
    *,
    alpha: float = 0.05,
    correction: Correction = "holm",
) -> SegmentAnalysis:
    """The cross-segment table of analyses already made per segment, with one correction across all
    their comparisons and the multiplicity warning (what :func:`analyze_segments` returns)."""
    if not segments:
        raise AnalysisInputError("segments: give at least one segment")
    by_segment = dict(segments)
    flat = [(seg, c) for seg, a in by_segment.items() for c in a.comparisons]
    adjusted = adjust_p_values([c.p_value for _, c in flat], correction)
    rows = [
        SegmentRow(seg, c.variant, c.metric, c.lift, c.ci, c.p_value, float(q), bool(q < alpha))
        for (seg, c), q in zip(flat, adjusted, strict=True)
    ]
    raw_hits = sum(c.p_value < alpha for _, c in flat)
    k = len(by_segment)
    warning = (
        f"{k} segments of {attribute!r} x {len(flat) // k} comparisons = {len(flat)} "
        f"tests: about {len(flat) * alpha:.1f} raw p-values below {alpha:g} are expected by chance alone "
        f"({raw_hits} observed). Significance here is after a {correction} correction across all of them; "
        "treat an effect seen in one segment only as a hypothesis for a new test."
    )
    return SegmentAnalysis(slot, attribute, by_segment, rows, correction, warning)
