"""Service settings: the database URL and the two API keys, read from the environment or a file.

Keys never live in code. ``SENDLAB_CONFIG`` may name a YAML or JSON file with the fields ``db``,
``admin_key``, ``send_key``, ``reports_dir``, ``metrics_dir``, ``ui_refresh_seconds``, ``learner``,
``learner_poll_seconds``, ``metrics_open``, ``erasure_secret`` and ``retention_days``; environment
variables override the file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

DEFAULT_DB = "sqlite:///sendlab.db"

_ENV_TO_FIELD = {
    "SENDLAB_DB": "db",
    "SENDLAB_ADMIN_KEY": "admin_key",
    "SENDLAB_SEND_KEY": "send_key",
    "SENDLAB_REPORTS_DIR": "reports_dir",
    "SENDLAB_METRICS_DIR": "metrics_dir",
    "SENDLAB_UI_REFRESH_SECONDS": "ui_refresh_seconds",
    "SENDLAB_LEARNER": "learner",
    "SENDLAB_LEARNER_POLL_SECONDS": "learner_poll_seconds",
    "SENDLAB_METRICS_OPEN": "metrics_open",
    "SENDLAB_ERASURE_SECRET": "erasure_secret",
    "SENDLAB_RETENTION_DAYS": "retention_days",
}


class SettingsError(ValueError):
    """The configuration file or an environment variable is unusable."""


@dataclass(frozen=True)
class Settings:
    """What the service needs to start.

    Attributes
    ----------
    db : str
        SQLAlchemy URL of the store, e.g. ``sqlite:///sendlab.db`` or ``postgresql+psycopg://...``.
    admin_key : str or None
        Bearer key allowed to do everything.
    send_key : str or None
        Bearer key allowed only to assign and post outcomes.
    create_tables : bool
        Create missing tables when the app starts. ``sendlab serve`` creates them once and turns this
        off for its workers (``SENDLAB_CREATE_TABLES=0``): concurrent ``CREATE TABLE`` on PostgreSQL
        can collide.
    reports_dir : str
        Folder of the replay and simulation HTML reports that the analyst pages list (``/ui/reports``).
    metrics_dir : str or None
        Folder where the worker processes of one server share their metric values, so that
        ``/metrics`` sums all of them (``sendlab serve`` sets up a fresh one); None: per process.
    ui_refresh_seconds : float
        Pause between two background refreshes of the pages' numbers (``/ui``), which also run once at
        start-up; 0 turns the refresher off (the pages then compute on a visit, and cache for 15 s).
    learner : bool
        Run the background learner in each worker (:mod:`api.learner_task`): it learns each running
        adaptive experiment when its spec's ``design.update`` says. Off (``SENDLAB_LEARNER=off``,
        ``sendlab serve --no-learner``) where learning runs as its own process (``sendlab learn KEY
        --watch``).
    learner_poll_seconds : float
        Pause between two checks of the background learner, in [0.05, 3600].
    metrics_open : bool
        Serve ``/metrics`` without a key (a scraper on a private network); by default it needs a
        configured key (either one) when the service has keys.
    erasure_secret : str or None
        The server's secret that keys the token replacing an erased recipient's id
        (``SENDLAB_ERASURE_SECRET``, at least 16 bytes); erasure is refused without it.
    retention_days : float or None
        Days after which stored contexts are dropped (``SENDLAB_RETENTION_DAYS``), by ``sendlab db
        prune`` or :func:`experiments.retention.prune_contexts`; None keeps them.
    """

    db: str = DEFAULT_DB
    admin_key: str | None = None
    send_key: str | None = None
    create_tables: bool = True
    reports_dir: str = "reports"
    metrics_dir: str | None = None
    ui_refresh_seconds: float = 10.0
    learner: bool = True
    learner_poll_seconds: float = 1.0
    metrics_open: bool = False
    erasure_secret: str | None = None
    retention_days: float | None = None

    @property
    def open(self) -> bool:
        """True when no key is configured and every request is allowed."""
        return not self.admin_key and not self.send_key

    def with_db(self, db: str | None) -> Settings:
        """A copy with another database URL (``None`` keeps this one)."""
        return self if db is None else replace(self, db=db)


def read_config_file(path: str | Path) -> dict[str, str]:
    """Read the fields of :class:`Settings` (``db``, ``admin_key``, ...) from a YAML or JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"SENDLAB_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"SENDLAB_CONFIG: {path}: not UTF-8 text") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SettingsError(f"SENDLAB_CONFIG: {path} is not valid YAML/JSON: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingsError(f"SENDLAB_CONFIG: {path} must hold a mapping, got {type(data).__name__}")
    known = set(_ENV_TO_FIELD.values())
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"SENDLAB_CONFIG: unknown field(s) {unknown}; expected {sorted(known)}")
    return {k: str(v) for k, v in data.items() if v is not None}


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``SENDLAB_CONFIG`` (if set) overridden by ``SENDLAB_DB`` and the key variables."""
    environ = os.environ if environ is None else environ
    fields: dict[str, str] = {}
    if environ.get("SENDLAB_CONFIG"):
        fields.update(read_config_file(environ["SENDLAB_CONFIG"]))
    for var, field in _ENV_TO_FIELD.items():
        if environ.get(var):
            fields[field] = environ[var]
    create = environ.get("SENDLAB_CREATE_TABLES", "1").strip().lower() not in ("0", "false", "no")
    parsed: dict[str, float | bool] = {}
    if "ui_refresh_seconds" in fields:
        parsed["ui_refresh_seconds"] = _refresh_seconds(fields.pop("ui_refresh_seconds"))
    if "learner" in fields:
        parsed["learner"] = _switch("SENDLAB_LEARNER", fields.pop("learner"))
    if "learner_poll_seconds" in fields:
        parsed["learner_poll_seconds"] = _poll_seconds(fields.pop("learner_poll_seconds"))
    if "metrics_open" in fields:
        parsed["metrics_open"] = _switch("SENDLAB_METRICS_OPEN", fields.pop("metrics_open"))
    if "retention_days" in fields:
        parsed["retention_days"] = _retention_days(fields.pop("retention_days"))
    return Settings(**fields, create_tables=create, **parsed)  # type: ignore[arg-type]


_ON = ("1", "on", "true", "yes")
_OFF = ("0", "off", "false", "no")


def _switch(name: str, text: str) -> bool:
    word = text.strip().lower()
    if word not in _ON + _OFF:
        raise SettingsError(f"{name}: must be on or off, got {text!r}")
    return word in _ON


def _poll_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0.05 <= seconds <= 3600:
        raise SettingsError(
            f"SENDLAB_LEARNER_POLL_SECONDS: must be a number of seconds in [0.05, 3600], got {text!r}"
        )
    return seconds


def _retention_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not days > 0 or math.isinf(days):
        raise SettingsError(f"SENDLAB_RETENTION_DAYS: a positive number of days, got {text!r}")
    return days


def _refresh_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (seconds == 0 or 1 <= seconds <= 86_400):
        raise SettingsError(
            f"SENDLAB_UI_REFRESH_SECONDS: must be 0 (off) or a number of seconds in [1, 86400], got {text!r}"
        )
    return seconds
