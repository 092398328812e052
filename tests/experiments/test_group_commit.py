"""Group commit: concurrent callers share transactions, each returns only after its own rows committed;
a row the database refuses fails only its own caller (the rest of its group commits), and any other
failure fails every caller of its group and writes nothing of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from experiments.group_commit import GroupCommit, GroupCommitError


@pytest.fixture
def table(engine: Engine) -> Iterator[str]:
    """A table ``gc_rows (caller, n)`` that refuses the caller ``poison`` (a real database error)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE gc_rows (caller VARCHAR(32) NOT NULL, n INTEGER NOT NULL)"))
        if conn.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER gc_poison BEFORE INSERT ON gc_rows WHEN NEW.caller = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            ))
        else:
            conn.execute(text("ALTER TABLE gc_rows ADD CONSTRAINT gc_poison CHECK (caller <> 'poison')"))
    yield "gc_rows"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE gc_rows"))


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(text("INSERT INTO gc_rows (caller, n) VALUES (:caller, :n)"), rows)


def stored(engine: Engine) -> dict[str, list[int]]:
    """Committed rows per caller, read on a fresh connection."""
    out: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for caller, n in conn.execute(text("SELECT caller, n FROM gc_rows ORDER BY caller, n")):
            out.setdefault(caller, []).append(n)
    return out


class HeldFirstWrite:
    """A write function whose first call waits until ``hold`` is set: callers arriving meanwhile queue
    up and form the next group."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.entered = threading.Event()
        self.group_sizes: list[int] = []
        self._first = True

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        self.group_sizes.append(len(rows))
        if self._first:
            self._first = False
            self.entered.set()
            assert self.hold.wait(30)
        insert_rows(conn, rows)


def submit_in_threads(
    group: GroupCommit, callers: dict[str, list[dict[str, Any]]], engine: Engine
) -> tuple[list[threading.Thread], dict[str, BaseException], dict[str, list[int]]]:
    """Start one thread per caller; each records its error, or what was committed of it right after
    ``submit`` returned (read on a fresh connection: only committed rows are visible there)."""
    errors: dict[str, BaseException] = {}
    seen_after_return: dict[str, list[int]] = {}

    def call(name: str) -> None:
        try:
            group.submit(callers[name])
        except BaseException as exc:
            errors[name] = exc
            return
        seen_after_return[name] = stored(engine).get(name, [])

    threads = [threading.Thread(target=call, args=(name,)) for name in callers]
    for t in threads:
        t.start()
    return threads, errors, seen_after_return


def wait_until_waiting(group: GroupCommit, callers: int) -> None:
    for _ in range(3000):
        if group.waiting_callers == callers:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{group.waiting_callers} callers waiting, expected {callers}")


def test_concurrent_callers_share_one_transaction_and_each_sees_its_rows_committed(
    engine: Engine, table: str
) -> None:
    write = HeldFirstWrite()
    group = GroupCommit(engine, write)
    first = threading.Thread(target=group.submit, args=([{"caller": "first", "n": 0}],))
    first.start()
    assert write.entered.wait(30)  # the first caller leads and holds its transaction open
    callers = {f"c{i}": [{"caller": f"c{i}", "n": j} for j in range(i + 1)] for i in range(6)}
    threads, errors, seen = submit_in_threads(group, callers, engine)
    wait_until_waiting(group, 6)
    assert stored(engine) == {}  # nothing is visible before a commit
    write.hold.set()
    for t in [first, *threads]:
        t.join(30)
    assert errors == {}
    # the six callers that queued behind the first were written in one transaction
    assert write.group_sizes == [1, sum(len(rows) for rows in callers.values())]
    assert group.groups_committed == 2
    for name, rows in callers.items():
        assert seen[name] == [r["n"] for r in rows], name  # committed when submit returned
    expected = {name: [r["n"] for r in rows] for name, rows in callers.items()}
    assert stored(engine) == {"first": [0], **expected}


def test_a_refused_row_fails_only_its_caller_and_the_rest_of_its_group_commits(
    engine: Engine, table: str
) -> None:
    write = HeldFirstWrite()
    group = GroupCommit(engine, write)
    first = threading.Thread(target=group.submit, args=([{"caller": "first", "n": 0}],))
    first.start()
    assert write.entered.wait(30)
    callers = {
        "a": [{"caller": "a", "n": 1}, {"caller": "a", "n": 2}],
        "poison": [{"caller": "poison", "n": 3}],
        "b": [{"caller": "b", "n": 4}],
    }
    threads, errors, seen = submit_in_threads(group, callers, engine)
    wait_until_waiting(group, 3)
    write.hold.set()
    for t in [first, *threads]:
        t.join(30)
    assert set(errors) == {"poison"}
    exc = errors["poison"]
    assert isinstance(exc, GroupCommitError)
    assert "nothing of it was written" in str(exc)
    assert exc.__cause__ is not None  # the database's own error
    assert seen == {"a": [1, 2], "b": [4]}  # committed when their submit returned
    assert stored(engine) == {"first": [0], "a": [1, 2], "b": [4]}  # nothing of the refused caller
    # the group of three failed as a whole, then each caller was written in a transaction of its own
    assert write.group_sizes == [1, 4, 2, 1, 1]
    assert group.groups_committed == 3
    # the writer goes on: the next callers commit
    group.submit([{"caller": "after", "n": 5}])
    assert stored(engine) == {"after": [5], "first": [0], "a": [1, 2], "b": [4]}


class LockedOnce(HeldFirstWrite):
    """:class:`HeldFirstWrite` whose second call fails as a locked database does (not a refused row)."""

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        super().__call__(conn, rows)
        if len(self.group_sizes) == 2:
            raise OperationalError("INSERT INTO gc_rows ...", {}, Exception("database is locked"))


def test_a_failed_commit_fails_every_caller_of_its_group_and_writes_nothing_of_it(
    engine: Engine, table: str
) -> None:
    write = LockedOnce()
    group = GroupCommit(engine, write)
    first = threading.Thread(target=group.submit, args=([{"caller": "first", "n": 0}],))
    first.start()
    assert write.entered.wait(30)
    callers = {"a": [{"caller": "a", "n": 1}, {"caller": "a", "n": 2}], "b": [{"caller": "b", "n": 4}]}
    threads, errors, seen = submit_in_threads(group, callers, engine)
    wait_until_waiting(group, 2)
    write.hold.set()
    for t in [first, *threads]:
        t.join(30)
    assert set(errors) == {"a", "b"}
    for exc in errors.values():
        assert isinstance(exc, GroupCommitError)
        assert "nothing of it was written" in str(exc)
        assert isinstance(exc.__cause__, OperationalError)
    assert write.group_sizes == [1, 3]  # not written again caller by caller: the rows are not at fault
    assert stored(engine) == {"first": [0]}  # the group before committed; nothing of the failed one
    assert group.groups_committed == 1
    group.submit([{"caller": "after", "n": 5}])
    assert stored(engine) == {"after": [5], "first": [0]}


def test_a_group_stops_at_max_rows_and_never_splits_a_caller(engine: Engine, table: str) -> None:
    write = HeldFirstWrite()
    group = GroupCommit(engine, write, max_rows=5)
    first = threading.Thread(target=group.submit, args=([{"caller": "first", "n": 0}],))
    first.start()
    assert write.entered.wait(30)
    sizes = [3, 2, 4, 7, 1]
    names = [f"c{i}" for i in range(len(sizes))]
    threads = []
    for name, size in zip(names, sizes, strict=True):  # queued one after another, in this order
        rows = [{"caller": name, "n": j} for j in range(size)]
        threads.append(threading.Thread(target=group.submit, args=(rows,)))
        threads[-1].start()
        wait_until_waiting(group, len(threads))
    write.hold.set()
    for t in [first, *threads]:
        t.join(30)
    # FIFO groups of at most 5 rows: [3, 2], [4], [7] (one caller larger than the cap), [1]
    assert write.group_sizes == [1, 5, 4, 7, 1]
    counts = {name: len(v) for name, v in stored(engine).items()}
    assert counts == {"first": 1, **dict(zip(names, sizes, strict=True))}


def test_a_lone_caller_commits_at_once_and_empty_rows_are_nothing(engine: Engine, table: str) -> None:
    group = GroupCommit(engine, insert_rows)
    group.submit([])
    assert group.groups_committed == 0
    group.submit([{"caller": "solo", "n": 1}])
    assert group.groups_committed == 1
    assert stored(engine) == {"solo": [1]}
    with pytest.raises(ValueError, match="max_rows: must be at least 1"):
        GroupCommit(engine, insert_rows, max_rows=0)


def test_many_threads_each_get_exactly_their_rows(engine: Engine, table: str) -> None:
    group = GroupCommit(engine, insert_rows)
    callers = {f"t{i}": [{"caller": f"t{i}", "n": i * 10 + j} for j in range(3)] for i in range(16)}
    threads, errors, seen = submit_in_threads(group, callers, engine)
    for t in threads:
        t.join(60)
    assert errors == {}
    assert all(seen[name] == [r["n"] for r in rows] for name, rows in callers.items())
    assert stored(engine) == {name: [r["n"] for r in rows] for name, rows in callers.items()}
    assert 1 <= group.groups_committed <= 16


def test_a_leader_writes_on_the_callers_connection_in_the_transaction_it_has_open(
    engine: Engine, table: str
) -> None:
    group = GroupCommit(engine, insert_rows)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM gc_rows")).scalar() == 0  # a read opens a transaction
        group.submit([{"caller": "own", "n": 1}], conn)
        assert not conn.in_transaction()  # committed on it
        assert stored(engine) == {"own": [1]}
        with pytest.raises(GroupCommitError):
            group.submit([{"caller": "poison", "n": 2}], conn)
        assert not conn.in_transaction()  # rolled back, still usable
        assert conn.execute(text("SELECT count(*) FROM gc_rows")).scalar() == 1
    assert stored(engine) == {"own": [1]}
    assert group.groups_committed == 1


def test_ungrouped_callers_each_commit_their_own_rows_and_fail_alone(engine: Engine, table: str) -> None:
    group = GroupCommit(engine, insert_rows, grouped=False)
    callers = {f"t{i}": [{"caller": f"t{i}", "n": i}] for i in range(8)}
    callers["poison"] = [{"caller": "poison", "n": 99}]
    threads, errors, seen = submit_in_threads(group, callers, engine)
    for t in threads:
        t.join(60)
    assert set(errors) == {"poison"} and isinstance(errors["poison"], GroupCommitError)
    assert all(seen[name] == [i] for i, name in enumerate(n for n in callers if n != "poison"))
    assert stored(engine) == {f"t{i}": [i] for i in range(8)}
    assert group.groups_committed == 8  # one transaction per caller
    assert group.waiting_callers == 0
