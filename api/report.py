"""Writing the HTML results report (rendered by ``analysis.report``)."""

from __future__ import annotations

from pathlib import Path

from analysis.report import render_report
from api.results import ExperimentResults, apprentice_note, daily_points, exclusion_note


def results_html(results: ExperimentResults, *, title: str) -> str:
    """The self-contained HTML page of ``results`` with their daily series.

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
    )


def write_report(results: ExperimentResults, path: Path, *, title: str) -> Path:
    """Write :func:`results_html` to ``path``."""
    path.write_text(results_html(results, title=title), encoding="utf-8")
    return path
