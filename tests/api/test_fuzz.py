"""Arbitrary JSON thrown at every route: never a 500, and every answer fits its declared model.

Complements the schema fuzzing of ``test_schemathesis.py`` (which draws from the declared schema):
Hypothesis draws arbitrary JSON values and near-miss bodies built from each route's own field names.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from analysis.power.bandit import BanditPlan
from analysis.power.curves import PowerCurve
from analysis.power.means import MeanAnswer
from analysis.power.rates import RateAnswer
from analysis.power.sequential import SequentialInflation
from analysis.power.test_then_send import TestThenSendPlan
from api.models.assign import BatchDecisions, DecisionPublic, PreviewsPublic
from api.models.common import MessageBody, ValidationErrorBody
from api.models.experiments import ExperimentCreated
from api.models.outcomes import OutcomeCountsPublic
from api.models.power import PowerPlanPublic
from tests.api.conftest import ADMIN, SPEC

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

ROUTE_FIELDS = {
    "/v1/experiments": list(SPEC),
    "/v1/experiments/hello/assign": ["recipient_id", "context"],
    "/v1/experiments/hello/assign/batch": ["recipients"],
    "/v1/experiments/hello/preview": ["recipients"],
    "/v1/outcomes": ["events", "event_id", "decision_id", "type", "value", "timestamp"],
    "/v1/power/rate": ["baseline", "mde", "relative", "alpha", "power", "arms", "ratio", "daily"],
    "/v1/power/mean": ["sd", "mde", "baseline_mean", "alternative", "correction", "method", "values",
                       "summary"],
    "/v1/power/rate/mde": ["baseline", "n_per_arm", "power", "alpha", "arms", "ratio", "direction"],
    "/v1/power/rate/power": ["baseline", "mde", "relative", "n_per_arm", "alpha", "method"],
    "/v1/power/rate/curve": ["baseline", "mde", "n_per_arm", "over", "x", "points", "power"],
    "/v1/power/mean/mde": ["sd", "values", "summary", "n_per_arm", "power", "direction"],
    "/v1/power/mean/power": ["sd", "values", "summary", "baseline_mean", "mde", "relative", "n_per_arm"],
    "/v1/power/mean/curve": ["sd", "values", "mde", "n_per_arm", "over", "x", "points"],
    "/v1/power/test-then-send": ["list_size", "baseline", "lift", "relative", "rates", "prior_sd", "arms"],
    "/v1/power/sequential": ["design", "alpha", "power", "looks", "mixing_ratio", "replications", "fixed_n",
                             "seed"],
    "/v1/power/bandit": ["rates", "horizon", "batches", "replications", "n_draws", "seed"],
}
SUCCESS_MODEL = {
    "/v1/experiments": ExperimentCreated,
    "/v1/experiments/hello/assign": DecisionPublic,
    "/v1/experiments/hello/assign/batch": BatchDecisions,
    "/v1/experiments/hello/preview": PreviewsPublic,
    "/v1/outcomes": OutcomeCountsPublic,
    "/v1/power/rate": PowerPlanPublic,
    "/v1/power/mean": PowerPlanPublic,
    "/v1/power/rate/mde": RateAnswer,
    "/v1/power/rate/power": RateAnswer,
    "/v1/power/rate/curve": PowerCurve,
    "/v1/power/mean/mde": MeanAnswer,
    "/v1/power/mean/power": MeanAnswer,
    "/v1/power/mean/curve": PowerCurve,
    "/v1/power/test-then-send": TestThenSendPlan,
    "/v1/power/sequential": SequentialInflation,
    "/v1/power/bandit": BanditPlan,
}


def near_miss(fields: list[str]):
    """Dicts keyed by the route's own fields with arbitrary values (past the 'unknown field' check)."""
    return st.dictionaries(st.sampled_from(fields), json_values, max_size=len(fields))


@pytest.mark.parametrize("path", list(ROUTE_FIELDS))
def test_no_500_for_any_json_body(client, experiment, path):
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=json_values | near_miss(ROUTE_FIELDS[path]))
    def check(body):
        response = client.post(path, json=body, headers=ADMIN)
        assert response.status_code < 500, (body, response.text)
        if response.status_code == 422:
            ValidationErrorBody.model_validate(response.json())
        elif response.status_code >= 400:
            MessageBody.model_validate(response.json())
        else:
            TypeAdapter(SUCCESS_MODEL[path]).validate_python(response.json())

    check()
