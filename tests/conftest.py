"""Shared fixtures.

``pg_url`` gives a throwaway PostgreSQL database, created for the test and dropped after it.
Outside CI, when no server answers, tests that use it skip with the reason; with
``SENDLAB_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) the skip becomes a failure.

Hypothesis profiles: ``ci`` (chosen by ``SENDLAB_HYPOTHESIS_PROFILE=ci``, which ``.ci/run`` sets) draws
the same examples on every run and writes no example database into the checkout; without the variable
Hypothesis's own default profile applies.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings

# no deadline: an example's time is not a test's business on a shared two-core machine (speed is measured
# in benchmarks/); one of test_significance took 342 ms under load against the default 200 ms
settings.register_profile("default", deadline=None)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("SENDLAB_HYPOTHESIS_PROFILE", "default"))

PG_ADMIN_URL = os.environ.get(
    "SENDLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_conninfo() -> str:
    return PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        import psycopg

        admin = psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=3)
    except Exception as exc:  # no server: skip, unless CI requires it
        reason = f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc}".splitlines()[0]
        if os.environ.get("SENDLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"sendlab_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
