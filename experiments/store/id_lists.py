"""Conditions selecting rows by a list of ids, in as few statements as each database takes well: one
parameter per page of :data:`PAGE` ids, whatever its length.

PostgreSQL: ``column = ANY(:ids)``, an array parameter: psycopg rewrites a query's placeholders on the
client, one by one, so an ``IN`` list of 1,000 expanded parameters cost more on the client than the
lookup on the server (about a third of an outcome post of 5,000 clicks under cProfile). The array's
page stays small enough that the planner looks the ids up in the index rather than scanning the table.
SQLite: ``column IN (SELECT value FROM json_each(:ids))``, the ids as one JSON array: SQLAlchemy
rendering an expanding ``IN (?, ?, ...)`` of 1,000 parameters per page took more than the lookup (an
outcome post's read of 50,000 decisions by id 0.45 s in ``IN`` lists, 0.19 s by ``json_each``); the
subquery's values are looked up in the index one by one as the list's were.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import BindParameter, String, TypeDecorator, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect, Row

#: Ids per parameter.
PAGE = 10_000


class _BinaryIds(list[str]):
    """A page of ids that psycopg sends as a binary array (its dumper registered below): as text it
    tested every id for quoting with a regular expression (0.12 s of CPU per 100,000 ids, 0.03 s in
    binary)."""


psycopg.adapters.register_dumper(_BinaryIds, ListBinaryDumper)


class IdArray(TypeDecorator[list[str]]):
    """PostgreSQL: a parameter of ids, a text array, passed to psycopg as :class:`_BinaryIds`
    (SQLAlchemy's own array parameter makes every value a plain list)."""

    impl = ARRAY(String)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        return lambda value: None if value is None else _BinaryIds(value)


def ids_parameter(dialect: str, name: str = "ids") -> BindParameter[Any]:
    """The parameter a query built once takes its ids by: an array on PostgreSQL, a JSON array's text
    elsewhere (see :func:`id_match`; its value :func:`id_value`)."""
    if dialect == "postgresql":
        return bindparam(name, type_=IdArray())
    return bindparam(name, type_=String)


def id_match(column: Any, ids: BindParameter[Any]) -> Any:
    """``column`` among the ids bound to ``ids`` (:func:`ids_parameter`)."""
    if isinstance(ids.type, IdArray):
        return column == any_(ids)
    return column.in_(select(func.json_each(ids).table_valued("value").c.value))


def id_value(dialect: str, ids: Sequence[str]) -> Any:
    """The value of a :func:`ids_parameter` for ``ids`` on ``dialect``."""
    if dialect == "postgresql":
        return list(ids)
    return json.dumps(list(ids), ensure_ascii=False)


def id_pages(dialect: str, ids: Sequence[str]) -> Iterator[Any]:
    """``ids`` in the pages one statement of :func:`ids_parameter` takes, each as the parameter's
    value on ``dialect``."""
    for start in range(0, len(ids), PAGE):
        yield id_value(dialect, ids[start : start + PAGE])


def rows_by_ids(conn: Connection, query: Any, ids: Sequence[str], name: str = "ids",
                make: Callable[[Row[Any]], Any] | None = None) -> list[Any]:
    """The rows of ``query`` (built with :func:`ids_parameter` named ``name``) for every page of
    ``ids``, each page fetched at once (a row at a time cost as much again as the fetch itself); each
    row made into ``make(row)`` when given, page by page (so that no page's SQLAlchemy rows outlive it:
    100,000 of them at once kept the garbage collector busy).

    PostgreSQL: planned for each page's ids (``plan_cache_mode`` ``force_custom_plan`` until the
    transaction ends). psycopg prepares a statement run five times, and from about its eleventh run
    PostgreSQL may keep one generic plan, in which the ids are an unknown parameter: a filter comparing
    every outcome of the experiment with each id in turn (176 s instead of 0.5 s for 10,000 ids among
    100,000 outcomes, ``benchmarks/store.py``); planned with the ids, the comparison is hashed.
    """
    if conn.dialect.name == "postgresql" and ids:  # by the driver: in a pipeline, sent with the query
        conn.connection.driver_connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    rows: list[Any] = []
    for page in id_pages(conn.dialect.name, ids):
        fetched = conn.execute(query, {name: page}).all()
        rows += fetched if make is None else map(make, fetched)
    return rows


def column_in(conn: Connection, column: Any) -> Any:
    """``column`` among the ids bound as ``ids`` for ``conn``'s database: the condition of a query to
    run with :func:`rows_by_ids`."""
    return id_match(column, ids_parameter(conn.dialect.name))
