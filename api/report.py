"""Writing the HTML results report (rendered by ``analysis.report``)."""

from __future__ import annotations

from pathlib import Path

from analysis.report import render_report
from api.adaptive_html import adaptive_html
from api.results import ExperimentResults, apprentice_note, daily_points, exclusion_note
from experiments.adaptive_block import AdaptiveResults


def results_html(results: ExperimentResults, *, title: str, adaptive: AdaptiveResults | None = None) -> str:
    """The self-contained HTML page of ``results`` with their daily series, and for a learning policy
    the adaptive estimates (``adaptive``) before the as-allocated sections.

    Raises
    ------
    analysis.errors.AnalysisInputError
        When no slot could be analysed yet (the report needs at least one).
    """
    return render_report(
        results.analyses,
        daily=daily_points(results.summary),
        title=title,
        factorials=results.factorials,
        notes=[n for n in (exclusion_note(results.summary), apprentice_note(results.summary)) if n],
        sections=[] if adaptive is None else [adaptive_html(adaptive)],
    )


def write_report(
    results: ExperimentResults, path: Path, *, title: str, adaptive: AdaptiveResults | None = None
) -> Path:
    """Write :func:`results_html` to ``path``."""
    path.write_text(results_html(results, title=title, adaptive=adaptive), encoding="utf-8")
    return path
