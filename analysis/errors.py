"""Errors raised by the results half of ``analysis/`` when its input is not usable."""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """Bad input to an analysis function; the message names the field and the problem."""
