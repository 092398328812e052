"""The errors the experiments core raises; the API turns each into an HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The reason given for a string holding a NUL character, which PostgreSQL cannot store in text or JSON.
NUL_REASON = "must not contain a NUL character (\\u0000)"


class ExperimentsError(Exception):
    """Base class of every error raised by ``experiments``."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a spec: where (a dotted path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ExperimentsError):
    """A spec that is not valid; ``problems`` lists every problem found, each with its path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        count = len(self.problems)
        header = f"invalid experiment spec ({count} problem{'s' if count != 1 else ''})"
        super().__init__(header + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class NotFound(ExperimentsError):
    """Nothing is stored under ``key`` (an experiment key or a decision id)."""

    def __init__(self, key: str, what: str = "experiment") -> None:
        self.key = key
        super().__init__(f"{what} {key!r} not found")


class InvalidInput(ExperimentsError):
    """A call argument is wrong: ``field`` names it and ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class AssignmentError(ExperimentsError):
    """The design could not choose soundly (a propensity that is not a probability): a fault of the
    service, not of the input. Nothing of the call was logged, and no other call's decisions were held up."""


class Conflict(ExperimentsError):
    """The call is not allowed in the experiment's current state (e.g. assigning in an archived one)."""
