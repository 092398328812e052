"""The error the offline simulator raises on bad input (kept apart so that naming it imports nothing)."""

from __future__ import annotations


class SimulationInputError(ValueError):
    """Bad input to an estimator, loader or simulation; the message names the field and the problem."""
