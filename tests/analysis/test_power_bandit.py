"""Bandit planning: SendLab's Thompson policy against an independent numpy Thompson and exact limits."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from analysis.power import PowerInputError, plan_bandit, solve_rate


def _numpy_thompson_losing_share(rates, horizon, batches, replications, rng, n_draws=1000):
    """A separate, vectorised Beta(1, 1) Thompson sampler in batches: each batch is split among the arms
    by their Monte Carlo probability of being best; returns the share to losing arms per campaign."""
    rates = np.asarray(rates)
    k = rates.size
    a, b = np.ones((replications, k)), np.ones((replications, k))
    losing = rates < rates.max()
    to_losers = np.zeros(replications)
    for size in [horizon // batches] * batches:
        draws = rng.beta(a[:, None, :], b[:, None, :], size=(replications, n_draws, k))
        p_best = np.stack([(draws.argmax(axis=2) == j).mean(axis=1) for j in range(k)], axis=1)
        counts = np.stack([rng.multinomial(size, p / p.sum()) for p in p_best])
        wins = rng.binomial(counts, rates)
        a, b = a + wins, b + counts - wins
        to_losers += counts[:, losing].sum(axis=1)
    return to_losers / horizon


@pytest.mark.parametrize(("rates", "batches"), [([0.04, 0.05], 20), ([0.05, 0.04, 0.045], 10)])
def test_policy_simulation_agrees_with_an_independent_thompson(rates, batches):
    plan = plan_bandit(rates, 20_000, batches=batches, replications=200, rng=np.random.default_rng(7))
    reference = _numpy_thompson_losing_share(rates, 20_000, batches, 400, np.random.default_rng(8))
    se = np.hypot(plan.losing_share_bandit_se, reference.std(ddof=1) / np.sqrt(reference.size))
    assert abs(plan.losing_share_bandit - reference.mean()) < 4 * se
    assert plan.losing_share_bandit < plan.losing_share_fixed


def test_one_batch_cannot_learn_so_it_matches_the_fixed_test():
    # With a single batch every send is drawn from the Beta(1, 1) prior: 1/k to each arm.
    plan = plan_bandit([0.05, 0.04, 0.045], 9000, batches=1, replications=100, rng=np.random.default_rng(9))
    assert plan.losing_share_fixed == pytest.approx(2 / 3)
    assert abs(plan.losing_share_bandit - 2 / 3) < 4 * plan.losing_share_bandit_se + 0.01


def test_exact_parts_and_identities():
    rates, horizon = [0.04, 0.05], 20_000
    plan = plan_bandit(rates, horizon, batches=8, replications=50, rng=np.random.default_rng(10))
    assert plan.lost_conversions_fixed == pytest.approx(horizon * 0.5 * 0.01)
    # two arms: every send to the loser gives up exactly the gap 0.01
    assert plan.lost_conversions_bandit == pytest.approx(plan.losing_share_bandit * horizon * 0.01)
    assert plan.fixed_power == pytest.approx(solve_rate(0.04, mde=0.01, n_per_arm=horizon / 2,
            power=None).power)
    assert plan.losing_share_by_batch[0] > plan.losing_share_by_batch[-1]
    assert np.dot(plan.losing_share_by_batch, [2500] * 8) / horizon == pytest.approx(plan.losing_share_bandit)
    assert plan.batch_size == 2500 and len(plan.losing_share_by_batch) == 8
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["rates"] == rates and "make_policy" in data["method"]


def test_seeded_runs_repeat():
    first = plan_bandit([0.1, 0.12], 5000, batches=5, replications=20, rng=np.random.default_rng(11))
    again = plan_bandit([0.1, 0.12], 5000, batches=5, replications=20, rng=np.random.default_rng(11))
    assert first == again


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [(([0.1], 100), {}, "rates must be a flat sequence of at least 2 rates, control first."),
     (([0.1, 0.1], 100), {}, "rates are all equal, so no variant is losing."),
     (([0.1, 1.0], 100), {}, "rates must all be strictly between 0 and 1."),
     (([0.1, 0.2], 10), {"batches": 20}, "horizon must be at least 20; got 10."),
     (([0.1, 0.2], 100), {"replications": 1}, "replications must be at least 2; got 1."),
     (([0.1, 0.2], 100), {"n_draws": 10}, "n_draws must be at least 100; got 10."),
     (([0.1, 0.2], 100), {"rng": None},
      "rng must be a numpy.random.Generator, for example np.random.default_rng(7).")],
)
def test_bad_input(args, kwargs, message):
    kwargs = {"rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(PowerInputError) as caught:
        plan_bandit(*args, **kwargs)
    assert str(caught.value) == message


def test_a_seed_gives_the_answer_of_its_generator_and_is_returned():
    by_seed = plan_bandit([0.04, 0.05], 2_000, seed=3, replications=5)
    by_rng = plan_bandit([0.04, 0.05], 2_000, rng=np.random.default_rng(3), replications=5)
    assert by_seed.seed == 3 and dataclasses.replace(by_rng, seed=3) == by_seed
