"""The feature table: versions of a feature computation and each recipient's attributes in them.

:func:`store_feature_version` writes a version and all its rows in one transaction, in chunks (one
``executemany`` per chunk on SQLite, one ``COPY`` per chunk on PostgreSQL): a reader sees the version
whole once it committed, and nothing of it before (no half-written version is ever readable). The
reads (:func:`latest_feature_version`, :func:`feature_version`, :func:`feature_attributes`) are the
ones assignment makes at send time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine

from experiments.store.tables import feature_versions_table, features_table, from_db_time, to_db_time

#: Rows written per statement.
FEATURE_CHUNK_ROWS = 10_000
#: Recipient ids per ``IN`` list when rows are read.
READ_PAGE = 1000


@dataclass(frozen=True)
class FeatureVersion:
    """One stored computation.

    Attributes
    ----------
    version : int
        Increasing with each refresh; assignment reads the latest.
    as_of : datetime
        The moment the features describe (aware UTC).
    settings : dict
        The computation's settings (windows, k, horizon, seed, ...).
    recipients : int
    events : dict
        ``read``, ``used``, ``after_as_of``.
    model : dict or None
        The conversion model's quality (``auc``, ``log_loss``, ``horizon_days``, ...); None without one.
    created_at : datetime
    """

    version: int
    as_of: datetime
    settings: dict[str, Any]
    recipients: int
    events: dict[str, int]
    model: dict[str, Any] | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """As the command line and the API print it."""
        return {
            "version": self.version, "as_of": self.as_of.isoformat(), "settings": self.settings,
            "recipients": self.recipients, "events": self.events, "model": self.model,
            "created_at": self.created_at.isoformat(),
        }


def _version(row: Any) -> FeatureVersion:
    return FeatureVersion(
        version=int(row.version), as_of=from_db_time(row.as_of), settings=dict(row.settings),
        recipients=int(row.recipients), events=dict(row.events),
        model=None if row.model is None else dict(row.model), created_at=from_db_time(row.created_at),
    )


def store_feature_version(
    engine: Engine,
    *,
    as_of: datetime,
    settings: Mapping[str, Any],
    events: Mapping[str, int],
    model: Mapping[str, Any] | None,
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    created_at: datetime,
    chunk_rows: int = FEATURE_CHUNK_ROWS,
) -> FeatureVersion:
    """Store a new version with ``rows`` (``(recipient_id, attributes)``, each id once) in one
    transaction; return it. On any error nothing of it is stored."""
    v = feature_versions_table
    with engine.begin() as conn:
        inserted = conn.execute(
            v.insert().values(
                as_of=to_db_time(as_of), settings=dict(settings), recipients=0, events=dict(events),
                model=None if model is None else dict(model), created_at=to_db_time(created_at),
            ).returning(v.c.version)
        ).scalar_one()
        count = 0
        iterator = iter(rows)
        while chunk := list(islice(iterator, chunk_rows)):
            _insert_rows(conn, [(inserted, rid, json.dumps(attrs)) for rid, attrs in chunk])
            count += len(chunk)
        conn.execute(v.update().where(v.c.version == inserted).values(recipients=count))
        return _version(conn.execute(select(v).where(v.c.version == inserted)).one())


def _insert_rows(conn: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    """``(version, recipient_id, attributes as JSON text)`` rows: ``COPY`` on PostgreSQL, one
    ``executemany`` on SQLite."""
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy("COPY features (version, recipient_id, attributes) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    conn.connection.driver_connection.executemany(
        "INSERT INTO features (version, recipient_id, attributes) VALUES (?, ?, ?)", rows
    )


def latest_feature_version(conn: Connection) -> int | None:
    """The number of the latest committed version, or None when none is stored."""
    return conn.execute(select(func.max(feature_versions_table.c.version))).scalar()


def feature_version(conn: Connection, version: int) -> FeatureVersion | None:
    """Version ``version``, or None."""
    v = feature_versions_table
    row = conn.execute(select(v).where(v.c.version == version)).first()
    return None if row is None else _version(row)


def feature_versions(conn: Connection) -> list[FeatureVersion]:
    """Every stored version, the latest first."""
    v = feature_versions_table
    return [_version(r) for r in conn.execute(select(v).order_by(v.c.version.desc()))]


def feature_attributes(
    conn: Connection, version: int, recipient_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The stored attributes of those of ``recipient_ids`` that version ``version`` holds."""
    f = features_table
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(recipient_ids), READ_PAGE):
        page = list(recipient_ids[start : start + READ_PAGE])
        query = select(f.c.recipient_id, f.c.attributes).where(
            f.c.version == version, f.c.recipient_id.in_(page)
        )
        found.update((rid, dict(attrs)) for rid, attrs in conn.execute(query))
    return found


def delete_feature_version(conn: Connection, version: int) -> bool:
    """Delete version ``version`` and its rows on ``conn`` (the caller's transaction); False when it was
    not stored."""
    conn.execute(delete(features_table).where(features_table.c.version == version))
    v = feature_versions_table
    return bool(conn.execute(delete(v).where(v.c.version == version)).rowcount)
