"""Fixtures for the experiments tests: the same service suite on SQLite (WAL, a temp file) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec
from experiments.store import create_tables, make_engine


class Clock:
    """A settable clock for the service."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(scope="module")
def logs_from_before_the_number_bound() -> Iterator[None]:
    """Contexts stored as the service stored them before numbers were bounded by
    :data:`experiments.limits.MAX_CONTEXT_NUMBER` (``1.5e300``, ``2**70``): logs that hold such numbers
    remain, and whatever reads them must still be right. Module-scoped so that Hypothesis tests use it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.service.inputs.MAX_CONTEXT_NUMBER", float("inf"))
        yield


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sendlab.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    create_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def service(engine: Engine, clock: Clock) -> ExperimentService:
    return ExperimentService(engine, clock=clock, seed=7)


def make_spec(**overrides: Any) -> ExperimentSpec:
    """A small valid spec (two slots, A/B design) with fields replaced by ``overrides``."""
    data: dict[str, Any] = {
        "key": "spring",
        "slots": {
            "subject": {
                "variants": [
                    {"id": "plain", "content": "Spring sale"},
                    {"id": "urgent", "content": "Ends tonight"},
                ]
            },
            "cta": {
                "variants": [{"id": "shop", "content": "Shop now"}, {"id": "see", "content": "See more"}]
            },
        },
        "design": {"type": "multivariate"},
        # the tests' recipients carry no consent attribute: the spec takes a missing one as consent
        "consent": {"missing": "allow"},
        "reward": {
            "events": {"click": 1.0, "conversion": 5.0},
            "value": "revenue",
            "window_hours": 72,
            "guardrails": ["unsubscribe"],
        },
    }
    data.update(overrides)
    return parse_spec(data)


SpecFactory = Callable[..., ExperimentSpec]


@pytest.fixture
def spec_factory() -> SpecFactory:
    return make_spec
