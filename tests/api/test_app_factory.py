"""The factory ``sendlab serve`` runs in each worker."""

from __future__ import annotations

import gc

from api.app import SERVER_GC_THRESHOLDS, app_from_env, create_app
from api.settings import Settings


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
