"""Writing the HTML results report (rendered by ``analysis.report``)."""

from __future__ import annotations

from pathlib import Path

from analysis.report import render_report
from api.results import ExperimentResults, daily_points


def write_report(results: ExperimentResults, path: Path, *, title: str) -> Path:
    """Render ``results`` with their daily series and write the page to ``path``.

    Raises
    ------
    analysis.errors.AnalysisInputError
        When no slot could be analysed yet (the report needs at least one).
    """
    html = render_report(results.analyses, daily=daily_points(results.summary), title=title)
    path.write_text(html, encoding="utf-8")
    return path
