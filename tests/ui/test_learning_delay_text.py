"""The "is it learning?" section says when the policy learns a decision: ``delay_hours``, else the window."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from tests.ui.conftest import build_app


def bandit(key: str, update: dict[str, Any]) -> Any:
    return parse_spec({
        "key": key, "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
        "design": {"type": "bandit", "policy": "thompson", "update": update},
        "reward": {"events": {"click": 1.0}, "window_hours": 72},
    })


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ({}, "once its reward window (72 h) has passed"),
        ({"delay_hours": 2}, "once it is 2 h old (design.update.delay_hours; the reward window is 72 h)"),
        ({"delay_hours": 0},
         "as soon as it is logged (design.update.delay_hours is 0; the reward window is 72 h)"),
    ],
)
def test_the_learning_text_follows_delay_hours(tmp_path: Path, update: dict[str, Any], expected: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ui.db'}")
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    service.create(bandit("learns", update))
    service.assign_batch("learns", [(f"r{i}", {}) for i in range(20)])
    with TestClient(build_app(service, keys=False, reports=tmp_path)) as client:
        page = client.get("/ui/experiments/learns").text
    engine.dispose()
    sentence = re.search(r"The policy learns a decision (.*?); the reward learned", page, re.S)
    assert sentence is not None, page
    assert " ".join(re.sub(r"<[^>]+>", "", sentence.group(1)).split()) == expected
