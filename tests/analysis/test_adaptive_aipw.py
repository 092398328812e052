"""Cross-fitted adaptively weighted AIPW: an independent loop-by-loop reference, no leakage of a row into
its own prediction, and coverage of the true average effect under a targeting contextual policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.adaptive import estimate_arm_values
from analysis.adaptive_aipw import (
    DecisionRows,
    cross_fitted_predictions,
    estimate_arm_values_aipw,
    log_from_rows,
    rows_from_arrays,
)
from analysis.adaptive_comparisons import compare_to_control
from analysis.errors import AnalysisInputError
from tests.analysis.bandit_simulations import simulate_contextual_thompson
from tests.analysis.test_adaptive_calibration import CONTEXTUAL_RATES, SEGMENT_SHARES, TRUE_EFFECT


def _rows(seed: int, n_per_batch=(150, 250, 200)) -> DecisionRows:
    rng = np.random.default_rng(seed)
    parts = []
    for b, size in enumerate(n_per_batch):
        x = rng.normal(size=(size, 2))
        score = np.column_stack([np.zeros(size), x[:, 0] * (b - 1), -x[:, 1] + 0.3 * b])
        p = np.exp(score) / np.exp(score).sum(axis=1, keepdims=True)
        p = 0.05 + 0.85 * p
        a = (rng.uniform(size=size)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
        r = 1 + x[:, 0] * (a - 1) + 0.5 * x[:, 1] + rng.normal(size=size)
        parts.append((np.full(size, b), a, r, p[np.arange(size), a], x))
    batch, arm, reward, propensity, features = (np.concatenate(z) for z in zip(*parts, strict=True))
    return rows_from_arrays(["a", "b", "c"], batch, arm, reward, propensity, features)


def _reference(rows: DecisionRows, folds: int, ridge: float, seed: int):
    """Loop by loop: for each row, each arm's ridge fit on exactly the allowed training rows
    (np.linalg.solve on the explicit rows), the AIPW scores, Hadad et al.'s weighted mean with the
    stabilising batch weights, and the covariance from the influence values."""
    n, k = len(rows.reward), len(rows.arms)
    fold = np.random.default_rng(seed).integers(0, folds, size=n)
    x = np.column_stack([np.ones(n), rows.features])
    penalty = np.diag([1e-9] + [ridge + 1e-9] * rows.features.shape[1])
    fitted = {}
    predictions = np.zeros((n, k))
    for i in range(n):
        key = (rows.batch[i], fold[i])
        if key not in fitted:
            train = (rows.batch < key[0]) | ((rows.batch == key[0]) & (fold != key[1]))
            fitted[key] = [
                np.linalg.solve(x[train & (rows.arm == a)].T @ x[train & (rows.arm == a)] + penalty,
                                x[train & (rows.arm == a)].T @ rows.reward[train & (rows.arm == a)])
                for a in range(k)
            ]
        predictions[i] = [x[i] @ beta for beta in fitted[key]]
    gamma = predictions.copy()
    for i in range(n):
        a = rows.arm[i]
        gamma[i, a] += (rows.reward[i] - predictions[i, a]) / rows.propensity[i]
    h = np.zeros((n, k))
    for b in np.unique(rows.batch):
        in_b = rows.batch == b
        for a in range(k):
            h[in_b, a] = np.mean(np.where(rows.arm[in_b] == a, rows.propensity[in_b] ** -2.0, 0.0)) ** -0.5
    q = (h * gamma).sum(axis=0) / h.sum(axis=0)
    psi = h * (gamma - q) / h.sum(axis=0)
    return predictions, q, psi.T @ psi


def test_matches_the_loop_by_loop_reference() -> None:
    rows = _rows(1)
    predictions, q, covariance = _reference(rows, folds=4, ridge=2.0, seed=9)
    assert cross_fitted_predictions(rows, folds=4, ridge=2.0, seed=9) == pytest.approx(predictions, rel=1e-9,
                                                                                        abs=1e-12)
    estimates = estimate_arm_values_aipw(rows, folds=4, ridge=2.0, seed=9)
    assert estimates.estimates == pytest.approx(tuple(q), rel=1e-9)
    assert np.asarray(estimates.covariance) == pytest.approx(covariance, rel=1e-9, abs=1e-15)
    assert estimates.decisions == tuple(int((rows.arm == a).sum()) for a in range(3))
    # the IPW part's effective sample size is that of the sums path
    ipw = estimate_arm_values(log_from_rows(rows))
    assert estimates.effective_n == pytest.approx(ipw.effective_n, rel=1e-12)


def _with_rewards(rows: DecisionRows, reward: np.ndarray) -> DecisionRows:
    return rows_from_arrays(rows.arms, rows.batch, rows.arm, reward, rows.propensity, rows.features)


def test_a_row_never_informs_its_own_prediction() -> None:
    # Changing a row's reward, and every reward of later batches (whose allocation learned from it), leaves
    # that row's predictions unchanged; changing a row of an earlier batch does not.
    rows = _rows(2)
    before = cross_fitted_predictions(rows, seed=3)
    i = int(np.flatnonzero(rows.batch == 1)[7])
    changed = rows.reward.copy()
    changed[i] += 50.0
    changed[rows.batch == 2] -= 30.0
    after = cross_fitted_predictions(_with_rewards(rows, changed), seed=3)
    assert after[i] == pytest.approx(before[i], rel=1e-12)
    earlier = changed.copy()
    earlier[np.flatnonzero((rows.batch == 0) & (rows.arm == rows.arm[i]))[0]] += 50.0
    moved = cross_fitted_predictions(_with_rewards(rows, earlier), seed=3)
    assert not np.allclose(moved[i], before[i])


def test_contextual_policy_intervals_cover_the_true_average_effect_and_are_tighter() -> None:
    # The contextual scenario of test_adaptive_calibration, with the segment as the model's feature:
    # the 95% intervals of B - A cover the true -1.5 points in 93%-97% of 1,000 runs (Monte Carlo
    # standard error 0.007), and are narrower on average than the IPW intervals of the same runs.
    runs = 1_000
    sim = simulate_contextual_thompson(CONTEXTUAL_RATES, SEGMENT_SHARES, runs=runs, batches=6,
                                       batch_size=4_000, seed=20260106)
    rng = np.random.default_rng(1)
    covered = np.zeros(runs, bool)
    width = np.zeros((runs, 2))
    for r in range(runs):
        rows = sim.rows(r, rng)
        (aipw,) = compare_to_control(estimate_arm_values_aipw(rows, seed=r), "0")
        (ipw,) = compare_to_control(estimate_arm_values(sim.log(r), ddof=0), "0")
        covered[r] = aipw.absolute_ci[0] <= TRUE_EFFECT <= aipw.absolute_ci[1]
        width[r] = [np.diff(aipw.absolute_ci)[0], np.diff(ipw.absolute_ci)[0]]
    assert 0.93 <= covered.mean() <= 0.97, covered.mean()
    assert width[:, 0].mean() < width[:, 1].mean()


@pytest.mark.parametrize(("change", "message"), [
    ({"propensity": np.array([0.5, 0.0, 0.5])}, "propensity"),
    ({"arm": np.array([0, 3, 1])}, "arm: indices"),
    ({"batch": np.array([0, -1, 1])}, "batch: indices"),
    ({"reward": np.array([1.0, math.nan, 0.0])}, "reward: must be finite"),
    ({"features": np.zeros((2, 1))}, "features: shape"),
    ({"arms": ("a", "a", "b")}, "distinct"),
])
def test_bad_rows_are_refused(change: dict, message: str) -> None:
    base = dict(arms=("a", "b", "c"), batch=np.array([0, 0, 1]), arm=np.array([0, 1, 2]),
                reward=np.array([1.0, 0.0, 1.0]), propensity=np.array([0.5, 0.5, 0.5]),
                features=np.zeros((3, 1)))
    base.update(change)
    with pytest.raises(AnalysisInputError, match=message):
        DecisionRows(**base)


@pytest.mark.parametrize(("kwargs", "message"), [({"folds": 1}, "folds"), ({"ridge": -1.0}, "ridge")])
def test_bad_fitting_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        estimate_arm_values_aipw(_rows(3), **kwargs)
