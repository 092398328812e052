"""``sendlab replay --experiment KEY --slot send_time``: a timing policy evaluated on an experiment's log
with the hours' own logged propensities."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from tests.api.conftest import make_spec

runner = CliRunner()
SEND_TIME = {"hours": [9, 12, 18], "timezone_attr": "tz", "default_timezone": "UTC"}


def test_a_timing_policy_is_replayed_on_the_hours_own_propensities(tmp_path):
    db = f"sqlite:///{tmp_path / 'sendlab.db'}"
    engine = make_engine(db)
    create_tables(engine)
    service = ExperimentService(engine, seed=3, clock=lambda: datetime(2026, 3, 9, 6, tzinfo=UTC))
    service.create(parse_spec(make_spec(key="timing", send_time=SEND_TIME)))  # 2 subjects x 2 CTAs x 3 hours
    decisions = service.assign_batch(
        "timing", [(f"r{i}", {"consent": True}) for i in range(900)], send_date=date(2026, 3, 9)
    )
    rng = np.random.default_rng(5)
    rate = {9: 0.1, 12: 0.2, 18: 0.4}
    clicked = [d for d in decisions if rng.random() < rate[d.send_at.hour]]
    service.record_outcomes([  # an hour after each send: inside the reward window, which runs from it
        OutcomeEvent(f"c{i}", d.decision_id, "click", timestamp=d.send_at + timedelta(hours=1))
        for i, d in enumerate(clicked)
    ])
    engine.dispose()
    weights = [0.1, 0.3, 0.6]  # 09:00, 12:00, 18:00
    candidate = tmp_path / "timing.yaml"
    candidate.write_text(yaml.safe_dump({"policy": "fixed", "train": False, "train_fraction": 0.0,
                                         "options": {"weights": weights}}))
    result = runner.invoke(app, ["replay", "--db", db, "--experiment", "timing", "--slot", "send_time",
                                 "--policy", str(candidate), "--estimators", "ips,snips", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["action_names"] == ["09:00", "12:00", "18:00"]
    # by hand: each hour was drawn with probability 1/3, whatever the subject and CTA
    hour_weight = {9: weights[0], 12: weights[1], 18: weights[2]}
    ratio = np.array([hour_weight[d.send_at.hour] * 3 for d in decisions])
    reward = np.array([1.0 if d in clicked else 0.0 for d in decisions])
    estimates = {e["estimator"]: e for e in out["candidates"][0]["estimates"]}
    assert estimates["ips"]["value"] == pytest.approx(np.mean(ratio * reward), rel=1e-9)
    assert estimates["snips"]["value"] == pytest.approx(np.sum(ratio * reward) / np.sum(ratio), rel=1e-9)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--slot", "subject"], "only send_time logs a propensity of its own"),
        (["--slot", "send_time"], "declares no send_time"),
    ],
)
def test_a_bad_slot_is_one_line(tmp_path, args, needle):
    db = f"sqlite:///{tmp_path / 'sendlab.db'}"
    engine = make_engine(db)
    create_tables(engine)
    ExperimentService(engine).create(parse_spec(make_spec(key="plain")))
    engine.dispose()
    candidate = tmp_path / "c.yaml"
    candidate.write_text(yaml.safe_dump({"policy": "fixed", "train": False, "train_fraction": 0.0}))
    result = runner.invoke(app, ["replay", "--db", db, "--experiment", "plain", *args,
                                 "--policy", str(candidate)])
    assert result.exit_code != 0 and needle in result.output and "Traceback" not in result.output
