"""Group commit: the writes of concurrent callers committed together, each caller answered after its commit.

At send time many requests each log a few decisions. Committed one transaction per request, they queue
for the database's write lock (on SQLite a waiting writer sleeps in the busy handler, 1 ms, then 2, 5,
10, 25 ... ms, which is where a latency tail comes from) and each pays its own commit. Here a caller
hands its rows to :meth:`GroupCommit.submit` and blocks. One caller at a time is the *leader*: it takes
every waiting caller's rows (its own among them, up to :attr:`GroupCommit.max_rows`), writes them in
one transaction, commits, then wakes each of them. Callers that arrived during that commit form the next
group. A caller alone commits at once: nothing waits for a group to fill.

Grouping pays where the database has one writer at a time (SQLite). A server that takes concurrent
commits and flushes them together itself (PostgreSQL's WAL) does better without it: with ``grouped``
off every caller commits its own rows at once, concurrently, and the rest is the same (measured with 4
threads on PostgreSQL: p50 4.3 to 5.5 ms per assignment ungrouped, 7.8 to 9.1 ms grouped).

The guarantee a caller relies on is unchanged: :meth:`~GroupCommit.submit` returns only after the
transaction holding its rows has committed, and raises :class:`GroupCommitError` when it did not; then
nothing of its rows was written (the transaction rolled back). One caller's bad rows do not fail the
others: when the database refuses a row (an integrity or data error: a constraint, a value it cannot
store), the group is written again one caller per transaction, so only the callers whose rows are refused
get the error. Any other failure (the database locked, the connection lost) fails every caller of the
group, each told so.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError

#: Rows a leader takes into one transaction (at least one caller's rows, however many they are).
DEFAULT_MAX_ROWS = 5_000
#: Errors caused by the rows written rather than by the database: a group failed by one is written again
#: one caller per transaction (Python's own errors from encoding a row included).
ROW_ERRORS: tuple[type[Exception], ...] = (IntegrityError, DataError, ValueError, TypeError)


class GroupCommitError(RuntimeError):
    """The transaction that held a caller's rows did not commit; none of its rows were written."""


class _Ticket:
    """One caller's rows and, once its group is done, whether it committed."""

    __slots__ = ("rows", "done", "error")

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = rows
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Write the rows of concurrent callers in shared transactions (see the module docstring).

    Parameters
    ----------
    engine : sqlalchemy Engine
        Each group is one ``engine.begin()`` transaction.
    write : callable (Connection, list of rows) -> None
        Writes the rows of one group on the open transaction (one ``executemany``, say); committing is
        done here, after it returns.
    max_rows : int
        The leader stops adding callers to a group once it holds this many rows (a caller's rows are
        never split, so one large caller forms a group of its own).
    grouped : bool
        False: each caller writes and commits its own rows at once, concurrently with the others.
    transaction : callable (Connection, int) -> context manager, optional
        How the rows are written on a caller's own connection (:meth:`submit`): a context that
        commits on a clean exit and rolls back on an error, given the connection and the number of
        rows. Default: SQLAlchemy's transaction on the connection.

    Examples
    --------
    >>> from sqlalchemy import create_engine, text
    >>> engine = create_engine("sqlite://")
    >>> with engine.begin() as conn:
    ...     _ = conn.execute(text("CREATE TABLE t (x INTEGER)"))
    >>> group = GroupCommit(engine, lambda conn, rows: conn.execute(text("INSERT INTO t VALUES (:x)"), rows))
    >>> group.submit([{"x": 1}, {"x": 2}])
    >>> with engine.connect() as conn:
    ...     conn.execute(text("SELECT count(*) FROM t")).scalar()
    2
    """

    def __init__(
        self,
        engine: Engine,
        write: Callable[[Connection, list[Any]], None],
        max_rows: int = DEFAULT_MAX_ROWS,
        grouped: bool = True,
        transaction: Callable[[Connection, int], AbstractContextManager[Any]] | None = None,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows: must be at least 1, got {max_rows}")
        self._engine = engine
        self._write = write
        self.max_rows = max_rows
        self.grouped = grouped
        self._transaction = transaction or _sqlalchemy_transaction
        self._waiting: deque[_Ticket] = deque()
        self._changed = threading.Condition()  # guards _waiting, _leading and the tickets' outcome
        self._leading = False  # a caller is writing a group right now
        self._groups = 0

    @property
    def waiting_callers(self) -> int:
        """How many callers wait for a group to take their rows (not those being written now)."""
        with self._changed:
            return len(self._waiting)

    @property
    def groups_committed(self) -> int:
        """How many transactions committed so far (fewer than callers when groups formed)."""
        return self._groups

    def submit(self, rows: Sequence[Any], connection: Connection | None = None) -> None:
        """Write ``rows``; return once they are committed.

        ``connection``, when given, is the caller's own (checked out already, perhaps with a read in
        progress): if the caller leads a group, the group is written and committed on it, by
        ``transaction`` (see the class; one checkout per request instead of two). Otherwise a group gets
        a connection of its own from the engine.

        Raises
        ------
        GroupCommitError
            The group's transaction failed (the cause is chained); none of ``rows`` were written.
        """
        if not rows:
            return
        ticket = _Ticket(rows)
        if not self.grouped:
            ticket.error = self._commit([ticket], connection)
            if ticket.error is not None and not isinstance(ticket.error, Exception):
                raise ticket.error
            ticket.done = True
        with self._changed:
            if not ticket.done:
                self._waiting.append(ticket)
            while not ticket.done:
                if self._leading:  # wait for the group being written: ours may be in it
                    self._changed.wait()
                    continue
                self._leading = True
                group = self._take_group()
                self._changed.release()
                errors: list[BaseException | None] = [None] * len(group)
                try:
                    errors = self._commit_group(group, connection)
                finally:
                    self._changed.acquire()
                    for waiting, error in zip(group, errors, strict=True):
                        waiting.error = error
                        waiting.done = True
                    self._leading = False
                    self._changed.notify_all()
                for error in errors:
                    if error is not None and not isinstance(error, Exception):
                        raise error  # KeyboardInterrupt, SystemExit: the group was told, now stop
        if ticket.error is not None:
            raise GroupCommitError(
                f"the transaction did not commit ({ticket.error.__class__.__name__}: {ticket.error}); "
                "nothing of it was written"
            ) from ticket.error

    def _take_group(self) -> list[_Ticket]:
        """The oldest waiting callers, up to ``max_rows`` rows (at least one caller); lock held."""
        group: list[_Ticket] = []
        size = 0
        while self._waiting and (not group or size + len(self._waiting[0].rows) <= self.max_rows):
            ticket = self._waiting.popleft()
            group.append(ticket)
            size += len(ticket.rows)
        return group

    def _commit_group(
        self, group: list[_Ticket], connection: Connection | None
    ) -> list[BaseException | None]:
        """Commit ``group`` in one transaction; if the database refused a row of it, each caller's rows
        again in a transaction of their own. The error of each caller, in order (None: committed)."""
        error = self._commit(group, connection)
        if error is None or len(group) == 1 or not isinstance(error, ROW_ERRORS):
            return [error] * len(group)
        return [self._commit([ticket], connection) for ticket in group]

    def _commit(self, group: list[_Ticket], connection: Connection | None) -> BaseException | None:
        """Write and commit the rows of ``group`` in one transaction (lock not held); the error, if any.

        ``connection``: the caller's, used when given (see :meth:`submit`).
        """
        rows = list(group[0].rows) if len(group) == 1 else [row for t in group for row in t.rows]
        error: BaseException | None = None
        try:
            if connection is None:
                with self._engine.begin() as conn:
                    self._write(conn, rows)
            else:
                with self._transaction(connection, len(rows)):
                    self._write(connection, rows)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the group
            error = exc
        else:
            with self._changed:
                self._groups += 1
        return error


@contextmanager
def _sqlalchemy_transaction(connection: Connection, _rows: int) -> Iterator[None]:
    """The connection's transaction (begun if none is open), committed on a clean exit."""
    if not connection.in_transaction():
        connection.begin()
    try:
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
