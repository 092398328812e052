"""Bugs a new email team met (issue 22, "bugs found by use"), each pinned by a test that failed before."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from tests.api.conftest import ADMIN

runner = CliRunner()


@pytest.fixture
def no_control_conversions(sqlite_url) -> str:
    """An A/B test where only the variant has conversions: the control's conversion rate is 0."""
    engine = make_engine(sqlite_url)
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    service.create(parse_spec({
        "key": "hello", "slots": {"subject": {"variants": [{"id": "plain"}, {"id": "urgent"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "ab"},
        "reward": {"events": {"click": 1.0, "conversion": 5.0}, "guardrails": ["unsubscribe"]},
    }))
    decisions = service.assign_batch("hello", [(f"r{i}", {}) for i in range(400)])
    rng = np.random.default_rng(0)
    events = []
    for i, d in enumerate(decisions):
        if rng.random() < 0.2:
            events.append(OutcomeEvent(f"c{i}", d.decision_id, "click"))
        if d.variants["subject"].id == "urgent" and rng.random() < 0.1:
            events.append(OutcomeEvent(f"v{i}", d.decision_id, "conversion"))
    service.record_outcomes(events)
    engine.dispose()
    return sqlite_url


def test_a_lift_over_a_control_without_events_is_null_in_json_and_n_a_in_the_table(
    no_control_conversions, make_client
) -> None:
    db = no_control_conversions
    result = runner.invoke(app, ["analyze", "hello", "--db", db, "--json"])
    assert result.exit_code == 0, repr(result.exception)
    body = json.loads(result.output)
    conversion = next(c for c in body["comparisons"] if c["metric"] == "conversion")
    assert conversion["lift"] is None and conversion["ci"] == [None, None]
    assert 0 < conversion["p_value"] < 0.05  # the test itself is defined: 0 conversions against some
    response = make_client(db).get("/v1/experiments/hello/results", headers=ADMIN)
    assert response.status_code == 200
    assert next(c for c in response.json()["comparisons"] if c["metric"] == "conversion")["lift"] is None
    table = runner.invoke(app, ["analyze", "hello", "--db", db])
    assert table.exit_code == 0, repr(table.exception)
    assert "nan" not in table.output.lower()
    row = next(line for line in table.output.splitlines()
               if "urgent vs plain" in line and "conversion" in line)
    assert "n/a" in row and "[n/a, n/a]" in row
    assert not any(math.isnan(x) for x in [conversion["p_value"], conversion["prob_beat_control"]])
