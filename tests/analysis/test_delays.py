"""Delay distributions from censored (send, event) pairs, and the weights of delay-aware learning."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.duration.survfunc import SurvfuncRight

from analysis.delays import (
    ExponentialDelay,
    KaplanMeierDelay,
    LognormalDelay,
    arrival_weights,
    exponential_log_likelihood,
    fit_delay_model,
    fit_exponential_delay,
    fit_kaplan_meier_delay,
    fit_lognormal_delay,
)
from analysis.errors import AnalysisInputError


def _censored_log(rng, n, p, mean_hours, window, now_max):
    """Decisions sent uniformly over the last ``now_max`` hours; an event with probability p after an
    exponential delay; what is seen now."""
    age = rng.uniform(0, now_max, n)
    has = rng.random(n) < p
    delay = rng.exponential(mean_hours, n)
    follow = np.minimum(age, window)
    seen = has & (delay <= follow)
    return np.where(seen, delay, follow), seen


def test_fit_reaches_the_maximum_likelihood_found_by_a_derivative_free_optimiser():
    elapsed, seen = _censored_log(np.random.default_rng(1), 4000, 0.3, 20.0, 72.0, 100.0)
    fit = fit_exponential_delay(elapsed, seen, 72.0)

    def negative(theta):
        return -exponential_log_likelihood(np.exp(theta[0]), 1 / (1 + np.exp(-theta[1])), elapsed, seen)

    best = optimize.minimize(negative, x0=[np.log(0.1), 0.0], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    assert fit.rate_per_hour == pytest.approx(np.exp(best.x[0]), rel=1e-4)
    assert fit.event_probability == pytest.approx(1 / (1 + np.exp(-best.x[1])), rel=1e-4)
    mine = exponential_log_likelihood(fit.rate_per_hour, fit.event_probability, elapsed, seen)
    assert -best.fun <= mine + 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_fit_recovers_the_generating_parameters(seed):
    # 20,000 decisions, 40% of them censored early: the MLE's standard errors are a few percent
    elapsed, seen = _censored_log(np.random.default_rng(seed), 20_000, 0.2, 30.0, 168.0, 200.0)
    fit = fit_exponential_delay(elapsed, seen, 168.0)
    assert fit.mean_hours == pytest.approx(30.0, rel=0.08)
    assert fit.event_probability == pytest.approx(0.2, rel=0.06)


def test_exponential_cdf_is_conditional_on_the_window():
    model = ExponentialDelay(rate_per_hour=1 / 24, event_probability=0.1, window_hours=72.0)
    # closed form: (1 - exp(-t/24)) / (1 - exp(-3))
    np.testing.assert_allclose(model.cdf([0, 24, 72, 500]),
                               [0, (1 - np.exp(-1)) / (1 - np.exp(-3)), 1, 1])


def test_kaplan_meier_matches_statsmodels():
    rng = np.random.default_rng(3)
    elapsed, seen = _censored_log(rng, 3000, 0.4, 10.0, 48.0, 60.0)
    elapsed = np.round(elapsed, 1)  # ties between events and censorings
    fit = fit_kaplan_meier_delay(elapsed, seen, 48.0)
    reference = SurvfuncRight(elapsed, seen.astype(int))
    np.testing.assert_allclose(fit.event_hours, reference.surv_times)
    np.testing.assert_allclose(fit.survival, reference.surv_prob, rtol=1e-12)
    grid = np.linspace(0, 60, 61)
    expected = np.array([1.0 if t < reference.surv_times[0] else
                         reference.surv_prob[np.searchsorted(reference.surv_times, t, side="right") - 1]
                         for t in grid])
    np.testing.assert_allclose(fit.survival_at(grid), expected)


def test_kaplan_meier_without_early_censoring_is_the_empirical_cdf_of_the_delays():
    # every decision followed for the whole window: F is the share of events with delay <= t
    delays = np.array([1.0, 2.0, 2.0, 5.0, 9.0])
    elapsed = np.concatenate([delays, np.full(15, 10.0)])
    seen = np.arange(20) < 5
    fit = fit_kaplan_meier_delay(elapsed, seen, 10.0)
    np.testing.assert_allclose(fit.cdf([0.5, 1, 2, 4, 5, 9, 10]), [0, 0.2, 0.6, 0.6, 0.8, 1, 1])
    assert fit.event_share == pytest.approx(0.25)


def test_both_estimates_agree_on_exponential_delays():
    elapsed, seen = _censored_log(np.random.default_rng(4), 20_000, 0.3, 12.0, 72.0, 150.0)
    exponential = fit_exponential_delay(elapsed, seen, 72.0)
    nonparametric = fit_kaplan_meier_delay(elapsed, seen, 72.0)
    grid = np.array([3.0, 6.0, 12.0, 24.0, 48.0])
    np.testing.assert_allclose(nonparametric.cdf(grid), exponential.cdf(grid), atol=0.02)
    truth = -np.expm1(-grid / 12) / -np.expm1(-72 / 12)
    np.testing.assert_allclose(exponential.cdf(grid), truth, atol=0.02)


def test_arrival_weights():
    model = ExponentialDelay(rate_per_hour=1 / 24, event_probability=0.1, window_hours=72.0)
    weights = arrival_weights(np.array([0.0, 24.0, 24.0, 72.0, 100.0]),
                              np.array([False, False, True, False, False]), model)
    np.testing.assert_allclose(weights, [0.0, (1 - np.exp(-1)) / (1 - np.exp(-3)), 1.0, 1.0, 1.0])


@pytest.mark.parametrize(("elapsed", "seen", "window", "message"), [
    ([1.0, 2.0], [True, False], 0.0, "window_hours: must be a positive"),
    ([1.0, 2.0], [True], 10.0, "one length"),
    ([1.0, -2.0], [True, False], 10.0, "elapsed_hours: must be finite and >= 0"),
    ([1.0, np.nan], [True, False], 10.0, "elapsed_hours: must be finite"),
    ([1.0, 2.0], [1, 0], 10.0, "observed: expected booleans"),
    ([11.0, 2.0], [True, False], 10.0, "arrived after window_hours"),
    ([1.0, 2.0], [False, False], 10.0, "no event has arrived yet"),
])
@pytest.mark.parametrize("fit", [fit_exponential_delay, fit_kaplan_meier_delay])
def test_bad_input(fit, elapsed, seen, window, message):
    with pytest.raises(AnalysisInputError, match=message):
        fit(np.array(elapsed), np.array(seen), window)


@pytest.mark.parametrize("seed", range(3))
def test_lognormal_fit_recovers_the_generating_parameters(seed):
    rng = np.random.default_rng(seed)
    n, window = 20_000, 168.0
    age = rng.uniform(0, 250, n)
    has = rng.random(n) < 0.1
    delay = 60 * np.exp(0.5 * rng.standard_normal(n))
    follow = np.minimum(age, window)
    seen = has & (delay <= follow)
    fit = fit_lognormal_delay(np.where(seen, delay, follow), seen, window)
    assert fit.median_hours == pytest.approx(60, rel=0.05)
    assert fit.sigma == pytest.approx(0.5, rel=0.08)
    assert fit.event_probability == pytest.approx(0.1, rel=0.08)
    # F is the lognormal CDF renormalised to the window (scipy.stats.lognorm as the reference)
    reference = stats.lognorm(s=fit.sigma, scale=fit.median_hours)
    expected = [reference.cdf(24) / reference.cdf(168), reference.cdf(60) / reference.cdf(168), 1.0]
    np.testing.assert_allclose(fit.cdf([24.0, 60.0, 200.0]), expected)


def test_fit_delay_model_fits_the_kind_asked_or_the_exponential_where_it_cannot():
    elapsed, seen = _censored_log(np.random.default_rng(2), 3000, 0.3, 10.0, 48.0, 100.0)
    assert isinstance(fit_delay_model(elapsed, seen, 48.0, "exponential"), ExponentialDelay)
    assert isinstance(fit_delay_model(elapsed, seen, 48.0, "lognormal"), LognormalDelay)
    km = fit_delay_model(elapsed, seen, 48.0, "kaplan_meier")
    assert isinstance(km, KaplanMeierDelay) and km.followed_hours == 48.0
    # nobody followed for the whole window yet: Kaplan-Meier cannot tell the events still to come
    young = elapsed < 30
    assert isinstance(fit_delay_model(elapsed[young], seen[young], 48.0, "kaplan_meier"), ExponentialDelay)
    # a delay of 0 hours has no lognormal density
    zero = np.where(np.arange(elapsed.size) == np.flatnonzero(seen)[0], 0.0, elapsed)
    assert isinstance(fit_delay_model(zero, seen, 48.0, "lognormal"), ExponentialDelay)
    with pytest.raises(AnalysisInputError, match="kind: expected one of"):
        fit_delay_model(elapsed, seen, 48.0, "weibull")


def test_lognormal_fit_reaches_the_maximum_of_the_likelihood_written_with_scipy():
    rng = np.random.default_rng(8)
    age = rng.uniform(0, 200, 5000)
    delay = 30 * np.exp(0.7 * rng.standard_normal(5000))
    seen = (rng.random(5000) < 0.2) & (delay <= np.minimum(age, 168.0))
    elapsed = np.where(seen, delay, np.minimum(age, 168.0))
    fit = fit_lognormal_delay(elapsed, seen, 168.0)

    def negative(theta):
        law, p = stats.lognorm(s=np.exp(theta[1]), scale=np.exp(theta[0])), 1 / (1 + np.exp(-theta[2]))
        observed = np.sum(np.log(p) + law.logpdf(elapsed[seen]))
        return -(observed + np.sum(np.log1p(-p * law.cdf(elapsed[~seen]))))

    best = optimize.minimize(negative, x0=[np.log(50.0), 0.0, 0.0], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    assert fit.median_hours == pytest.approx(np.exp(best.x[0]), rel=1e-4)
    assert fit.sigma == pytest.approx(np.exp(best.x[1]), rel=1e-4)
    assert fit.event_probability == pytest.approx(1 / (1 + np.exp(-best.x[2])), rel=1e-4)
