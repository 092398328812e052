"""``sendlab learn KEY [--watch]``: learning as its own process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'learn.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def service(db: str) -> Iterator[ExperimentService]:
    engine = make_engine(db)
    create_tables(engine)
    yield ExperimentService(engine, seed=5)
    engine.dispose()


def create(
    service: ExperimentService, key: str = "subject", design_type: str = "bandit", **update: float
) -> None:
    design = {"type": design_type}
    if design_type == "bandit":
        design |= {"policy": "thompson", "update": {"delay_hours": 0, **update}}
    service.create(
        parse_spec(
            {
                "key": key,
                "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
                "design": design,
                "reward": {"events": {"click": 1.0}},
                "consent": {"missing": "allow"},
            }
        )
    )


def send(service: ExperimentService, n: int, clicks: int, tag: str = "") -> None:
    decisions = service.assign_batch("subject", [(f"{tag}u{i}", {}) for i in range(n)])
    service.record_outcomes(
        [OutcomeEvent(f"{tag}c{i}", d.decision_id, "click") for i, d in enumerate(decisions[:clicks])]
    )


def learn(*args: str):
    return runner.invoke(app, ["learn", *args])


def test_learn_once_prints_what_it_learned(service: ExperimentService, db: str) -> None:
    create(service)
    send(service, 10, 4)
    first = learn("subject", "--db", db)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "subject: policy version 1 -> 2, learned 10 decisions and 4 outcomes"
    assert service.policy_state("subject")[0] == 2
    again = learn("subject", "--db", db, "--json")
    assert again.exit_code == 0, again.output
    answer = json.loads(again.output)
    assert {k: answer[k] for k in ("key", "version_before", "version", "decisions", "outcomes")} == {
        "key": "subject",
        "version_before": 2,
        "version": 2,
        "decisions": 0,
        "outcomes": 0,
    }
    assert learn("subject", "--db", db).output.strip() == "subject: nothing new to learn (policy version 2)"


def test_learn_once_ignores_the_schedule(service: ExperimentService, db: str) -> None:
    create(service, every_outcomes=1000)  # far from due: `sendlab learn KEY` learns at once all the same
    send(service, 6, 1)
    result = learn("subject", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["version"] == 2


def test_watch_learns_when_the_schedule_says(service: ExperimentService, db: str) -> None:
    create(service, every_outcomes=3)
    send(service, 8, 2)  # 2 outcomes pending: not due
    result = learn("subject", "--db", db, "--watch", "--poll-seconds", "0.05", "--max-checks", "2")
    assert result.exit_code == 0, result.output
    assert result.output == "" and service.policy_state("subject")[0] == 1
    send(service, 1, 1, tag="more-")  # its click makes 3 outcomes pending: due
    result = learn("subject", "--db", db, "--watch", "--poll-seconds", "0.05", "--max-checks", "3", "--json")
    assert result.exit_code == 0, result.output
    runs = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["version_before"], r["version"], r["decisions"], r["outcomes"]) for r in runs] == [
        (1, 2, 9, 3)
    ]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["nope"], "nope"),
        ("ab", ["subject"], "there is no policy to learn"),
        ("ab", ["subject", "--watch"], "there is no policy to learn"),
        ("unscheduled", ["subject", "--watch"], "--watch: experiment 'subject' has no design.update"),
    ],
)
def test_bad_learn_requests_are_one_line(
    service: ExperimentService, db: str, setup: str, args: list[str], message: str
) -> None:
    if setup == "ab":
        create(service, design_type="ab")
    elif setup == "unscheduled":
        create(service)
    result = learn(*args, "--db", db)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_watch_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'watch.db'}"
    engine = make_engine(db)
    create_tables(engine)
    service = ExperimentService(engine, seed=5)
    create(service, every_outcomes=1)
    send(service, 5, 2)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.cli import app; app(prog_name='sendlab')",
            "learn",
            "subject",
            "--watch",
            "--poll-seconds",
            "0.05",
            "--db",
            db,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first run: the watcher is up
        assert line.strip() == "subject: policy version 1 -> 2, learned 5 decisions and 2 outcomes"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert err.strip() == "stopped watching subject"
    engine.dispose()


@pytest.mark.parametrize(("flag", "expected"), [("--no-learner", "off"), ("--learner", "on"), (None, None)])
def test_serve_passes_the_learner_switch_to_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str | None, expected: str | None
) -> None:
    import api.cli.serve

    environ = {k: v for k, v in os.environ.items() if not k.startswith("SENDLAB_")}
    monkeypatch.setattr(os, "environ", environ)  # serve sets variables for its workers: undone after
    seen: list[str | None] = []
    monkeypatch.setattr(
        api.cli.serve, "run_server", lambda *a, **k: seen.append(os.environ.get("SENDLAB_LEARNER"))
    )
    args = ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--port", "0"] + ([flag] if flag else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen == [expected]
