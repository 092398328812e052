"""``sendlab db prune``: the retention period from --days or SENDLAB_RETENTION_DAYS; bad input on one line."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.settings import Settings, SettingsError, settings_from_env
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND, SEND_KEY, SPEC

runner = CliRunner()


def test_prune_reads_the_period_and_refuses_a_bad_one(sqlite_url: str, monkeypatch) -> None:
    with TestClient(create_app(Settings(db=sqlite_url, admin_key=ADMIN_KEY, send_key=SEND_KEY))) as client:
        assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
        client.post(f"/v1/experiments/{SPEC['key']}/assign", json={"recipient_id": "a", "context": {}},
                    headers=SEND)
    monkeypatch.delenv("SENDLAB_RETENTION_DAYS", raising=False)
    missing = runner.invoke(cli_app, ["db", "prune", "--db", sqlite_url])
    assert missing.exit_code != 0 and "SENDLAB_RETENTION_DAYS" in missing.output
    zero = runner.invoke(cli_app, ["db", "prune", "--db", sqlite_url, "--days", "0"])
    assert zero.exit_code != 0 and "--days" in zero.output and "Traceback" not in zero.output
    monkeypatch.setenv("SENDLAB_RETENTION_DAYS", "thirty")
    word = runner.invoke(cli_app, ["db", "prune", "--db", sqlite_url])
    assert word.exit_code != 0 and "SENDLAB_RETENTION_DAYS" in word.output
    monkeypatch.setenv("SENDLAB_RETENTION_DAYS", "30")
    kept = runner.invoke(cli_app, ["db", "prune", "--db", sqlite_url, "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["decisions"] == 0  # the decision is recent: its context stays
    assert settings_from_env({"SENDLAB_RETENTION_DAYS": "30"}).retention_days == 30.0
    with pytest.raises(SettingsError, match="SENDLAB_RETENTION_DAYS"):
        settings_from_env({"SENDLAB_RETENTION_DAYS": "-3"})


def test_prune_reports_the_feature_versions_it_deleted(sqlite_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from api.cli.db import open_engine
    from experiments.store.features import feature_versions, store_feature_version

    engine = open_engine(sqlite_url)
    now = datetime.now(UTC)
    for days in (50, 40, 35):  # the one of 35 days is the latest: it stays
        store_feature_version(engine, as_of=now, settings={}, events={}, model=None, rows=[("a", {"x": 1})],
                              created_at=now - timedelta(days=days))
    engine.dispose()
    pruned = runner.invoke(cli_app, ["db", "prune", "--db", sqlite_url, "--days", "30", "--json"])
    assert pruned.exit_code == 0, pruned.output
    answer = json.loads(pruned.output)
    assert (answer["decisions"], answer["feature_versions"]) == (0, 2) and "before" in answer
    again = runner.invoke(cli_app, ["db", "prune", "--db", sqlite_url, "--days", "30"])
    assert again.exit_code == 0 and "feature versions deleted  0" in again.output, again.output
    engine = open_engine(sqlite_url)
    with engine.connect() as conn:
        assert [v.version for v in feature_versions(conn)] == [3]
    engine.dispose()
