"""Alembic migrations: a new store, a store made before migrations, and the models agree (SQLite and
PostgreSQL).

``data/store_before_migrations.*.sql.gz`` are dumps of a store made by SendLab as it was before migrations
(main at 1b07155, 2026-12-07): an A/B test and a Thompson-sampling bandit of 300 recipients each, with
clicks, revenue and one learning run. SQLite's is ``iterdump``, PostgreSQL's ``pg_dump --inserts``.
"""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from api.cli import app
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.store import create_tables, decisions_table, make_engine, outcomes_table, upgrade_store
from experiments.store.rollup_checks import verify_experiment
from experiments.store.schema import _config, current_revision, head_revision
from experiments.store.summaries import decision_groups
from tests.experiments.test_rollups import versions_of

DATA = Path(__file__).parent / "data"


def _schema_differences(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def _load_dump(url: str, engine: Any) -> None:
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    script = gzip.decompress((DATA / f"store_before_migrations.{dialect}.sql.gz").read_bytes()).decode()
    if dialect == "sqlite":
        raw = engine.raw_connection()
        try:
            raw.driver_connection.executescript(script)
        finally:
            raw.close()
    else:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            conn.execute(script)


def _counts(engine: Any) -> dict[str, Any]:
    """What the store holds, counted by SQL alone (independent of the service)."""
    d, o = decisions_table, outcomes_table
    with engine.connect() as conn:
        per_arm = conn.execute(
            select(d.c.experiment_key, d.c.arm, func.count()).group_by(d.c.experiment_key, d.c.arm)
        ).all()
        outcomes = conn.execute(select(o.c.experiment_key, o.c.type, func.count(), func.sum(o.c.value))
                                .group_by(o.c.experiment_key, o.c.type)).all()
        snapshots = conn.execute(text("SELECT count(*) FROM policy_snapshots")).scalar_one()
    return {"per_arm": sorted(map(tuple, per_arm)), "snapshots": snapshots,
            "outcomes": sorted((k, t, n, round(s or 0.0, 6)) for k, t, n, s in outcomes)}


def test_a_new_store_is_made_at_the_newest_revision_and_equals_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    result = upgrade_store(engine)
    assert (result.before, result.after, result.tables_before) == (None, head_revision(), False)
    assert _schema_differences(engine) == []
    again = upgrade_store(engine)
    assert not again.changed and again.before == head_revision()
    engine.dispose()


def test_the_migrations_from_nothing_make_what_the_models_make(db_url: str) -> None:
    """Running every revision on an empty database (not the create-and-stamp shortcut) ends equal to the
    models: the revisions and the models cannot drift apart."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    assert _schema_differences(engine) == []
    engine.dispose()


def test_a_store_made_before_migrations_upgrades_in_place(db_url: str) -> None:
    engine = make_engine(db_url)
    _load_dump(db_url, engine)
    before = _counts(engine)
    assert before["snapshots"] >= 1 and sum(n for _, _, n in before["per_arm"]) == 600
    result = upgrade_store(engine)
    assert (result.before, result.after, result.tables_before) == (None, head_revision(), True)
    assert _counts(engine) == before
    assert _schema_differences(engine) == []
    # the upgraded store answers: its summaries count what SQL counts, and it takes new work
    service = ExperimentService(engine, clock=lambda: datetime(2026, 12, 5, 9, tzinfo=UTC), seed=3)
    for key in ("legacy_ab", "legacy_ts"):
        counted = {arm: n for k, arm, n in before["per_arm"] if k == key}
        summary = service.summarize(key)
        assert summary.learnable_decisions + sum(summary.fallbacks.values()) == sum(counted.values())
        # the upgrade filled the rollups from the log (0004_rollups), outcomes and learning included
        checks = verify_experiment(engine, key)
        assert [c.differences for c in checks] == [[]] * len(checks)
        assert sum(c.decisions for c in checks) == sum(counted.values())
    legacy = versions_of(service, "legacy_ts")[-1]
    with engine.connect() as conn:
        filled = decision_groups(conn, legacy)
    assert sum(c.learned for c in filled) > 0 and sum(c.reward_sum for c in filled) > 0
    decision = service.assign("legacy_ts", "new-recipient", {"device": "mobile"})
    stored = service.record_outcomes([OutcomeEvent(
        event_id="after-upgrade", decision_id=decision.decision_id, type="click",
        timestamp=datetime(2026, 12, 5, 10, tzinfo=UTC))])
    assert (stored.accepted, stored.duplicates, stored.orphans) == (1, 0, 0)
    assert service.learn("legacy_ts") >= 0
    assert all(not c.differences for c in verify_experiment(engine, "legacy_ts"))
    engine.dispose()


@pytest.mark.postgres
def test_workers_starting_together_upgrade_once(pg_url: str) -> None:
    engines = [make_engine(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results: list[Any] = []
    errors: list[BaseException] = []

    def start(engine: Any) -> None:
        barrier.wait()
        try:
            results.append(upgrade_store(engine))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.changed for r in results) == [False, False, False, True]
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    for e in engines:
        e.dispose()


def test_db_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    _load_dump(url, engine)
    runner = CliRunner()
    first = runner.invoke(app, ["db", "upgrade", "--db", url, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"before": None, "after": head_revision(), "changed": True,
                                        "made_before_migrations": True}
    second = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert second.exit_code == 0 and "already at" in second.output
    missing = runner.invoke(app, ["db", "upgrade", "--db", "mysql://nowhere/db"])
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    engine.dispose()


def test_create_tables_is_the_same_upgrade(tmp_path: Path) -> None:
    """``create_tables`` (every server start) upgrades a store made before migrations too."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    _load_dump(url, engine)
    create_tables(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute(select(func.max(decisions_table.c.created_at))).scalar_one() < datetime(
            2026, 12, 2) + timedelta(days=1)
    engine.dispose()
