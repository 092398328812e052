"""The policy_value block: the as-run mean against the fixed-split statistics, the alternatives against
the arms' estimates, and the coverage of the uniform split's value under batched Thompson sampling."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.adaptive import estimate_arm_values, estimate_value, uniform_split
from analysis.adaptive_log import ArmBatchSums, PolicyBatch
from analysis.errors import AnalysisInputError
from analysis.policy_value import estimate_as_run, estimate_policy_values
from analysis.stats import SampleStats
from tests.analysis.bandit_simulations import simulate_thompson


def _log(seed: int) -> tuple[list[PolicyBatch], np.ndarray]:
    rng = np.random.default_rng(seed)
    log, everything = [], []
    for b, shares in enumerate(([1 / 3] * 3, [0.2, 0.5, 0.3], [0.1, 0.1, 0.8])):
        arm_to_sums = {}
        for a, share in enumerate(shares):
            size = int(3000 * share)
            rewards = rng.gamma(1.0, 2.0 + a, size=size) * (rng.uniform(size=size) < 0.2)
            everything.append(rewards)
            arm_to_sums[str(a)] = ArmBatchSums.from_constant_propensity(
                len(rewards), float(rewards.sum()), float(rewards @ rewards), share)
        log.append(PolicyBatch(b, arm_to_sums))
    return log, np.concatenate(everything)


@pytest.mark.parametrize("ddof", [0, 1])
def test_as_run_is_the_mean_reward_with_its_standard_error(ddof: int) -> None:
    log, rewards = _log(1)
    as_run = estimate_as_run(log, ddof=ddof)
    reference = SampleStats.from_values(rewards)
    assert as_run.estimate == pytest.approx(reference.mean, rel=1e-12)
    expected_se = np.std(rewards, ddof=ddof) / np.sqrt(len(rewards))
    assert as_run.std_error == pytest.approx(expected_se, rel=1e-9)
    assert as_run.effective_n == as_run.decisions == len(rewards)


def test_block_values_the_arms_the_defaults_and_a_uniform_split() -> None:
    log, _ = _log(2)
    estimates = estimate_arm_values(log)
    block = estimate_policy_values(log, estimates, defaults={"1": 1.0})
    assert [v.policy for v in block.arms] == ["0", "1", "2"]
    for value, arm in zip(block.arms, estimates.arms, strict=True):
        single = estimate_value(estimates, {arm: 1.0})
        assert value.estimate == single.estimate and value.ci == single.ci
        assert value.effective_n == single.effective_n
    assert block.defaults is not None and block.defaults.estimate == block.arms[1].estimate
    assert block.defaults.kind == "defaults"
    assert block.uniform.estimate == pytest.approx(np.mean(estimates.estimates), rel=1e-12)
    assert block.uniform.effective_n < sum(estimates.effective_n)
    assert estimate_policy_values(log, estimates).defaults is None
    assert block.to_dict()["uniform"]["policy"] == "uniform split"


def test_uniform_split_value_covers_the_truth_under_batched_thompson() -> None:
    # 1,000 runs of arms at 5%, 7% and 10%: the uniform split is worth 7.33%; its 95% interval covers it
    # in 93%-97% of runs (Monte Carlo standard error 0.007). The as-run interval covers the average
    # expected reward of the arms the policy chose (conservative: at least 93%).
    rates = np.array([0.05, 0.07, 0.10])
    runs = 1_000
    sim = simulate_thompson(list(rates), runs=runs, batches=10, batch_size=3_000, seed=20260107)
    uniform_covered = np.zeros(runs, bool)
    as_run_covered = np.zeros(runs, bool)
    for r in range(runs):
        log = sim.log(r)
        block = estimate_policy_values(log, estimate_arm_values(log, ddof=0), ddof=0)
        uniform_covered[r] = block.uniform.ci[0] <= rates.mean() <= block.uniform.ci[1]
        earned = sim.decisions[r].sum(axis=0) @ rates / sim.decisions[r].sum()
        as_run_covered[r] = block.as_run.ci[0] <= earned <= block.as_run.ci[1]
    assert 0.93 <= uniform_covered.mean() <= 0.97, uniform_covered.mean()
    assert as_run_covered.mean() >= 0.93


def test_defaults_must_name_arms_of_the_log() -> None:
    log, _ = _log(3)
    with pytest.raises(AnalysisInputError, match="'plain' is not one of"):
        estimate_policy_values(log, estimate_arm_values(log), defaults={"plain": 1.0})
    assert uniform_split(["a", "b"]) == {"a": 0.5, "b": 0.5}
