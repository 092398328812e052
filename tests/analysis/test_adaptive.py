"""The adaptively weighted estimator against independent references: the fixed-split analysis on a fixed
split, and the row-level formulas of Hadad et al. (2021) on logged data (tolerance 1e-9: the same
numbers computed in a different order, so only rounding differs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from analysis.adaptive import (
    AS_ALLOCATED_NOTE,
    arm_values,
    batch_weights,
    covariance_of,
    estimate_arm_values,
    estimate_value,
    slot_targets,
    uniform_split,
)
from analysis.adaptive_comparisons import compare_to_control
from analysis.adaptive_log import ArmBatchSums, PolicyBatch
from analysis.errors import AnalysisInputError
from analysis.lift import absolute_lift, relative_lift
from analysis.results import ArmData, analyze_slot
from analysis.stats import SampleStats


def _rows(seed: int, contextual: bool):
    """A logged dataset: 3 batches, 3 arms, propensities varying per row when ``contextual``."""
    rng = np.random.default_rng(seed)
    batch, arm, reward, propensity = [], [], [], []
    for b, size in enumerate((400, 700, 900)):
        if contextual:
            x = rng.uniform(size=size)
            logits = np.column_stack([np.zeros(size), (b - 1) * 2 * x, 1.5 * (1 - x) - b * 0.5])
        else:
            logits = np.tile(rng.normal(size=3) * b, (size, 1))
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        p = 0.02 + 0.94 * p
        chosen = (rng.uniform(size=size)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
        batch += [b] * size
        arm += list(chosen)
        reward += list(rng.gamma(0.5, 4.0, size=size) * (rng.uniform(size=size) < 0.3))
        propensity += list(p[np.arange(size), chosen])
    return np.array(batch), np.array(arm), np.array(reward), np.array(propensity)


def _log(batch, arm, reward, propensity) -> list[PolicyBatch]:
    return [
        PolicyBatch(int(b), {
            str(a): ArmBatchSums.from_values(reward[cell], propensity[cell])
            for a in range(3) if (cell := (batch == b) & (arm == a)).any()
        })
        for b in np.unique(batch)
    ]


def _paper_estimate(batch, arm, reward, propensity, a: int, ddof: int) -> tuple[float, float]:
    """Hadad et al. (2021) eq. 6 row by row: Q = sum_t h_t Gamma_t / sum_t h_t with the AIPW score
    Gamma_t = m + [A_t = a] (r_t - m) / e_t, and m set to the estimate itself (the self-normalised form:
    found here by root finding, not by the closed form the module uses). h_t = the batch's
    (mean over its rows of [A = a] / e^2)^(-1/2). The variance is the sandwich sum_t h_t^2 (Gamma_t -
    Q)^2 / (sum_t h_t [A_t = a] / e_t)^2, times n_eff / (n_eff - ddof)."""
    h = np.zeros(len(reward))
    for b in np.unique(batch):
        rows = batch == b
        mean_inverse_square = np.mean(np.where(arm[rows] == a, 1 / propensity[rows] ** 2, 0.0))
        h[rows] = mean_inverse_square ** -0.5
    chosen = arm == a

    def gamma(m: float) -> np.ndarray:
        return m + np.where(chosen, (reward - m) / propensity, 0.0)

    q = optimize.brentq(lambda m: np.sum(h * gamma(m)) / np.sum(h) - m, -100, 100, xtol=1e-14, rtol=1e-15)
    normaliser = np.sum(h * chosen / propensity)
    variance = np.sum(h**2 * (gamma(q) - q) ** 2) / normaliser**2
    effective = normaliser**2 / np.sum((h * chosen / propensity) ** 2)
    return q, variance * effective / (effective - ddof)


@pytest.mark.parametrize("ddof", [0, 1])
def test_contextual_log_matches_the_row_level_formulas(ddof: int) -> None:
    data = _rows(7, contextual=True)
    estimates = estimate_arm_values(_log(*data), ddof=ddof)
    for a in range(3):
        q, v = _paper_estimate(*data, a, ddof)
        assert estimates.estimates[a] == pytest.approx(q, rel=1e-9)
        assert estimates.covariance[a][a] == pytest.approx(v, rel=1e-9)
    off_diagonal = np.asarray(estimates.covariance)[~np.eye(3, dtype=bool)]
    assert np.all(off_diagonal == 0)  # rows of different arms are disjoint


def test_constant_propensity_log_pools_the_variance_over_batches() -> None:
    # Non-contextual batches: the estimate is the paper's; the variance is the arm's residual variance over
    # all its rows, sum (r - Q)^2 / (n_a - ddof), divided by the effective sample size.
    batch, arm, reward, propensity = _rows(8, contextual=False)
    estimates = estimate_arm_values(_log(batch, arm, reward, propensity), ddof=1)
    for a in range(3):
        q, _ = _paper_estimate(batch, arm, reward, propensity, a, 1)
        chosen = arm == a
        h = np.zeros(len(reward))
        for b in np.unique(batch):
            rows = batch == b
            h[rows] = np.mean(np.where(chosen[rows], 1 / propensity[rows] ** 2, 0.0)) ** -0.5
        omega = h * chosen / propensity
        effective = omega.sum() ** 2 / np.sum(omega**2)
        residual = np.sum((reward[chosen] - q) ** 2) / (chosen.sum() - 1)
        assert estimates.estimates[a] == pytest.approx(q, rel=1e-9)
        assert estimates.effective_n[a] == pytest.approx(effective, rel=1e-9)
        assert estimates.covariance[a][a] == pytest.approx(residual / effective, rel=1e-9)


def test_non_contextual_estimate_is_the_batch_means_weighted_by_sqrt_n_b_n_ba() -> None:
    # Zhang, Janson & Murphy's batched form: with a constant propensity per batch, Q_a averages the
    # batches' arm means with weights sqrt(n_b n_{b,a}).
    batch, arm, reward, propensity = _rows(9, contextual=False)
    estimates = estimate_arm_values(_log(batch, arm, reward, propensity))
    for a in range(3):
        weights, means = [], []
        for b in np.unique(batch):
            rows = (batch == b) & (arm == a)
            weights.append(math.sqrt((batch == b).sum() * rows.sum()))
            means.append(reward[rows].mean())
        assert estimates.estimates[a] == pytest.approx(np.average(means, weights=weights), rel=1e-9)


def _fixed_split(seed: int):
    rng = np.random.default_rng(seed)
    shares = [0.5, 0.3, 0.2]
    n = rng.multinomial(20_000, shares)
    clicks = [rng.binomial(1, p, size=k).astype(float) for p, k in zip((0.10, 0.11, 0.125), n, strict=True)]
    revenue = [c * rng.gamma(2.0, 15.0, size=len(c)) for c in clicks]
    return shares, n, clicks, revenue


def test_fixed_split_equals_the_fixed_split_analysis() -> None:
    shares, n, clicks, revenue = _fixed_split(3)
    names = ["control", "b", "c"]
    arms = [
        ArmData(name, int(k), {"click": int(c.sum())}, SampleStats.from_values(v), share)
        for name, k, c, v, share in zip(names, n, clicks, revenue, shares, strict=True)
    ]
    reference = analyze_slot("subject", arms, "control", metrics=["click"], value_metric="revenue")

    def log(values):  # one batch: propensity constant (the intended share), no policy version
        return [PolicyBatch(None, {
            name: ArmBatchSums.from_constant_propensity(int(k), float(v.sum()), float(v @ v), share)
            for name, k, v, share in zip(names, n, values, shares, strict=True)
        })]

    rate = compare_to_control(estimate_arm_values(log(clicks), ddof=0), "control")
    value = compare_to_control(estimate_arm_values(log(revenue), ddof=1), "control")
    for adaptive in rate:
        fixed = reference.comparison(adaptive.variant, "click")
        assert adaptive.control_value == pytest.approx(fixed.control_mean, rel=1e-9)
        assert adaptive.variant_value == pytest.approx(fixed.variant_mean, rel=1e-9)
        assert adaptive.absolute_lift == pytest.approx(fixed.absolute_lift, rel=1e-9)
        assert adaptive.lift == pytest.approx(fixed.lift, rel=1e-9)
        # the adaptive intervals are normal ones (Wald, Fieller) on the estimates: on a fixed split, those
        # of the counts; the fixed split's rates get score intervals, their ends within 3% of the width
        control_counts, variant_counts = (next(a.rate("click") for a in arms if a.variant == name)
                                          for name in ("control", adaptive.variant))
        wald = absolute_lift(control_counts, variant_counts)
        fieller = relative_lift(control_counts, variant_counts)
        assert adaptive.absolute_ci == pytest.approx(wald.ci, rel=1e-9)
        assert adaptive.ci == pytest.approx(fieller.ci, rel=1e-9)
        assert adaptive.ci_method == fieller.method == "fieller" and fixed.ci_method == "score"
        for normal, score in ((adaptive.absolute_ci, fixed.absolute_ci), (adaptive.ci, fixed.ci)):
            assert normal == pytest.approx(score, abs=0.03 * (score[1] - score[0]))
        # the p-value is the Wald test's (unpooled variance): check it against its closed form
        a = [c for c, name in zip(clicks, names, strict=True) if name == "control"][0]
        b = [c for c, name in zip(clicks, names, strict=True) if name == adaptive.variant][0]
        se = math.sqrt(a.mean() * (1 - a.mean()) / len(a) + b.mean() * (1 - b.mean()) / len(b))
        assert adaptive.p_value == pytest.approx(2 * stats.norm.sf(abs(b.mean() - a.mean()) / se), rel=1e-9)
    for adaptive in value:
        fixed = reference.comparison(adaptive.variant, "revenue")
        assert adaptive.control_value == pytest.approx(fixed.control_mean, rel=1e-9)
        assert adaptive.variant_value == pytest.approx(fixed.variant_mean, rel=1e-9)
        assert adaptive.absolute_lift == pytest.approx(fixed.absolute_lift, rel=1e-9)
        # the fixed split uses Welch's t critical value, the adaptive one the normal's: same standard error
        variant, control = (next(a.value for a in arms if a.variant == name)
                            for name in (adaptive.variant, "control"))
        fixed_se = (fixed.absolute_ci[1] - fixed.absolute_ci[0]) / 2 / stats.t.isf(
            0.025, _welch_df(control, variant))
        adaptive_se = (adaptive.absolute_ci[1] - adaptive.absolute_ci[0]) / 2 / stats.norm.isf(0.025)
        assert adaptive_se == pytest.approx(fixed_se, rel=1e-9)


def _welch_df(a: SampleStats, b: SampleStats) -> float:
    va, vb = a.variance_of_mean, b.variance_of_mean
    return (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))


def test_value_of_a_target_policy_and_its_effective_sample_size() -> None:
    batch, arm, reward, propensity = _rows(10, contextual=True)
    estimates = estimate_arm_values(_log(batch, arm, reward, propensity))
    uniform = estimate_value(estimates, uniform_split(estimates.arms))
    q = np.asarray(estimates.estimates)
    v = np.diag(estimates.covariance)
    ess = np.asarray(estimates.effective_n)
    assert uniform.estimate == pytest.approx(q.mean(), rel=1e-12)
    assert uniform.std_error == pytest.approx(math.sqrt(v.sum()) / 3, rel=1e-12)
    assert uniform.effective_n == pytest.approx(9 / np.sum(1 / ess), rel=1e-12)
    assert uniform.ci == pytest.approx((q.mean() - 1.959964 * uniform.std_error,
                                        q.mean() + 1.959964 * uniform.std_error), rel=1e-6)
    assert uniform.decisions == len(reward)
    assert uniform.as_allocated_mean == pytest.approx(reward.mean(), rel=1e-12)
    # Kish's effective sample size of one arm is (sum of its row weights)^2 / sum of their squares
    h = batch_weights(_log(batch, arm, reward, propensity))
    omega = h[batch, arm] / propensity
    for a in range(3):
        assert ess[a] == pytest.approx(omega[arm == a].sum() ** 2 / np.sum(omega[arm == a] ** 2), rel=1e-12)


def test_arm_values_carry_the_as_allocated_mean_labelled() -> None:
    batch, arm, reward, propensity = _rows(11, contextual=True)
    values = arm_values(estimate_arm_values(_log(batch, arm, reward, propensity)))
    for a, value in enumerate(values):
        assert value.label == str(a)
        assert value.as_allocated_mean == pytest.approx(reward[arm == a].mean(), rel=1e-12)
        assert value.as_allocated_note == AS_ALLOCATED_NOTE
        assert value.decisions == int((arm == a).sum())


def test_slot_targets_average_the_other_slots() -> None:
    # Two slots (subject x cta), four combinations: "subject = urgent" is the mean of its two combinations,
    # and its covariance with "subject = plain" is 0 (disjoint combinations).
    combos = {f"{s}|{c}": {"subject": s, "cta": c} for s in ("plain", "urgent") for c in ("shop", "see")}
    rng = np.random.default_rng(4)
    clicks = rng.integers(40, 80, size=(2, 4)).astype(float)
    log = [PolicyBatch(b, {
        combo: ArmBatchSums.from_constant_propensity(500, clicks[b, j], clicks[b, j], 0.25)
        for j, combo in enumerate(combos)
    }) for b in range(2)]
    estimates = estimate_arm_values(log, ddof=0)
    targets = slot_targets(combos, "subject")
    assert targets == {"plain": {"plain|shop": 0.5, "plain|see": 0.5},
                       "urgent": {"urgent|shop": 0.5, "urgent|see": 0.5}}
    urgent = estimate_value(estimates, targets["urgent"])
    q = dict(zip(estimates.arms, estimates.estimates, strict=True))
    assert urgent.estimate == pytest.approx((q["urgent|shop"] + q["urgent|see"]) / 2, rel=1e-12)
    assert covariance_of(estimates, targets["urgent"], targets["plain"]) == 0
    (comparison,) = compare_to_control(estimates, "plain", targets=targets)
    assert comparison.variant == "urgent"
    plain = estimate_value(estimates, targets["plain"])
    assert comparison.absolute_lift == pytest.approx(urgent.estimate - plain.estimate)


def test_an_arm_without_decisions_has_no_estimate() -> None:
    log = [PolicyBatch(1, {"a": ArmBatchSums.from_constant_propensity(100, 10.0, 10.0, 0.5)})]
    estimates = estimate_arm_values(log, arms=["a", "b"])
    assert math.isnan(estimates.estimates[1]) and estimates.effective_n[1] == 0
    assert math.isnan(estimate_value(estimates, {"b": 1.0}).estimate)
    assert math.isnan(estimate_value(estimates, uniform_split(["a", "b"])).estimate)
    assert estimates.estimates[0] == pytest.approx(0.1)


def test_weights_may_be_numpy_numbers() -> None:
    batch, arm, reward, propensity = _rows(12, contextual=False)
    estimates = estimate_arm_values(_log(batch, arm, reward, propensity))
    plain = estimate_value(estimates, {"0": 0.5, "1": 0.5})
    numpy = estimate_value(estimates, {"0": np.float64(0.5), "1": np.float32(0.5)})
    assert numpy.estimate == plain.estimate and numpy.ci == plain.ci
    assert covariance_of(estimates, {"0": np.int64(1)}, {"0": 1.0}) == estimates.covariance[0][0]


TWO_ROWS = [PolicyBatch(1, {"a": ArmBatchSums.from_values([1.0, 0.0], [0.5, 0.5])})]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: estimate_arm_values([]), "non-empty sequence of PolicyBatch"),
    (lambda: estimate_arm_values(PolicyBatch(1, {})), "non-empty sequence of PolicyBatch"),
    (lambda: estimate_arm_values([PolicyBatch(1, {})]), "no decisions"),
    (lambda: estimate_arm_values([PolicyBatch(1, {"a": 3})]), "expected ArmBatchSums"),
    (lambda: estimate_arm_values([PolicyBatch(1, {"a": ArmBatchSums.from_values([1.0], [0.5])})] * 2),
     "policy version 1 appears twice"),
    (lambda: estimate_arm_values([PolicyBatch(1, {"a": ArmBatchSums.from_values([1.0], [0.5])})], arms=["b"]),
     "are not among arms"),
    (lambda: estimate_arm_values([PolicyBatch(1, {"a": ArmBatchSums.from_values([1.0], [0.5])})], ddof=2),
     "ddof"),
    (lambda: estimate_value(estimate_arm_values(TWO_ROWS), {"z": 1.0}), "'z' is not one of"),
    (lambda: estimate_value(estimate_arm_values(TWO_ROWS), {"a": math.nan}), "finite number"),
    (lambda: slot_targets({"x": {"s": "a"}}, "t"), "no variant for slot 't'"),
])
def test_bad_input_is_refused_with_the_field_named(call, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        call()
