"""Reward models for DM and DR, against statsmodels and numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from simulations.data import LoggedData, SimulationInputError
from simulations.reward_model import ContextEncoder, fit_reward_model


def _binary_log(n: int, seed: int) -> tuple[LoggedData, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    a = rng.integers(0, 3, n)
    p = 1 / (1 + np.exp(-(x[:, 0] * (a - 1) + 0.3 * a - 1)))
    r = (rng.random(n) < p).astype(float)
    return LoggedData(x, a, r, np.full(n, 1 / 3), ("a", "b", "c")), x


def test_unpenalised_logistic_model_matches_statsmodels_logit():
    data, x = _binary_log(3000, 0)
    model = fit_reward_model(data, kind="logistic", l2=0.0)
    got = model.predict(x[:50])
    for a in range(3):
        rows = data.actions == a
        fit = sm.Logit(data.rewards[rows], sm.add_constant(x[rows])).fit(disp=0)
        np.testing.assert_allclose(got[:, a], fit.predict(sm.add_constant(x[:50])), atol=1e-7)


def test_unpenalised_linear_model_matches_least_squares_on_mappings():
    rng = np.random.default_rng(1)
    n = 500
    device = rng.choice(["ios", "android", "web"], n)
    recency = rng.exponential(10, n)
    a = rng.integers(0, 2, n)
    r = 2.0 + 0.1 * recency * a + (device == "ios") * 1.5 + rng.standard_normal(n)
    contexts = [{"device": str(d), "recency": float(v)} for d, v in zip(device, recency, strict=True)]
    data = LoggedData(contexts, a, r, np.full(n, 0.5), ("x", "y"))
    model = fit_reward_model(data, l2=0.0)
    got = model.predict(contexts)
    design = np.column_stack([np.ones(n), recency, device == "android", device == "ios"]).astype(float)
    for arm in range(2):
        rows = a == arm
        beta, *_ = np.linalg.lstsq(design[rows], r[rows], rcond=None)
        np.testing.assert_allclose(got[:, arm], design @ beta, atol=1e-8)


def test_vw_model_learns_the_variant_by_feature_interaction():
    data, x = _binary_log(4000, 2)
    predictions = fit_reward_model(data, kind="vw", vw_passes=3).predict(x[:400])
    truth = 1 / (1 + np.exp(-(x[:400, :1] * (np.arange(3) - 1) + 0.3 * np.arange(3) - 1)))
    assert np.corrcoef(predictions.ravel(), truth.ravel())[0, 1] > 0.9


def test_encoder_ignores_unseen_categories():
    encoder = ContextEncoder.fit([{"d": "ios", "v": 1.0}, {"d": "web", "v": 3.0}])
    out = encoder.transform([{"d": "tv", "v": 2.0}])
    np.testing.assert_array_equal(out, [[1.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "forest"}, "kind: unknown reward model 'forest'"),
        ({"l2": -1.0}, "l2: must be non-negative"),
    ],
)
def test_bad_reward_model_options(kwargs, message):
    data, _ = _binary_log(20, 3)
    with pytest.raises(SimulationInputError, match=message):
        fit_reward_model(data, **kwargs)


def test_logistic_needs_binary_rewards():
    rewards = np.array([0.0, 2.0, 1.0])
    data = LoggedData(np.zeros((3, 0)), np.array([0, 1, 0]), rewards, np.ones(3), ("a", "b"))
    with pytest.raises(SimulationInputError, match="kind: logistic needs rewards that are all 0 or 1"):
        fit_reward_model(data, kind="logistic")
