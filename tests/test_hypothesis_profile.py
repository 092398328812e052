"""The CI profile of Hypothesis: the same examples on every run, no example database in the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent


def test_ci_profile_is_derandomised_without_a_database():
    ci = settings.get_profile("ci")
    assert ci.derandomize is True
    assert ci.database is None


def test_ci_run_selects_the_ci_profile():
    script = (ROOT / ".ci" / "run").read_text()
    assert "export SENDLAB_HYPOTHESIS_PROFILE=ci" in script
    assert "export HYPOTHESIS_STORAGE_DIRECTORY=" in script  # its caches outside the checkout too


def test_the_variable_selects_the_profile_for_tests_with_their_own_settings(tmp_path):
    """A test's own ``@settings(max_examples=...)`` keeps the profile's derandomisation and no database."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from hypothesis import given, settings, strategies as st\n"
        "seen = []\n"
        "@settings(max_examples=5, deadline=None)\n"
        "@given(st.integers())\n"
        "def test_probe(x):\n"
        "    seen.append(x)\n"
        "def test_effective():\n"
        "    s = test_probe._hypothesis_internal_use_settings\n"
        "    assert s.derandomize is True and s.database is None, (s.derandomize, s.database)\n"
    )
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    storage = tmp_path / "storage"
    env = {**os.environ, "SENDLAB_HYPOTHESIS_PROFILE": "ci", "HYPOTHESIS_STORAGE_DIRECTORY": str(storage)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(probe)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / ".hypothesis").exists()  # nothing written where the tests ran
    assert not (storage / "examples").exists()  # and no example database anywhere


@given(st.integers())
def test_profile_in_force_here(x):
    if os.environ.get("SENDLAB_HYPOTHESIS_PROFILE") == "ci":
        assert settings.default.derandomize is True
        assert settings.default.database is None
