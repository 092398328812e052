"""The one place where domain errors are described: a status and ``{loc, msg}`` problems.

Lower layers raise their own exceptions; :func:`describe_error` turns each known one into an
:class:`ErrorAnswer`, which ``api.handlers`` sends as an HTTP answer and the command line prints on one
line. Routes never catch domain errors themselves.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from analysis.errors import AnalysisInputError, PowerInputError
from api.settings import SettingsError
from experiments.errors import Conflict, InvalidInput, NotFound, SpecError
from simulations.errors import SimulationInputError


@dataclass(frozen=True)
class ErrorAnswer:
    """A domain error as the service answers it.

    Attributes
    ----------
    status : int
        HTTP status (404, 409, 422, 503, ...).
    problems : tuple of (loc, msg)
        For 422, each problem with the path to its field; otherwise one problem with an empty path.
    headers : tuple of (name, value)
        Headers the answer carries (``Retry-After`` on a 503).
    """

    status: int
    problems: tuple[tuple[tuple[str | int, ...], str], ...]
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        if self.status == 422:
            return {"detail": [{"loc": list(loc), "msg": msg} for loc, msg in self.problems]}
        return {"detail": "; ".join(msg for _, msg in self.problems)}

    def one_line(self) -> str:
        """All problems on one line, each prefixed by its field unless the message starts with it."""
        parts = []
        for loc, msg in self.problems:
            path = loc[1:] if loc[:1] in (("body",), ("query",)) else loc
            field = ".".join(str(p) for p in path)
            named = not field or msg.startswith((field, str(path[-1])))
            parts.append(msg if named else f"{field}: {msg}")
        return "; ".join(parts)


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path_to_loc(path: Any) -> tuple[str | int, ...]:
    """``"slots.cta.variants[2].id"`` -> ``("slots", "cta", "variants", 2, "id")``."""
    if path is None or path == "":
        return ()
    if isinstance(path, str):
        return tuple(int(i) if i else name for name, i in _PATH_PART.findall(path))
    if isinstance(path, Sequence):
        return tuple(p if isinstance(p, int) else str(p) for p in path)
    return (str(path),)


def _pydantic_problems(errors: Sequence[Any], prefix: tuple[str | int, ...] = ()) -> tuple:
    return tuple((prefix + tuple(e["loc"]), e["msg"]) for e in errors)


def describe_error(exc: BaseException) -> ErrorAnswer | None:
    """The answer for a known domain or input error, ``None`` for anything else (a bug: 500)."""
    if isinstance(exc, NotFound):
        return ErrorAnswer(404, (((), str(exc)),))
    if isinstance(exc, SpecError):
        problems = tuple(
            (("body",) + _path_to_loc(getattr(p, "path", None)), getattr(p, "message", str(p)))
            for p in exc.problems
        )
        return ErrorAnswer(422, problems or ((("body",), str(exc)),))
    if isinstance(exc, InvalidInput):
        field = getattr(exc, "field", None)
        reason = getattr(exc, "reason", None) or str(exc)
        return ErrorAnswer(422, ((("body",) + _path_to_loc(field), reason),))
    if isinstance(exc, Conflict):
        return ErrorAnswer(409, (((), str(exc)),))
    if isinstance(exc, PowerInputError | AnalysisInputError | SimulationInputError):
        # Their messages start with the field's name ("alpha must be ..."): use it as the location,
        # unless the error names its field itself ("" for a problem of several fields together); a
        # dotted name ("summary.sum_squares") is a path into the body.
        message = str(exc)
        field = getattr(exc, "field", None)
        parts = (message.split(" ", 1)[0] if field is None else field).split(".")
        named = all(p.isidentifier() and p.islower() for p in parts)
        loc = ("body", *parts) if named else ("body",)
        return ErrorAnswer(422, ((loc, message),))
    if isinstance(exc, ValidationError):
        return ErrorAnswer(422, _pydantic_problems(exc.errors()))
    if isinstance(exc, SettingsError):
        return ErrorAnswer(422, (((), str(exc)),))
    return None


#: Seconds a client is asked to wait (``Retry-After``) before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 2
#: SQLite errors that pass (a lock held too long, a file that could not be opened or read for now).
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "unable to open", "disk i/o error")


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` itself says the database cannot be reached or used for now."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None:
        if isinstance(exc, sqlalchemy_exc.TimeoutError | sqlalchemy_exc.DisconnectionError):
            return True  # no pooled connection came free in time; a connection dropped
        if isinstance(exc, sqlalchemy_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, sqlalchemy_exc.OperationalError):
            return _unreachable(exc.orig) if exc.orig is not None else True
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return True  # a refused or lost connection, a server shutting down or starting up
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in _SQLITE_TRANSIENT)
    return False


def describe_unavailable(exc: BaseException) -> ErrorAnswer | None:
    """503 with ``Retry-After`` when ``exc`` (or an error it was raised from) says the database cannot be
    reached for now: a connection refused or lost, a server restarting, SQLite locked past its timeout.
    None for anything else. Nothing of the call was committed then, and retrying is safe for an
    assignment with a ``send_id`` and for outcomes (idempotent by ``event_id``).
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if _unreachable(cause):
            message = (
                "the database is unavailable for now; nothing of this request was stored: retry after "
                f"{RETRY_AFTER_SECONDS} s (assignments with their send_id, outcomes with their event ids)"
            )
            return ErrorAnswer(503, (((), message),), (("Retry-After", str(RETRY_AFTER_SECONDS)),))
        cause = cause.__cause__ or cause.__context__
    return None


@contextmanager
def reported_as(**api_names: str) -> Iterator[None]:
    """Report a planning error under the caller's names (``sample`` is ``values`` in a request, ...): its
    field, and the name its message starts with (``sample.sum_squares`` is ``summary.sum_squares``);
    other errors pass unchanged."""
    try:
        yield
    except PowerInputError as exc:
        message = str(exc)
        word = message.split(" ", 1)[0]
        field = exc.field if exc.field is not None else word
        renamed = _renamed(field, api_names), _renamed(word, api_names) + message[len(word):]
        if renamed == (field, message):
            raise
        raise PowerInputError(renamed[1], field=renamed[0]) from exc


def _renamed(name: str, api_names: dict[str, str]) -> str:
    """``name``, or a part of it (``sample.sum_squares``), under the caller's name."""
    head, dot, rest = name.partition(".")
    return api_names[head] + dot + rest if head in api_names else name


DOMAIN_ERRORS: tuple[type[BaseException], ...] = (
    NotFound, SpecError, InvalidInput, Conflict, PowerInputError, AnalysisInputError, SimulationInputError,
    ValidationError,
)
