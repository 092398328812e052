"""The mixture SPRT against its closed form, and its error rate under daily peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis.errors import AnalysisInputError
from analysis.sequential import mixing_variance, msprt, running_p_values
from analysis.significance import two_proportion_ztest
from analysis.stats import ProportionStats


def test_p_value_is_the_inverse_mixture_likelihood_ratio() -> None:
    a, b = ProportionStats(5000, 500), ProportionStats(5000, 580)
    r = msprt(a, b, alpha=0.05, tuning_n=10_000, n_total=10_000)
    v = a.variance_of_mean + b.variance_of_mean
    est = b.mean - a.mean
    # Lambda = (normal density of the estimate under the N(0, tau^2) mixture) / (density under theta = 0)
    ratio = sps.norm.pdf(est, 0, math.sqrt(v + r.tau_squared)) / sps.norm.pdf(est, 0, math.sqrt(v))
    assert r.p_value == pytest.approx(min(1.0, 1 / ratio), rel=1e-9)
    # each end theta of the confidence sequence is where the mixture ratio against theta equals 1 / alpha
    for end in r.ci:
        d = est - end
        at_end = sps.norm.pdf(d, 0, math.sqrt(v + r.tau_squared)) / sps.norm.pdf(d, 0, math.sqrt(v))
        assert 1 / at_end == pytest.approx(0.05, rel=1e-7)
    assert r.rejected == (r.p_value < 0.05)
    assert "as often as you like" in r.stopping_rule


def test_mixing_variance_formula() -> None:
    # Howard et al. (2021): rho^2 = (-2 log a + log(1 - 2 log a)) / n*, tau^2 = rho^2 sigma^2
    log_term = -2 * math.log(0.05)
    assert mixing_variance(2.0, 5000, 0.05) == pytest.approx(2.0 * (log_term + math.log(1 + log_term)) / 5000)


def test_an_exact_difference_is_rejected_at_once() -> None:
    # no spread in either arm (nobody clicks in one, everybody in the other): p = 0 and a point sequence,
    # the limit of arms that almost have no spread
    r = msprt(ProportionStats(30, 0), ProportionStats(28, 28), n_total=58)
    assert (r.p_value, r.ci, r.rejected) == (0.0, (1.0, 1.0), True)
    near = msprt(ProportionStats(3000, 1), ProportionStats(3000, 2999), n_total=6000)
    assert near.p_value < 1e-100 and near.ci[1] - near.ci[0] < 0.01
    assert msprt(ProportionStats(30, 0), ProportionStats(28, 0), n_total=58).p_value == 1.0


def test_flipping_the_arms_mirrors_the_result() -> None:
    a, b = ProportionStats(3000, 300), ProportionStats(3000, 350)
    f, g = msprt(a, b, n_total=6000), msprt(b, a, n_total=6000)
    assert f.p_value == pytest.approx(g.p_value)
    assert f.ci == pytest.approx((-g.ci[1], -g.ci[0]))


def test_sequential_test_holds_alpha_under_daily_peeking_and_naive_z_does_not() -> None:
    # 2,000 A/A experiments, each looked at after every one of 20 daily batches of 400 units per arm.
    rng = np.random.default_rng(77)
    runs, looks, batch, rate = 2000, 20, 400, 0.1
    xa = np.cumsum(rng.binomial(batch, rate, (runs, looks)), axis=1)
    xb = np.cumsum(rng.binomial(batch, rate, (runs, looks)), axis=1)
    ever_seq = np.zeros(runs, bool)
    ever_naive = np.zeros(runs, bool)
    for t in range(looks):
        n = batch * (t + 1)
        for i in range(runs):
            a, b = ProportionStats(n, int(xa[i, t])), ProportionStats(n, int(xb[i, t]))
            ever_seq[i] |= msprt(a, b, alpha=0.05, tuning_n=8000, n_total=2 * n).rejected
            ever_naive[i] |= two_proportion_ztest(a, b).p_value < 0.05
    assert ever_seq.mean() <= 0.05
    assert ever_naive.mean() > 0.15  # repeated fixed-horizon tests: several times alpha


def test_sequential_test_detects_a_real_effect() -> None:
    rng = np.random.default_rng(78)
    n = 20_000
    hits = [msprt(ProportionStats(n, int(a)), ProportionStats(n, int(b)), n_total=2 * n).rejected
            for a, b in zip(rng.binomial(n, 0.10, 200), rng.binomial(n, 0.115, 200), strict=True)]
    assert np.mean(hits) > 0.8


def test_running_p_values_and_bad_inputs() -> None:
    assert running_p_values([0.5, 0.2, 0.4, 0.1]) == pytest.approx([0.5, 0.2, 0.2, 0.1])
    with pytest.raises(AnalysisInputError, match="p_values"):
        running_p_values([0.5, 1.5])
    with pytest.raises(AnalysisInputError, match="tuning_n"):
        mixing_variance(1.0, 0, 0.05)
    with pytest.raises(AnalysisInputError, match="n_total"):
        msprt(ProportionStats(10, 1), ProportionStats(10, 2), n_total=0)
