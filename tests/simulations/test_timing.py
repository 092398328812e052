"""Scenarios in time: delayed conversions, a best variant that changes, and the drift monitor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import special, stats

from bandit import make_policy
from bandit.policy import PolicyError
from simulations.data import SimulationInputError
from simulations.scenario import load_scenario, scenario_from_mapping
from simulations.synthetic import draw_population, run_simulation
from simulations.timed_run import draw_delays, draw_events, run_timed

EXAMPLES = Path(__file__).resolve().parents[2] / "simulations" / "examples"
SEEDS = 10


@pytest.fixture(scope="module")
def delayed():
    scenario = load_scenario(EXAMPLES / "delayed_conversions.yaml")
    return scenario, run_simulation(scenario, ("waiting", "zero-imputed", "delay-aware"), seeds=SEEDS)


@pytest.fixture(scope="module")
def changing():
    scenario = load_scenario(EXAMPLES / "best_arm_changes.yaml")
    return scenario, run_simulation(scenario, ("stationary", "discounted"), seeds=SEEDS)


def test_delay_aware_learning_loses_less_to_regret(delayed):
    _, result = delayed
    regret = {run.policy: run.cumulative_regret[:, -1].mean() for run in result.runs}
    # waiting learns nothing before the 8th send; delay-aware learning from the 2nd
    assert regret["delay-aware"] <= 0.75 * regret["waiting"]
    assert regret["delay-aware"] <= regret["zero-imputed"]


def _standardised_errors(scenario, run):
    """(posterior mean - truth) / posterior sd for every seed and variant, and the 95% coverage."""
    truth = scenario.rates_at(1)[0] * scenario.timing.in_window
    alpha, beta = run.posterior[:, 0], run.posterior[:, 1]
    mean = alpha / (alpha + beta)
    sd = np.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
    low, high = stats.beta.ppf(0.025, alpha, beta), stats.beta.ppf(0.975, alpha, beta)
    return ((mean - truth) / sd).ravel(), float(np.mean((low <= truth) & (truth <= high)))


def test_delay_aware_final_estimates_are_unbiased(delayed):
    scenario, result = delayed
    errors, coverage = _standardised_errors(scenario, result.run("delay-aware"))
    # 30 estimates (10 seeds x 3 variants): their mean error within 3 standard errors of 0, and the
    # 95% intervals cover the truth in all but a few (binomial: at least 24 of 30 has p > 0.99)
    assert abs(errors.mean()) < 3 / np.sqrt(errors.size)
    assert coverage >= 0.8
    # the same check catches the bias of zero-imputation (the last week's sends count as failures)
    zero_errors, _ = _standardised_errors(scenario, result.run("zero-imputed"))
    assert zero_errors.mean() < -3 / np.sqrt(zero_errors.size)


def test_truth_in_the_window_is_the_lognormal_cdf(delayed):
    scenario, _ = delayed
    # P(delay <= 168 h) for a lognormal of median 60 h and sigma 0.5
    assert scenario.timing.in_window == pytest.approx(special.ndtr(np.log(168 / 60) / 0.5))


def _share_to(run, variant, send):
    traffic = run.send_traffic[:, send - 1]
    return traffic[:, variant] / traffic.sum(axis=1)


def test_discounting_follows_the_new_best_variant(changing):
    scenario, result = changing
    urgent = scenario.variants.index("urgent")
    discounted, stationary = result.run("discounted"), result.run("stationary")
    # by the third send from the change (sends 10, 11, 12) most traffic goes to the new best
    assert np.mean(_share_to(discounted, urgent, 12)) > 0.5
    assert np.mean(_share_to(discounted, urgent, 12) > 0.5) >= 0.8
    assert np.all(_share_to(stationary, urgent, 12) < 0.1)
    assert discounted.cumulative_regret[:, -1].mean() < stationary.cumulative_regret[:, -1].mean()


def test_drift_alert_fires_within_two_sends_of_the_change(changing):
    _, result = changing
    stationary = result.run("stationary")
    # the monitor flags the send whose outcomes tripped it: the 10th or 11th, never one before
    first = [report.first_alarm_day for report in stationary.drift]
    assert all(day in (10, 11) for day in first), first
    for report in stationary.drift:
        before = [p for p in report.points if p.day < 10]
        assert before and not any(p.alarm for p in before)


@pytest.mark.parametrize("policy", ["stationary", "discounted"])
def test_stationary_scenario_keeps_the_false_alarm_rate(policy):
    # the second example without its change, 500 recipients a send, over 200 seeds (0 to 199)
    raw = yaml.safe_load((EXAMPLES / "best_arm_changes.yaml").read_text())
    raw.pop("drift")
    raw["waves"]["recipients"] = 500
    raw["policies"][policy]["options"] = {**raw["policies"][policy].get("options", {}), "n_draws": 1000}
    scenario = scenario_from_mapping(raw)
    alerts = run_simulation(scenario, (policy,), seeds=200).run(policy).drift_alerts
    # at most 5% of the runs raise an alert (calibrated for 90 days, so 14 sends raise fewer; the
    # calibration itself is checked over thousands of seeded runs in tests/analysis/test_drift.py)
    assert alerts.size == 200 and alerts.sum() <= 10


def test_timed_results_are_json_ready(changing):
    _, result = changing
    out = json.loads(json.dumps(result.to_dict()))
    policy = out["policies"][0]
    assert policy["drift_alert_share"] == 1.0
    assert policy["drift"][0]["detector"].startswith("two-sided CUSUM")
    assert len(policy["send_traffic"][0]) == 14


def test_linear_drift_moves_rates_between_its_sends():
    scenario = scenario_from_mapping({
        "variants": ["a", "b"],
        "segments": [{"name": "s", "share": 0.5, "rates": {"a": 0.1, "b": 0.2}},
                     {"name": "t", "share": 0.5, "rates": {"a": 0.3, "b": 0.2}}],
        "waves": {"count": 5, "recipients": 10},
        "drift": [{"from_send": 2, "to_send": 4, "segment": "s", "rates": {"a": 0.3}},
                  {"at_send": 5, "rates": {"b": 0.0}}],
    })
    np.testing.assert_allclose(scenario.rates_at(1), [[0.1, 0.2], [0.3, 0.2]])
    np.testing.assert_allclose(scenario.rates_at(3), [[0.2, 0.2], [0.3, 0.2]])
    np.testing.assert_allclose(scenario.rates_at(4), [[0.3, 0.2], [0.3, 0.2]])
    np.testing.assert_allclose(scenario.rates_at(5), [[0.3, 0.0], [0.3, 0.0]])


_BASE = {
    "variants": ["a", "b"],
    "segments": [{"name": "s", "share": 1.0, "rates": {"a": 0.1, "b": 0.2}}],
    "waves": {"count": 3, "recipients": 10},
}
_TIMING = {"delays": {"click": {"type": "exponential", "mean_hours": 5}}}
_TWO_EVENTS = {"delays": {"click": _TIMING["delays"]["click"], "open": _TIMING["delays"]["click"]},
               "reward_event": "click"}


@pytest.mark.parametrize(("extra", "message"), [
    ({"timing": {"delays": {"click": {"type": "gamma", "shape": 2}}}}, "timing.delays.click"),
    ({"timing": {"delays": {"click": {"type": "exponential", "mean_hours": -1}}}}, "mean_hours"),
    ({"timing": {"delays": {"click": {"type": "uniform", "low_hours": 5, "high_hours": 2}}}},
     "low_hours .5.0. must be below high_hours"),
    ({"timing": {**_TIMING, "reward_event": "conversion"}}, "reward_event: 'conversion' has no delay"),
    ({"timing": {"delays": {"click": _TIMING["delays"]["click"], "open": _TIMING["delays"]["click"]}}},
     "reward_event: name which of"),
    ({"timing": {**_TIMING, "reward_event": "click", "delays": {
        "click": _TIMING["delays"]["click"], "open": _TIMING["delays"]["click"]}}},
     r"event_rates: give the rates of \['open'\] \(events besides the reward, click\)"),
    ({"timing": {**_TIMING, "event_rates": {"click": {"a": 0.1, "b": 0.1}}}},
     r"event_rates: \['click'\] must be events of delays other than the reward"),
    ({"timing": {**_TWO_EVENTS, "event_rates": {"open": {"a": 0.1}}}},
     r"timing.event_rates.open: give a rate for each variant \(unknown \[\], missing \['b'\]\)"),
    ({"timing": {**_TWO_EVENTS, "event_rates": {"open": {"a": 0.1, "b": 0.1, "c": 0.1}}}},
     r"unknown \['c'\], missing \[\]"),
    ({"timing": {**_TWO_EVENTS, "event_rates": {"open": {"a": 0.1, "b": 1.5}}}}, "event_rates: must be in"),
    ({"timing": _TIMING, "waves": {"count": 3, "recipients": 10, "delay": 1}}, "waves.delay: with timing"),
    ({"timing": {**_TIMING, "windows_hours": 5}}, "timing.windows_hours: Extra inputs"),
    ({"drift": [{"at_send": 2, "rates": {"c": 0.1}}]}, r"drift\[0\].rates: unknown variants \['c'\]"),
    ({"drift": [{"at_send": 2, "segment": "x", "rates": {"a": 0.1}}]}, "drift.0..segment: unknown segment"),
    ({"drift": [{"at_send": 2, "from_send": 1, "rates": {"a": 0.1}}]}, "give either at_send"),
    ({"drift": [{"from_send": 3, "to_send": 2, "rates": {"a": 0.1}}]}, "from_send before to_send"),
    ({"drift": [{"at_send": 2, "rates": {"a": 1.5}}]}, "rates: must be in"),
    ({"policies": {"p": {"policy": "thompson", "delays": "model"}}}, "policies.p.delays: 'model' needs"),
    ({"policies": {"p": {"policy": "thompson", "delays": "later"}}}, "policies.p.delays"),
    ({"monitor": {"false_alarm_rate": 0}}, "monitor.false_alarm_rate"),
])
def test_bad_scenarios_give_one_readable_error(extra, message):
    with pytest.raises(SimulationInputError, match=message) as caught:
        scenario_from_mapping({**_BASE, **extra})
    assert "\n" not in str(caught.value)


def test_learning_early_needs_a_policy_that_can_revise():
    scenario = scenario_from_mapping({
        **_BASE, "timing": _TIMING,
        "policies": {"vw": {"policy": "vw", "delays": "zero"}},
    })
    with pytest.raises(SimulationInputError, match="delays 'zero' learns a decision before its outcome"):
        run_simulation(scenario, ("vw",), seeds=1)


def test_named_policies_take_command_line_options_on_top():
    named = {"p": {"policy": "thompson", "options": {"discount": 0.5}}}
    scenario = scenario_from_mapping({**_BASE, "timing": _TIMING, "policies": named})
    with pytest.raises(PolicyError, match=r"options.discount: must lie in \(0, 1\]"):
        run_simulation(scenario, ("p",), seeds=1, policy_options={"p": {"discount": 2.0}})


def test_clicks_arrive_with_their_declared_delays_and_rates():
    # one seed of the first example: every click within the window, against its exponential (mean 3 h)
    scenario = load_scenario(EXAMPLES / "delayed_conversions.yaml")
    sizes = scenario.waves.wave_sizes
    rng = np.random.default_rng([0, 0])
    waves = [draw_population(scenario, n, rng, send) for send, n in enumerate(sizes, start=1)]
    delays = draw_delays(scenario, sizes, rng)
    events = draw_events(scenario, sizes, np.random.default_rng([0, 2]))
    policy = make_policy("thompson", len(scenario.variants), seed=0)
    run = run_timed(policy, scenario.policies["delay-aware"], scenario, waves, delays,
                    np.random.default_rng([0, 1]), events)
    hours = run.event_delays["click"]
    window = scenario.timing.window_hours
    assert hours.size == run.event_counts["click"].sum() and hours.max() <= window
    in_window = stats.expon.cdf(window, scale=3)  # 1 - e^-56: the window cuts nothing here
    test = stats.kstest(hours, lambda x: stats.expon.cdf(x, scale=3) / in_window)
    assert test.pvalue > 0.01, test
    assert abs(hours.mean() - 3) < 4 * 3 / np.sqrt(hours.size)
    # the count per send follows the click rate of the variant each recipient was sent
    rates = np.array([scenario.timing.event_rates["click"][v] for v in scenario.variants])
    expected = run.send_traffic @ rates
    sd = np.sqrt(run.send_traffic @ (rates * (1 - rates)))
    assert abs(run.event_counts["click"].sum() - expected.sum()) < 4 * np.sqrt(np.sum(sd ** 2))
    assert run.event_counts["click"].sum() > 2 * run.reward.sum()  # clicks are far more than conversions


def test_clicks_do_not_enter_the_reward():
    # the first example with and without its clicks: the same conversions, choices and posteriors
    raw = yaml.safe_load((EXAMPLES / "delayed_conversions.yaml").read_text())
    with_clicks = run_simulation(scenario_from_mapping(raw), ("zero-imputed", "delay-aware"), seeds=2)
    for key in ("reward_event", "event_rates"):
        raw["timing"].pop(key)
    raw["timing"]["delays"].pop("click")
    without = run_simulation(scenario_from_mapping(raw), ("zero-imputed", "delay-aware"), seeds=2)
    for name in ("zero-imputed", "delay-aware"):
        clicked, plain = with_clicks.run(name), without.run(name)
        np.testing.assert_array_equal(clicked.cumulative_reward, plain.cumulative_reward)
        np.testing.assert_array_equal(clicked.send_traffic, plain.send_traffic)
        np.testing.assert_array_equal(clicked.posterior, plain.posterior)
        assert clicked.event_counts["click"].sum() > 2 * clicked.cumulative_reward[:, -1].sum()
        assert plain.event_counts == {}
        assert "click" in with_clicks.to_dict()["policies"][0]["events"]
