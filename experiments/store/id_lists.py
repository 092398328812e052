"""Conditions selecting rows by a list of ids, in as few statements as each database takes well.

SQLite: ``column IN (?, ?, ...)`` in pages of :data:`IN_PAGE` (its parameters cost nothing to bind).
PostgreSQL: ``column = ANY(:ids)``, one array parameter per page of :data:`ARRAY_PAGE`: psycopg rewrites
a query's placeholders on the client, one by one, so an ``IN`` list of 1,000 expanded parameters cost
more on the client than the lookup on the server (about a third of an outcome post of 5,000 clicks under
cProfile); an array is one placeholder whatever its length. The array's page stays small enough that
the planner looks the ids up in the index rather than scanning the table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import BindParameter, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Row

#: Ids per ``IN`` list (SQLite).
IN_PAGE = 1000
#: Ids per array parameter (PostgreSQL).
ARRAY_PAGE = 10_000


def ids_parameter(dialect: str, name: str = "ids") -> BindParameter[Any]:
    """The parameter a query built once takes its ids by: an array on PostgreSQL, an expanding list
    elsewhere (see :func:`id_match`)."""
    if dialect == "postgresql":
        return bindparam(name, type_=ARRAY(String))
    return bindparam(name, expanding=True)


def id_match(column: Any, ids: BindParameter[Any]) -> Any:
    """``column`` among the ids bound to ``ids`` (:func:`ids_parameter`)."""
    return column.in_(ids) if ids.expanding else column == any_(ids)


def id_pages(dialect: str, ids: Sequence[str]) -> Iterator[list[str]]:
    """``ids`` in the pages one statement of :func:`ids_parameter` takes on ``dialect``."""
    size = ARRAY_PAGE if dialect == "postgresql" else IN_PAGE
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def rows_by_ids(conn: Connection, query: Any, ids: Sequence[str], name: str = "ids") -> list[Row[Any]]:
    """The rows of ``query`` (built with :func:`ids_parameter` named ``name``) for every page of
    ``ids``, each page fetched at once (a row at a time cost as much again as the fetch itself).

    PostgreSQL: planned for each page's ids (``plan_cache_mode`` ``force_custom_plan`` until the
    transaction ends). psycopg prepares a statement run five times, and from about its eleventh run
    PostgreSQL may keep one generic plan, in which the ids are an unknown parameter: a filter comparing
    every outcome of the experiment with each id in turn (176 s instead of 0.5 s for 10,000 ids among
    100,000 outcomes, ``benchmarks/store.py``); planned with the ids, the comparison is hashed.
    """
    if conn.dialect.name == "postgresql" and ids:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    rows: list[Row[Any]] = []
    for page in id_pages(conn.dialect.name, ids):
        rows += conn.execute(query, {name: page}).all()
    return rows


def column_in(conn: Connection, column: Any) -> Any:
    """``column`` among the ids bound as ``ids`` for ``conn``'s database: the condition of a query to
    run with :func:`rows_by_ids`."""
    return id_match(column, ids_parameter(conn.dialect.name))

