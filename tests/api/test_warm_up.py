"""A served worker warms linear Thompson sampling's compiled kernels before its first decision, and only
when an experiment needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import api.warm_up
from api.warm_up import needs_warm_up, start_warm_up
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

ROOT = Path(__file__).resolve().parents[2]


def _spec(key: str, policy: str):
    design = ({"type": "bandit", "policy": policy} if policy == "thompson"
              else {"type": "contextual", "policy": policy, "context": ["tier"]})
    variants = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    return parse_spec({"key": key, "slots": {"subject": {"variants": variants}}, "design": design})


@pytest.fixture
def service(tmp_path) -> ExperimentService:
    engine = make_engine(f"sqlite:///{tmp_path / 'warm.db'}")
    create_tables(engine)
    yield ExperimentService(engine, seed=1)
    engine.dispose()


def test_only_a_store_with_a_linear_ts_experiment_not_archived_needs_it(service) -> None:
    assert not needs_warm_up(service)
    service.create(_spec("plain", "thompson"))
    service.create(_spec("ucb", "linucb"))
    assert not needs_warm_up(service)
    service.create(_spec("ts", "linear_ts"))
    assert needs_warm_up(service)
    service.set_status("ts", "archived")
    assert not needs_warm_up(service)


def test_the_thread_warms_when_needed_and_never_raises(service, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr("bandit.gaussian_max.warm_up", lambda: calls.append(1))
    start_warm_up(service).join(timeout=60)
    assert calls == []  # nothing needs it
    service.create(_spec("ts", "linear_ts"))
    start_warm_up(service).join(timeout=60)
    assert calls == [1]

    def broken(_service):
        raise RuntimeError("the store is gone")

    monkeypatch.setattr(api.warm_up, "needs_warm_up", broken)
    thread = start_warm_up(service)
    thread.join(timeout=60)
    assert not thread.is_alive()  # logged, not raised


def test_warm_up_compiles_the_kernels_in_a_new_process() -> None:
    code = (
        "import sys\n"
        "import bandit.gaussian_max as g\n"
        "assert 'bandit.midpoint_rule' not in sys.modules\n"
        "g.warm_up()\n"
        "from bandit import midpoint_rule as m\n"
        "print(len(m.midpoint_grid.signatures), len(m.midpoint_rule.signatures))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    grid, rule = (int(n) for n in done.stdout.split())
    assert grid >= 1 and rule >= 1
