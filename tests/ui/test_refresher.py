"""The pages' background refresher: it refreshes at start-up and then on schedule, stops with the app,
and an error in one refresh (or one experiment) is logged without stopping it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.ui.numbers import TRAFFIC_KEY, numbers_key, refresh_numbers
from api.ui.refresher import Refresher
from api.ui.routes import page_cache, page_key, results_cache
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_refresher_runs_at_start_then_on_schedule_and_stops() -> None:
    calls: list[float] = []
    refresher = Refresher(lambda: calls.append(time.monotonic()), interval_seconds=0.05)
    assert not refresher.running
    refresher.start()
    refresher.start()  # already running: no second thread
    wait_until(lambda: len(calls) >= 3)
    assert refresher.stop(timeout=5)
    assert not refresher.running
    stopped_at = len(calls)
    time.sleep(0.2)
    assert len(calls) == stopped_at  # nothing runs after stop
    assert refresher.refreshes == stopped_at and refresher.failures == 0
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 0.04  # the interval separates refreshes


def test_a_failed_refresh_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def refresh() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("store down")

    refresher = Refresher(refresh, interval_seconds=0.02)
    with caplog.at_level(logging.ERROR, logger="sendlab.ui"):
        refresher.start()
        wait_until(lambda: len(calls) >= 4)
        assert refresher.stop(timeout=5)
    assert refresher.failures == 1
    failed = [r for r in caplog.records if "refreshing the pages' numbers failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert "store down" in str(failed[0].exc_info[1])


def test_stop_waits_for_the_refresh_in_progress() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def slow() -> None:
        started.set()
        release.wait(5)
        finished.append(True)

    refresher = Refresher(slow, interval_seconds=60)
    refresher.start()
    assert started.wait(5)
    assert not refresher.stop(timeout=0.05)  # still inside the refresh
    release.set()
    assert refresher.stop(timeout=5) and finished == [True]


def test_a_slow_refresh_gets_a_longer_pause() -> None:
    spans: list[tuple[float, float]] = []

    def slow() -> None:
        start = time.monotonic()
        time.sleep(0.1)
        spans.append((start, time.monotonic()))

    refresher = Refresher(slow, interval_seconds=0.01)
    refresher.start()
    wait_until(lambda: len(spans) >= 3)
    assert refresher.stop(timeout=5)
    pauses = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    busy = [end - start for start, end in spans]
    # each pause is at least twice the refresh before it (at most a third of the time refreshing)
    assert all(p >= 2 * b - 0.005 for p, b in zip(pauses, busy, strict=False)), (pauses, busy)


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan")])
def test_refresher_needs_a_positive_interval(seconds: float) -> None:
    with pytest.raises(ValueError, match="interval_seconds"):
        Refresher(lambda: None, interval_seconds=seconds)


def _small_service(folder: Path, kind: type[ExperimentService] = ExperimentService) -> ExperimentService:
    """Three A/B tests with 40 decisions each, the last one paused."""
    engine = make_engine(f"sqlite:///{folder / 'small.db'}")
    create_tables(engine)
    service = kind(engine, seed=3)
    for key in ("first", "second", "paused"):
        service.create(parse_spec({
            "key": key, "slots": {"subject": {"variants": [{"id": "a"}, {"id": "b"}]}},
            "design": {"type": "ab"}, "reward": {"events": {"click": 1.0}},
        }))
        service.assign_batch(key, [(f"u{i}", {}) for i in range(40)])
    service.set_status("paused", "paused")
    return service


class BrokenFor(ExperimentService):
    """The service, except that reading ``broken``'s numbers fails."""

    broken = "first"

    def summarize_with_learning(self, key: str) -> Any:
        if key == self.broken:
            raise RuntimeError(f"cannot read {key}")
        return super().summarize_with_learning(key)


def test_one_failing_experiment_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = _small_service(tmp_path, BrokenFor)
    app = create_app(Settings(db="sqlite://", ui_refresh_seconds=0), service=service)
    cache = results_cache(app)
    with caplog.at_level(logging.ERROR, logger="sendlab.ui"):
        refreshed = refresh_numbers(service, cache, idle_after_seconds=100.0)
    assert refreshed == 2  # second and paused; first failed
    infos = {i.key: i for i in service.list()}
    assert cache.age(numbers_key(infos["first"])) is None
    assert cache.age(numbers_key(infos["second"])) is not None
    assert cache.age(TRAFFIC_KEY) is not None
    assert any("experiment first failed" in r.getMessage() for r in caplog.records)
    # paused experiments are refreshed only once their numbers are older than idle_after_seconds
    assert refresh_numbers(service, cache, idle_after_seconds=100.0) == 1
    assert refresh_numbers(service, cache, idle_after_seconds=0.0) == 2


def test_the_app_starts_the_refresher_and_stops_it_on_shutdown(tmp_path: Path) -> None:
    service = _small_service(tmp_path)
    app = create_app(Settings(db="sqlite://", ui_refresh_seconds=3600), service=service)
    infos = service.list()
    with TestClient(app) as client:
        refresher = app.state.ui_refresher
        assert refresher.running
        wait_until(lambda: refresher.refreshes >= 1)  # the start-up refresh, before anyone asks
        cache = results_cache(app)
        numbers = {i.key: cache.age(numbers_key(i)) for i in infos}
        assert all(age is not None for age in numbers.values())
        # the default view of each page is drawn too: a visit only renders the template
        first, _ = cache.get(numbers_key(infos[0]), lambda: pytest.fail("not warm"))
        assert page_cache(app).age(page_key(first, 0.05, "holm")) is not None
        page = client.get("/ui/experiments/first").text
        assert first.computed_at.strftime("%Y-%m-%d %H:%M:%S UTC") in page
        assert "refreshed in the background every 3600 s" in page
        assert "refreshed in the background every 3600 s" in client.get("/ui").text
    assert not refresher.running  # the app's shutdown stopped it


def test_no_refresher_when_turned_off(tmp_path: Path) -> None:
    app = create_app(Settings(db="sqlite://", ui_refresh_seconds=0), service=_small_service(tmp_path))
    with TestClient(app) as client:
        assert getattr(app.state, "ui_refresher", None) is None
        assert "refreshed in the background" not in client.get("/ui").text
