"""Writing the HTML results report (rendered by ``analysis.report``)."""

from __future__ import annotations

import html
from pathlib import Path

from analysis.report import render_report
from api.adaptive_html import adaptive_html
from api.results import (
    ExperimentResults,
    SegmentResults,
    apprentice_note,
    covariate_to_dict,
    daily_points,
    exclusion_note,
)
from experiments.adaptive_block import AdaptiveResults
from experiments.errors import Conflict


def results_html(
    results: ExperimentResults, *, title: str, adaptive: AdaptiveResults | None = None,
    segments: SegmentResults | None = None,
) -> str:
    """The self-contained HTML page of ``results`` with their daily series, and for a learning policy
    the adaptive estimates (``adaptive``) before the as-allocated sections. With a covariate the page
    says what CUPED adjusted; with ``segments`` it adds the comparisons per segment (corrected across
    every segment).

    Raises
    ------
    experiments.errors.Conflict
        When no slot can be analysed yet (one variant only, too few decisions, ...): the report needs
        one; the message gives each slot's reason.
    """
    if not results.analyses:
        reasons = "; ".join(f"{slot}: {why}" for slot, why in results.skipped.items())
        raise Conflict(f"no slot of {results.summary.key!r} can be analysed yet ({reasons})")
    cuped = None if results.covariate is None else "CUPED: " + covariate_to_dict(results)["note"]
    return render_report(
        results.analyses,
        daily=daily_points(results.summary),
        title=title,
        factorials=results.factorials,
        notes=[n for n in (exclusion_note(results.summary), apprentice_note(results.summary), cuped) if n],
        sections=([] if adaptive is None else [adaptive_html(adaptive)])
        + ([] if segments is None else [segments_html(segments)]),
        slot_to_variants=results.summary.slots,
    )


def segments_html(segments: SegmentResults) -> str:
    """Per slot, each variant against control in each segment, p-values adjusted across all segments."""
    attribute = html.escape(segments.segmented.attribute)
    parts = [f"<h2>By {attribute}</h2>"]
    for analysis in segments.by_slot:
        rows = "".join(
            f"<tr><td>{html.escape(r.segment)}</td><td>{html.escape(r.variant)}</td><td>{html.escape(r.metric)}"
            f"</td><td>{r.lift:+.2%}</td><td>{r.ci[0]:+.2%} to {r.ci[1]:+.2%}</td><td>{r.p_value:.3g}</td>"
            f"<td>{r.p_value_adjusted:.3g}</td><td>{'yes' if r.significant else 'no'}</td></tr>"
            for r in analysis.rows
        )
        parts.append(f"<h3>Slot <code>{html.escape(analysis.slot)}</code> by {attribute}</h3>"
                     f"<table class='t segments'><tr><th>{attribute}</th><th>variant</th><th>metric</th>"
                     "<th>lift</th><th>interval</th><th>p</th><th>p adjusted</th><th>significant</th></tr>"
                     f"{rows}</table>")
        if analysis.warning:
            parts.append(f'<div class="box warn">{html.escape(analysis.warning)}</div>')
    parts += [f'<div class="box note">{html.escape(where)}: {html.escape(why)}</div>'
              for where, why in segments.skipped.items()]
    return "".join(parts)


def write_report(
    results: ExperimentResults, path: Path, *, title: str, adaptive: AdaptiveResults | None = None,
    segments: SegmentResults | None = None,
) -> Path:
    """Write :func:`results_html` to ``path``."""
    page = results_html(results, title=title, adaptive=adaptive, segments=segments)
    path.write_text(page, encoding="utf-8")
    return path
