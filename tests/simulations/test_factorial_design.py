"""The multivariate design of ``sendlab simulate``: a real factorial over the scenario's slots."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from simulations.data import SimulationInputError
from simulations.factorial_design import FactorialDesign
from simulations.report import simulation_html
from simulations.scenario import load_scenario, scenario_from_mapping
from simulations.synthetic import draw_population, run_simulation

EXAMPLES = Path(__file__).resolve().parents[2] / "simulations" / "examples"
RATES = {("plain", "shop"): 0.05, ("plain", "see"): 0.04, ("plain", "browse"): 0.03,
         ("urgent", "shop"): 0.09, ("urgent", "see"): 0.07, ("urgent", "browse"): 0.06}


def factorial(**changes):
    doc = {
        "name": "factorial",
        "slots": {"subject": ["plain", "urgent"], "cta": ["shop", "see", "browse"]},
        "segments": [{"name": "all", "share": 1.0,
                      "features": {"device": {"distribution": "categorical",
                                              "values": {"ios": 0.5, "web": 0.5}}},
                      "rates": {f"subject={s}|cta={c}": r for (s, c), r in RATES.items()}}],
        "waves": {"count": 6, "recipients": 4000, "delay": 1},
    }
    doc.update(changes)
    return scenario_from_mapping(doc)


def test_each_slot_is_drawn_independently_and_uniformly():
    design = FactorialDesign([2, 3])
    choices = design.choose(60_000, np.random.default_rng(1))
    assert np.all(choices.propensities == 1 / 6)
    positions = np.stack(np.unravel_index(choices.actions, (2, 3)), axis=1)
    table = np.zeros((2, 3))
    np.add.at(table, (positions[:, 0], positions[:, 1]), 1)
    # marginals: binomial z-tests at |z| < 4 (PlanOut-style); joint: chi-square test of independence
    assert abs((table[0].sum() / 60_000 - 1 / 2) / np.sqrt(0.25 / 60_000)) < 4
    for j in range(3):
        assert abs((table[:, j].sum() / 60_000 - 1 / 3) / np.sqrt(2 / 9 / 60_000)) < 4
    assert stats.chi2_contingency(table).pvalue > 1e-4
    # the arm is the combination in itertools.product order (the last slot fastest), as in SendLab
    rng = np.random.default_rng(2)
    drawn = design.positions(10, rng)
    combos = list(itertools.product(range(2), range(3)))
    assert [combos[a] for a in design.arms(drawn)] == [tuple(p) for p in drawn]


def test_a_scenario_with_slots_names_its_combinations_and_applies_slot_effects():
    scenario = factorial(effects=[{"variant": "subject=urgent", "feature": "device", "equals": "ios",
                                   "log_odds": 0.7}])
    assert scenario.variants == [f"subject={s}|cta={c}" for s, c in RATES]
    assert scenario.slot_sizes == [2, 3]
    population = draw_population(scenario, 2000, np.random.default_rng(0))
    ios = np.array([c["device"] == "ios" for c in population.contexts])
    base = np.array(list(RATES.values()))
    shift = np.where(np.arange(6) >= 3, 0.7, 0.0)  # every combination with subject=urgent
    shifted = special.expit(special.logit(base) + shift)
    np.testing.assert_allclose(population.probabilities[ios], np.tile(shifted, (ios.sum(), 1)))
    np.testing.assert_allclose(population.probabilities[~ios], np.tile(base, ((~ios).sum(), 1)))


def test_multivariate_spreads_traffic_over_combinations_with_regret_against_the_best_one():
    scenario = factorial()
    result = run_simulation(scenario, ("multivariate", "thompson"), seeds=3)
    assert result.best_variant == ("subject=urgent|cta=shop",) * 3
    run = result.run("multivariate")
    n = 24_000
    shares = run.traffic / n
    assert np.all(np.abs(shares - 1 / 6) < 4 * np.sqrt(5 / 36 / n))
    # regret against the best combination: expected (max p - p_a) per send with a uniform over six;
    # the realised sum differs by the draw of the arms (sd: sqrt(n) * sd of max p - p_a over arms)
    rates = np.array(list(RATES.values()))
    expected = n * (rates.max() - rates.mean())
    assert np.all(np.abs(run.cumulative_regret[:, -1] - expected) < 4 * np.sqrt(n) * rates.std())
    assert np.all(result.run("thompson").cumulative_regret[:, -1] < run.cumulative_regret[:, -1])
    # the factorial analysis of its counts: the subject main effect (odds ratio about 1.8) stands out
    for conclusion in result.factorial_conclusions:
        effects = {term: (odds, p) for term, odds, p, _ in conclusion.effects}
        assert effects["subject=urgent"][0] > 1.3 and effects["subject=urgent"][1] < 0.001
        assert conclusion.interaction_p_value is not None
    out = result.to_dict()["multivariate_test"]
    assert len(out["per_seed"]) == 3 and 0 <= out["correct_share"] <= 1
    page = simulation_html(result)
    assert "factorial analysis concluded" in page and "subject=urgent: OR" in page


def test_old_scenarios_without_slots_stay_valid_and_are_one_slot():
    scenario = load_scenario(EXAMPLES / "scenario.yaml")
    assert scenario.slots is None and scenario.slot_sizes == [3]
    result = run_simulation(scenario, ("ab", "multivariate"), seeds=1)
    assert result.run("multivariate").traffic.sum() == 20_000
    terms = [t for t, *_ in result.factorial_conclusions[0].effects]
    assert terms == ["variant=urgent", "variant=emoji"]


def test_the_example_factorial_scenario_runs():
    scenario = load_scenario(EXAMPLES / "factorial.yaml")
    result = run_simulation(scenario, ("ab", "multivariate", "thompson"), seeds=1)
    assert len(result.variants) == 6 and result.factorial_conclusions[0].effects


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variants": ["a", "b"]}, "variants: with slots, leave variants out"),
        ({"slots": {"subject": ["plain", "plain"], "cta": ["shop"]}}, "slots.subject: expected a non-empty"),
        ({"slots": {"subject": ["pl|ain", "urgent"]}}, "may not contain"),
        ({"effects": [{"variant": "cta=nope", "feature": "device", "equals": "ios", "log_odds": 1}]},
         "effects\\[0\\].variant: unknown variant 'cta=nope'"),
    ],
)
def test_bad_factorial_scenarios_name_the_problem(changes, message):
    with pytest.raises(SimulationInputError, match=message):
        factorial(**changes)


def test_multivariate_takes_no_options():
    with pytest.raises(SimulationInputError, match="policy_options.multivariate: takes no options"):
        run_simulation(factorial(), ("multivariate",), seeds=1, policy_options={"multivariate": {"x": 1}})
