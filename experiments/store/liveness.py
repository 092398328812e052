"""Checking that a pooled PostgreSQL connection is alive, unless it was in use a moment ago.

A connection the server dropped while it sat in the pool (a restart, an idle timeout on the way) must
not fail a request: it is tested with an empty query before it is handed out, and replaced when the
test fails. SQLAlchemy's ``pool_pre_ping`` tests every checkout, one round trip to the server each: on
the send path a seventh of a single assign's round trips. A connection returned to the pool less than
:data:`PING_AFTER_IDLE_SECONDS` ago is handed out untested (HikariCP skips its test within 500 ms of a
connection's last use the same way). If the server went away within that moment, the statement fails
with a disconnect error: SQLAlchemy then replaces every connection of the pool, and that request
answers 503 with ``Retry-After`` (:mod:`api.errors`), as any request does while the database is away.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

#: A connection returned to the pool at most this long ago is handed out without a test.
PING_AFTER_IDLE_SECONDS = 0.5

_RETURNED = "sendlab_returned_at"


def ping_idle_connections(engine: Engine) -> Engine:
    """``engine``, its pool testing a connection at checkout only when it sat idle for more than
    :data:`PING_AFTER_IDLE_SECONDS` (use instead of ``pool_pre_ping``)."""
    dialect = engine.dialect

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_RETURNED)  # None: a new connection (the pool clears it on reconnecting)
        if last is None or time.monotonic() - last <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # as pool_pre_ping does: every pooled connection is replaced, and the checkout tried again
                raise exc.InvalidatePoolError(str(error)) from error
            raise

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checked_out)
    return engine
