"""The repository's per-process caches stay within their sizes and, once they have dropped an entry,
answer as a repository that never dropped anything (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.limits import CACHED_POLICIES, CACHED_SPECS
from experiments.service import ExperimentService
from experiments.store.lru import LRU
from experiments.store.repository import Repository
from tests.experiments.conftest import Clock
from tests.experiments.test_learning import send, thompson_spec

KEYS = ["first", "second", "third"]


def test_an_lru_keeps_its_size_and_drops_the_least_recently_used() -> None:
    cache: LRU[str, int | None] = LRU(2)
    cache["a"], cache["b"] = 1, None
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache["c"] = 3
    assert len(cache) == 2
    assert "b" not in cache and cache.get("b", "absent") == "absent"
    assert cache.get("a") == 1 and cache.get("c") == 3
    cache["a"] = 4  # rewriting a key keeps one entry of it
    assert len(cache) == 2 and cache.get("a") == 4
    with pytest.raises(ValueError, match="at least one"):
        LRU(0)


def test_the_default_sizes_come_from_the_limits() -> None:
    assert Repository().cache_sizes() == {"specs": 0, "policies": 0}
    assert min(CACHED_SPECS, CACHED_POLICIES) >= 1


def test_a_bounded_repository_answers_as_an_unbounded_one_after_evicting(
    service: ExperimentService, clock: Clock
) -> None:
    small = Repository(specs=2, policies=1)
    service.core.repo = small
    rng = np.random.default_rng(11)
    for key in KEYS:
        service.create(thompson_spec(key))
        _, events = send(service, key, 300, 0, rng, clock)
        service.record_outcomes(events)
    clock.advance(hours=25)
    for key in KEYS:
        service.learn(key)
        service.assign(key, "after-learning", {})  # restores the key's latest policy into the cache
        service.policy_history(key)
    sizes = small.cache_sizes()
    assert sizes["specs"] <= 2 and sizes["policies"] <= 1
    # read again, in the order that evicts each entry before it is needed, and against a fresh process
    fresh = ExperimentService(service.engine, clock=clock, seed=7)
    for key in KEYS:
        assert service.policy_history(key) == fresh.policy_history(key)
        with service.engine.connect() as conn:
            compiled = small.compiled(key, 1, conn=conn)
            version, policy = small.current_policy(conn, key, 1)  # type: ignore[misc]
            latest = small.latest_snapshot(conn, key, state=True)
        assert compiled.spec.key == key
        assert latest is not None and version == latest.version
        assert policy.to_bytes() == latest.state
        assert small.cache_sizes()["policies"] == 1
    assert [h.version for h in service.policy_history("first")] == [1, 2]
    sizes = small.cache_sizes()
    assert sizes["specs"] <= 2 and sizes["policies"] <= 1
