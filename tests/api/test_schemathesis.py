"""Property-based fuzzing of the service's own OpenAPI schema with schemathesis.

Every operation the schema declares is called with bodies, paths and query strings that schemathesis
draws from the schema (valid ones, and in the negative mode ones that break it), on a throwaway SQLite
store with both keys configured and the admin key sent. Each answer must not be a server error, must
carry a status code the operation declares, the declared content type, and a body that fits the
declared schema. Each case with a ``key`` path parameter is sent twice: as drawn, and pointed at an
experiment that exists, so the success paths (assign, batch, results, ...) are fuzzed as well as 404s.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import ADMIN, ADMIN_KEY, SEND_KEY, SPEC

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def fuzzed_schema(tmp_path):
    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'fuzz.db'}", admin_key=ADMIN_KEY,
                              send_key=SEND_KEY))
    with TestClient(app) as client:  # the experiment the second call of each case aims at
        assert client.post("/v1/experiments", json=SPEC, headers=ADMIN).status_code == 201
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.engine.dispose()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schema_fuzzing_finds_no_500_and_no_answer_outside_the_schema(fuzzed_schema, mode):
    fuzzed = []
    for result in fuzzed_schema.get_all_operations():
        operation = result.ok()  # raises if the schema of an operation cannot be loaded
        if mode is GenerationMode.NEGATIVE and not (operation.path_parameters or operation.query
                                                    or operation.body):
            continue  # nothing to break in a call without inputs (/healthz, the list)

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(headers=ADMIN, checks=CHECKS)
            if case.path_parameters and "key" in case.path_parameters:
                case.path_parameters["key"] = SPEC["key"]
                case.call_and_validate(headers=ADMIN, checks=CHECKS)

        check()
        fuzzed.append(operation.label)
    assert "POST /v1/experiments/{key}/assign/batch" in fuzzed and "POST /v1/outcomes" in fuzzed
