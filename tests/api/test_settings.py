"""Settings come from the environment or a config file, never from code."""

from __future__ import annotations

import pytest

from api.settings import DEFAULT_DB, Settings, SettingsError, settings_from_env


def test_defaults_are_open_on_the_embedded_database():
    settings = settings_from_env({})
    assert settings == Settings(db=DEFAULT_DB, admin_key=None, send_key=None)
    assert settings.open


def test_environment_sets_db_and_keys():
    env = {"SENDLAB_DB": "sqlite:///x.db", "SENDLAB_ADMIN_KEY": "a", "SENDLAB_SEND_KEY": "s"}
    settings = settings_from_env(env)
    assert (settings.db, settings.admin_key, settings.send_key) == ("sqlite:///x.db", "a", "s")
    assert not settings.open


def test_config_file_is_read_and_environment_overrides_it(tmp_path):
    config = tmp_path / "sendlab.yaml"
    config.write_text("db: sqlite:///from-file.db\nadmin_key: file-admin\nsend_key: file-send\n")
    settings = settings_from_env({"SENDLAB_CONFIG": str(config), "SENDLAB_SEND_KEY": "env-send"})
    assert settings.db == "sqlite:///from-file.db"
    assert settings.admin_key == "file-admin"
    assert settings.send_key == "env-send"


def test_json_config_file(tmp_path):
    config = tmp_path / "sendlab.json"
    config.write_text('{"admin_key": "k"}')
    assert settings_from_env({"SENDLAB_CONFIG": str(config)}).admin_key == "k"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold a mapping"),
        ("admin: x\n", "unknown field(s) ['admin']"),
        ("db: [unclosed\n", "not valid YAML/JSON"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, content, message):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(SettingsError, match="SENDLAB_CONFIG") as info:
        settings_from_env({"SENDLAB_CONFIG": str(config)})
    assert message in str(info.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="cannot read .*missing.yaml"):
        settings_from_env({"SENDLAB_CONFIG": str(tmp_path / "missing.yaml")})


def test_table_creation_can_be_left_to_the_serve_command():
    assert settings_from_env({}).create_tables
    assert not settings_from_env({"SENDLAB_CREATE_TABLES": "0"}).create_tables


def test_ui_refresh_interval_from_the_environment_or_the_file(tmp_path):
    assert settings_from_env({}).ui_refresh_seconds == 10.0
    assert settings_from_env({"SENDLAB_UI_REFRESH_SECONDS": "0"}).ui_refresh_seconds == 0.0
    assert settings_from_env({"SENDLAB_UI_REFRESH_SECONDS": "30"}).ui_refresh_seconds == 30.0
    config = tmp_path / "sendlab.yaml"
    config.write_text("ui_refresh_seconds: 45\n")
    assert settings_from_env({"SENDLAB_CONFIG": str(config)}).ui_refresh_seconds == 45.0


@pytest.mark.parametrize("value", ["soon", "-1", "0.5", "nan", "100000"])
def test_bad_ui_refresh_interval_is_named(value):
    with pytest.raises(SettingsError, match="SENDLAB_UI_REFRESH_SECONDS: must be 0 .* got"):
        settings_from_env({"SENDLAB_UI_REFRESH_SECONDS": value})


def test_the_learner_switch_and_poll_interval_from_the_environment_or_the_file(tmp_path):
    assert settings_from_env({}).learner and settings_from_env({}).learner_poll_seconds == 1.0
    for word in ("off", "OFF", "0", "false", "no"):
        assert not settings_from_env({"SENDLAB_LEARNER": word}).learner
    for word in ("on", "1", "true", "yes"):
        assert settings_from_env({"SENDLAB_LEARNER": word}).learner
    assert settings_from_env({"SENDLAB_LEARNER_POLL_SECONDS": "0.25"}).learner_poll_seconds == 0.25
    config = tmp_path / "sendlab.yaml"
    config.write_text("learner: off\nlearner_poll_seconds: 5\n")  # YAML reads off as false
    from_file = settings_from_env({"SENDLAB_CONFIG": str(config)})
    assert (from_file.learner, from_file.learner_poll_seconds) == (False, 5.0)
    assert settings_from_env({"SENDLAB_CONFIG": str(config), "SENDLAB_LEARNER": "on"}).learner


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SENDLAB_LEARNER", "sometimes", "SENDLAB_LEARNER: must be on or off, got 'sometimes'"),
        ("SENDLAB_LEARNER_POLL_SECONDS", "0", r"SENDLAB_LEARNER_POLL_SECONDS: must be .* \[0.05, 3600\]"),
        ("SENDLAB_LEARNER_POLL_SECONDS", "nan", "SENDLAB_LEARNER_POLL_SECONDS: must be"),
        ("SENDLAB_LEARNER_POLL_SECONDS", "soon", "SENDLAB_LEARNER_POLL_SECONDS: must be"),
    ],
)
def test_bad_learner_settings_are_named(name, value, message):
    with pytest.raises(SettingsError, match=message):
        settings_from_env({name: value})
