"""``sendlab verify KEY``: equal rollups are one OK line and exit 0; differences are listed and exit 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app as cli_app
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

runner = CliRunner()


def _store(url: str) -> Any:
    engine = make_engine(url)
    create_tables(engine)
    service = ExperimentService(engine, seed=5, clock=lambda: datetime(2026, 5, 4, 8, tzinfo=UTC))
    spec: dict[str, Any] = {
        "key": "checked", "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "design": {"type": "ab"}, "consent": {"missing": "allow"},
        "reward": {"events": {"click": 1.0}, "value": "revenue", "window_hours": 24},
    }
    service.create(parse_spec(spec))
    decided = service.assign_batch("checked", [(f"r{i}", {}) for i in range(40)])
    moment = datetime(2026, 5, 4, 9, tzinfo=UTC)
    service.record_outcomes([OutcomeEvent(f"e{i}", d.decision_id, "click" if i % 2 else "revenue",
                                          None if i % 2 else 7.5, moment) for i, d in enumerate(decided)])
    service.create(parse_spec({**spec, "reward": {**spec["reward"], "events": {"click": 2.0}}}))
    later = service.assign_batch("checked", [(f"s{i}", {}) for i in range(10)])
    service.record_outcomes([OutcomeEvent("late", later[0].decision_id, "click", None,
                                          moment + timedelta(days=3))])
    return engine


def test_verify_says_ok_when_the_rollups_equal_the_log(sqlite_url: str) -> None:
    _store(sqlite_url).dispose()
    done = runner.invoke(cli_app, ["verify", "checked", "--db", sqlite_url])
    assert done.exit_code == 0, done.output
    assert done.output == "OK checked: rollups equal the log (2 spec versions, 50 decisions)\n"
    answer = json.loads(runner.invoke(cli_app, ["verify", "checked", "--db", sqlite_url, "--json"]).output)
    assert answer["equal"] is True
    assert [(v["version"], v["decisions"], v["differences"]) for v in answer["versions"]] == [
        (1, 40, []), (2, 10, [])]


def test_verify_lists_each_difference_and_exits_1(sqlite_url: str) -> None:
    engine = _store(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE rollups SET decisions = decisions + 3 WHERE version = 2 AND arm = 1"))
        conn.execute(text("UPDATE rollup_counts SET outcomes = 0 WHERE kind = 'late'"))
    engine.dispose()
    done = runner.invoke(cli_app, ["verify", "checked", "--db", sqlite_url])
    assert done.exit_code == 1
    lines = done.output.splitlines()
    assert any(line.startswith("version 2: ") and "arm=1" in line and "decisions rollup" in line
               for line in lines), lines
    assert any(line.startswith("version 2: outcomes late type=click: rollup 0 != log 1") for line in lines)
    assert lines[-1].startswith("DIFFERENT checked: ")
    answer = json.loads(runner.invoke(cli_app, ["verify", "checked", "--db", sqlite_url, "--json"]).output)
    assert answer["equal"] is False and answer["versions"][0]["differences"] == []


def test_verify_of_an_unknown_experiment_is_one_line(sqlite_url: str) -> None:
    _store(sqlite_url).dispose()
    done = runner.invoke(cli_app, ["verify", "nope", "--db", sqlite_url])
    assert done.exit_code != 0 and "nope" in done.output and "Traceback" not in done.output
