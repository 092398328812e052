"""Errors raised by ``analysis/`` on unusable input (kept apart: naming them imports nothing)."""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """Bad input to an analysis function; the message names the field and the problem."""


class PowerInputError(ValueError):
    """Bad input to a planning function; the message is one sentence naming the field.

    Parameters
    ----------
    message : str
        The sentence shown to the user.
    field : str, optional
        The input to blame when the sentence does not start with its name; ``""`` when the problem is
        a combination of inputs rather than one of them.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
