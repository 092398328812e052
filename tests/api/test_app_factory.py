"""The factory ``sendlab serve`` runs in each worker."""

from __future__ import annotations

import gc

import fastapi.routing
from fastapi.testclient import TestClient

from api.app import SERVER_GC_THRESHOLDS, app_from_env, create_app
from api.settings import Settings
from api.warm_up import build_routes


def test_the_served_factory_tunes_the_garbage_collector_and_create_app_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDLAB_DB", f"sqlite:///{tmp_path / 'served.db'}")
    monkeypatch.setenv("SENDLAB_ADMIN_KEY", "k")
    monkeypatch.delenv("SENDLAB_CONFIG", raising=False)
    before = gc.get_threshold()
    apps = []
    try:
        gc.set_threshold(700, 10, 10)
        embedded = create_app(Settings(db=f"sqlite:///{tmp_path / 'embedded.db'}", admin_key="k"))
        apps.append(embedded)
        assert gc.get_threshold() == (700, 10, 10)  # embedding the app leaves the host's collector alone
        served = app_from_env()
        apps.append(served)
        assert gc.get_threshold() == SERVER_GC_THRESHOLDS
        assert served.state.settings.db.endswith("served.db")
    finally:
        gc.set_threshold(*before)
        for app in apps:
            app.state.engine.dispose()


def _route_builds(monkeypatch) -> list[str]:
    """Count the routes FastAPI builds (its internal builder, wrapped): if a FastAPI release renames it,
    this fails loudly rather than passing without checking anything."""
    built: list[str] = []
    real = fastapi.routing._populate_api_route_state

    def counted(*args, **kwargs):
        built.append("route")
        return real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "_populate_api_route_state", counted)
    return built


def test_the_served_factory_builds_every_route_before_the_first_request(tmp_path, monkeypatch):
    monkeypatch.setenv("SENDLAB_DB", f"sqlite:///{tmp_path / 'served.db'}")
    monkeypatch.setenv("SENDLAB_ADMIN_KEY", "k")
    monkeypatch.delenv("SENDLAB_CONFIG", raising=False)
    built = _route_builds(monkeypatch)
    before = gc.get_threshold()
    try:
        served = app_from_env()
    finally:
        gc.set_threshold(*before)
    at_start = len(built)
    assert at_start > 20  # every API route (the pages' and the machine routes')
    client = TestClient(served)
    for path in ("/healthz", "/ui", "/v1/experiments", "/no/such/page"):
        client.get(path, headers={"Authorization": "Bearer k"})
    assert len(built) == at_start  # no request built a route
    served.state.engine.dispose()


def test_without_the_warm_up_the_first_request_builds_the_routes(tmp_path, monkeypatch):
    built = _route_builds(monkeypatch)
    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'embedded.db'}", admin_key="k"))
    at_create = len(built)  # the routes of included routers are built lazily...
    TestClient(app).get("/healthz")
    assert len(built) > at_create + 20  # ...on the first request: what build_routes moves to the start
    app.state.engine.dispose()


def test_a_failing_route_build_is_logged_and_leaves_the_app_serving(tmp_path, monkeypatch, caplog):
    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'embedded.db'}", admin_key="k"))

    def broken(*_args, **_kwargs):
        raise RuntimeError("a route cannot be built")

    monkeypatch.setattr(fastapi.routing, "_populate_api_route_state", broken)
    build_routes(app)
    assert "building the routes at start failed" in caplog.text
    monkeypatch.undo()
    assert TestClient(app).get("/healthz").status_code == 200
    app.state.engine.dispose()
