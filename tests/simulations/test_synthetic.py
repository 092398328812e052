"""Synthetic runs through the real bandit code: populations, delays, regret, the A/B conclusion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special
from statsmodels.stats.proportion import proportions_ztest

from simulations.data import SimulationInputError
from simulations.scenario import Waves, scenario_from_mapping
from simulations.synthetic import draw_population, run_simulation


def _scenario(count: int = 6, recipients: int = 1000, delay: int = 1):
    return scenario_from_mapping(
        {
            "name": "small",
            "variants": ["plain", "urgent", "emoji"],
            "segments": [
                {
                    "name": "loyal",
                    "share": 0.3,
                    "features": {
                        "device": {"distribution": "categorical", "values": {"ios": 0.8, "web": 0.2}},
                        "recency": {"distribution": "uniform", "low": 0, "high": 10},
                    },
                    "rates": {"plain": 0.05, "urgent": 0.06, "emoji": 0.15},
                },
                {"name": "new", "share": 0.7, "rates": {"plain": 0.04, "urgent": 0.10, "emoji": 0.05}},
            ],
            "effects": [
                {"variant": "emoji", "feature": "device", "equals": "ios", "log_odds": 0.5},
                {"variant": "urgent", "feature": "recency", "per_unit": -0.05},
            ],
            "waves": {"count": count, "recipients": recipients, "delay": delay},
        }
    )


def test_population_follows_the_scenario():
    population = draw_population(_scenario(), 20_000, np.random.default_rng(0))
    loyal = population.segments == 0
    # segment share: binomial z-test at a strict |z| < 4 (PlanOut-style allocation check)
    z = (loyal.mean() - 0.3) / np.sqrt(0.3 * 0.7 / 20_000)
    assert abs(z) < 4
    contexts = population.contexts
    assert all(("device" in c) == (c["segment"] == "loyal") for c in contexts)
    ios = np.array([c.get("device") == "ios" for c in contexts])
    recency = np.array([c.get("recency", 0.0) for c in contexts])
    # the response model, written out: logit(rate) + effects, through the logistic function
    logit = special.logit
    np.testing.assert_allclose(population.probabilities[loyal & ios, 2], special.expit(logit(0.15) + 0.5))
    np.testing.assert_allclose(population.probabilities[loyal & ~ios, 2], 0.15)
    np.testing.assert_allclose(
        population.probabilities[loyal, 1], special.expit(logit(0.06) - 0.05 * recency[loyal])
    )
    new_rates = np.tile([0.04, 0.10, 0.05], ((~loyal).sum(), 1))
    np.testing.assert_allclose(population.probabilities[~loyal], new_rates)


def test_thompson_has_less_regret_than_ab_on_every_seed():
    result = run_simulation(_scenario(), ("ab", "thompson", "ucb"), seeds=3)
    ab, thompson = result.run("ab"), result.run("thompson")
    assert np.all(thompson.cumulative_regret[:, -1] < 0.8 * ab.cumulative_regret[:, -1])
    assert np.all(thompson.loser_share < ab.loser_share)
    # uniform allocation sends about 2/3 of the traffic to the two losing variants
    assert np.all(np.abs(ab.loser_share - 2 / 3) < 4 * np.sqrt(2 / 9 / 6000))
    # emoji: 0.3 * (0.8 * expit(logit(0.15) + 0.5) + 0.2 * 0.15) + 0.7 * 0.05 = 0.098, above
    # urgent: 0.3 * E[expit(logit(0.06) - 0.05 U(0, 10))] + 0.7 * 0.10 = 0.085 and plain: 0.043
    assert result.best_variant == ("emoji",) * 3
    # curves are cumulative and the traffic adds up to the sends
    assert np.all(np.diff(ab.cumulative_regret, axis=1) >= 0)
    assert np.all(ab.traffic.sum(axis=1) == 6000)


def test_same_seeds_give_the_same_result_and_json():
    first = run_simulation(_scenario(3, 300), ("ab", "thompson"), seeds=[4, 5])
    second = run_simulation(_scenario(3, 300), ("ab", "thompson"), seeds=[4, 5])
    assert json.dumps(first.to_dict()) == json.dumps(second.to_dict())
    assert first.to_dict()["policies"][1]["policy"] == "thompson"


def test_outcomes_that_arrive_after_the_last_wave_teach_nothing():
    # delay >= waves: Thompson never sees an outcome and keeps its symmetric prior: uniform traffic
    result = run_simulation(_scenario(count=4, recipients=3000, delay=4), ("thompson",), seeds=2)
    shares = result.run("thompson").traffic / 12_000
    assert np.all(np.abs(shares - 1 / 3) < 4 * np.sqrt(2 / 9 / 12_000))


def test_ab_conclusion_is_a_two_proportion_z_test_of_the_top_two_arms():
    result = run_simulation(_scenario(), ("ab",), seeds=2)
    run = result.run("ab")
    for s, conclusion in enumerate(result.ab_conclusions):
        rates = run.successes[s] / run.traffic[s]
        top = np.argsort(-rates)[:2]
        # reference: statsmodels' pooled two-proportion z-test
        _, p_value = proportions_ztest(run.successes[s][top], run.traffic[s][top])
        assert conclusion.p_value == pytest.approx(p_value, rel=1e-9)
        assert conclusion.winner == result.variants[top[0]]
        assert conclusion.significant == (p_value < 0.05)


def test_ramp_up_waves_are_sent_as_given():
    scenario = _scenario().model_copy(update={"waves": Waves(sizes=[100, 400, 1500], delay=0)})
    result = run_simulation(scenario, ("ab",), seeds=1)
    assert result.wave_sizes == (100, 400, 1500)
    assert result.run("ab").traffic.sum() == 2000


def test_ab_conclusion_is_reported_even_without_an_ab_run():
    result = run_simulation(_scenario(2, 200), ("ucb",), seeds=1)
    assert len(result.ab_conclusions) == 1 and [r.policy for r in result.runs] == ["ucb"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policies": ("ab", "ab")}, "policies: duplicate names"),
        ({"policies": "thompson"}, "policies: expected a non-empty list"),
        ({"seeds": []}, "seeds: at least one seed"),
        ({"policy_options": {"ucb": {"alpha": 2}}}, r"options for policies not run: \['ucb'\]"),
    ],
)
def test_bad_simulation_requests(kwargs, message):
    with pytest.raises(SimulationInputError, match=message):
        run_simulation(_scenario(1, 10), **({"policies": ("ab",)} | kwargs))


def test_unknown_policies_fail_before_simulating():
    from bandit import PolicyError

    with pytest.raises(PolicyError, match="unknown policy 'bogus'"):
        run_simulation(_scenario(1, 10), ("ab", "bogus"))


def test_the_contextual_vw_bandit_personalises_where_non_contextual_policies_cannot():
    # segment x prefers b, segment y prefers a, equally: no single variant is better, so Thompson and
    # A/B give about half the recipients the wrong variant; VW sees the segment and learns it.
    scenario = scenario_from_mapping({
        "variants": ["a", "b"],
        "segments": [
            {"name": "x", "share": 0.5, "rates": {"a": 0.05, "b": 0.3}},
            {"name": "y", "share": 0.5, "rates": {"a": 0.3, "b": 0.05}},
        ],
        "waves": {"count": 6, "recipients": 500},
    })
    result = run_simulation(scenario, ("ab", "thompson", "vw"), seeds=2)
    ab, thompson, vw = (result.run(p) for p in ("ab", "thompson", "vw"))
    assert np.all(vw.cumulative_regret[:, -1] < 0.5 * ab.cumulative_regret[:, -1])
    assert np.all(vw.mismatch_share < 0.2) and np.all(thompson.mismatch_share > 0.4)


def test_forgetting_policies_learn_with_each_wave_s_time():
    # discount and window_days need each row's time: one wave per day
    result = run_simulation(_scenario(4, 300), ("thompson", "ucb"), seeds=1,
                            policy_options={"thompson": {"discount": 0.5}, "ucb": {"window_days": 2}})
    assert result.run("thompson").traffic.sum() == 1200
    assert result.run("ucb").traffic.sum() == 1200
