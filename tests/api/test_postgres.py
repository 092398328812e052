"""The service on PostgreSQL: the same walk through the contract as on SQLite."""

from __future__ import annotations

import pytest

from tests.api.flow import walk_the_contract


def test_contract_on_sqlite(client):
    walk_the_contract(client)


@pytest.mark.postgres
def test_contract_on_postgres(make_client, pg_url):
    walk_the_contract(make_client(pg_url))
