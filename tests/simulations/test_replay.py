"""Candidates on logged sends: SendLab policies, probability files, training on the earlier part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bandit import make_policy
from simulations.candidates import CandidateSpec, candidate_from_mapping, load_candidate
from simulations.data import LoggedData, SimulationInputError
from simulations.estimators import estimate_policy_value
from simulations.refit_bootstrap import refit_replicates
from simulations.replay import (
    evaluate_policy,
    load_probabilities,
    observed_value,
    probabilities_from_policy,
    replay_report,
    train_policy,
)
from simulations.reward_model import fit_reward_model
from tests.simulations.synthetic_logs import ACTIONS, RATES, SHARES, make_log, true_value


def test_probabilities_of_a_fixed_policy_and_mismatched_actions():
    data = make_log(50, np.random.default_rng(0), as_mappings=True).data
    policy = make_policy("fixed", 3, options={"weights": [1, 2, 1]})
    np.testing.assert_allclose(probabilities_from_policy(policy, data), np.tile([0.25, 0.5, 0.25], (50, 1)))
    with pytest.raises(SimulationInputError, match="policy: has 2 actions but the log has 3"):
        probabilities_from_policy(make_policy("fixed", 2), data)


def test_evaluate_policy_runs_each_estimator_like_the_estimator_itself():
    log = make_log(3000, np.random.default_rng(1))
    model = fit_reward_model(log.data)
    got = evaluate_policy(log.data, log.target, ("ips", "snips", "dm", "dr"), reward_model=model)
    q = model.predict(log.data.contexts)
    for estimate in got:
        assert estimate == estimate_policy_value(estimate.estimator, log.data, log.target, q)
    with pytest.raises(SimulationInputError, match="estimators: unknown \\['ipw'\\]"):
        evaluate_policy(log.data, log.target, ("ipw",))


def test_observed_value_is_the_mean_reward():
    data = make_log(400, np.random.default_rng(2)).data
    logged = observed_value(data)
    assert logged.value == pytest.approx(data.rewards.mean(), abs=1e-12)
    assert logged.std_error == pytest.approx(data.rewards.std(ddof=1) / 20, abs=1e-12)


def test_probability_file_is_aligned_and_validated(tmp_path):
    path = tmp_path / "p.csv"
    frame = pd.DataFrame({"urgent": [0.5, 0.2, 0.0], "plain": [0.5, 0.3, 1.0], "emoji": [0.0, 0.5, 0.0]})
    frame.to_csv(path, index=False)
    got = load_probabilities(path, ACTIONS, kept_rows=np.array([0, 2]), total_rows=3)
    np.testing.assert_array_equal(got, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    frame.to_parquet(tmp_path / "p.parquet")
    np.testing.assert_array_equal(load_probabilities(tmp_path / "p.parquet", ACTIONS), frame[list(ACTIONS)])


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"plain": [1.0], "urgent": [0.0]}), {}, "missing \\['emoji'\\]"),
        (pd.DataFrame({"plain": [1.0], "urgent": [0.0], "emoji": [0.0], "bold": [0.0]}), {},
         "unexpected \\['bold'\\]"),
        (pd.DataFrame({"plain": [1.0], "urgent": [0.0], "emoji": [0.0]}), {"total_rows": 2},
         "1 rows, but the log has 2"),
        (pd.DataFrame({"plain": [0.7], "urgent": [0.0], "emoji": [0.0]}), {}, "row 0 sums to 0.7"),
        (pd.DataFrame({"plain": [1.5], "urgent": [-0.5], "emoji": [0.0]}), {},
         "row 0 has a missing, negative"),
    ],
)
def test_bad_probability_files_name_the_problem(tmp_path, frame, kwargs, message):
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SimulationInputError, match=message):
        load_probabilities(path, ACTIONS, **kwargs)


def test_thompson_trained_on_the_log_prefers_the_best_variant():
    rng = np.random.default_rng(3)
    n = 3000
    actions = rng.integers(0, 3, n)
    rewards = (rng.random(n) < np.array([0.1, 0.3, 0.2])[actions]).astype(float)
    data = LoggedData(np.zeros((n, 0)), actions, rewards, np.full(n, 1 / 3), ACTIONS)
    policy = train_policy("thompson", data, seed=1)
    probabilities = probabilities_from_policy(policy, data.rows(0, 1))
    # all but the floor: each other arm keeps min_share = 0.01
    np.testing.assert_allclose(probabilities[0], [0.01, 0.98, 0.01], rtol=1e-12)


def test_replay_report_trains_on_the_earlier_part_and_evaluates_the_later_part():
    log = make_log(8000, np.random.default_rng(4), as_mappings=True)
    report = replay_report(
        log.data,
        {
            "always emoji": CandidateSpec(variant="emoji"),
            "thompson": "thompson",
            "uniform": CandidateSpec(policy="fixed", train=False),
            "file": np.tile([0.2, 0.3, 0.5], (8000, 1)),
        },
        train_fraction=0.25,
    )
    assert (report.train_rows, report.test_rows) == (2000, 6000)
    assert report.logged.value == pytest.approx(log.data.rewards[2000:].mean(), abs=1e-12)
    by_name = {c.name: c for c in report.candidates}
    emoji = by_name["always emoji"]
    assert emoji.deterministic
    assert [e.estimator for e in emoji.estimates] == ["replay", "ips", "snips", "dm", "dr"]
    truth = float(SHARES @ RATES[:, 2])  # always sending emoji: its population rate
    for estimate in emoji.estimates:
        if estimate.estimator in ("ips", "snips", "dr"):
            assert estimate.ci[0] <= truth <= estimate.ci[1], estimate
    # the direct method's interval leaves out the model's error, and says so
    assert any("reward model's own error" in w for w in emoji.estimates[3].warnings)
    # logging was not uniform, so replay is biased here, and says so
    assert any("uniform logging" in w for w in emoji.estimates[0].warnings)
    assert not by_name["uniform"].deterministic
    uniform_truth = float(SHARES @ RATES.mean(axis=1))
    ips = next(e for e in by_name["uniform"].estimates if e.estimator == "ips")
    assert ips.ci[0] <= uniform_truth <= ips.ci[1]
    assert report.to_dict()["candidates"][0]["estimates"][0]["estimator"] == "replay"
    lift_names = [e.estimator for e in emoji.lifts]
    assert lift_names == ["replay lift", "ips lift", "snips lift", "dm lift", "dr lift"]
    ips_lift = emoji.lifts[1]
    assert ips_lift.value == pytest.approx(emoji.estimates[1].value - report.logged.value, abs=1e-12)


def test_candidate_files(tmp_path):
    path = tmp_path / "candidate.yaml"
    path.write_text("policy: thompson\noptions: {prior_alpha: 2}\ntrain_fraction: 0.3\n")
    spec = load_candidate(path)
    assert (spec.name, spec.policy, spec.options, spec.train_fraction) == ("thompson", "thompson",
                                                                            {"prior_alpha": 2}, 0.3)
    spec = candidate_from_mapping({"key": "spring", "design": {"type": "ab"}})
    assert (spec.name, spec.policy) == ("spring", "fixed")
    spec = candidate_from_mapping({"key": "s", "design": {"type": "bandit", "policy": "ucb"}})
    assert spec.policy == "ucb"
    with pytest.raises(SimulationInputError, match="train_fraction: Input should be less than 1"):
        candidate_from_mapping({"policy": "ucb", "train_fraction": 1.5})
    with pytest.raises(SimulationInputError, match="variant: give either a fixed variant or a policy"):
        candidate_from_mapping({"policy": "ucb", "variant": "plain"})
    with pytest.raises(SimulationInputError, match="design.policy: required"):
        candidate_from_mapping({"design": {"type": "bandit"}})
    with pytest.raises(SimulationInputError, match="candidate: policy: Input should be a valid string"):
        candidate_from_mapping({"policy": 3})
    with pytest.raises(SimulationInputError, match="candidate: weight: Extra inputs are not permitted"):
        candidate_from_mapping({"policy": "ucb", "weight": 2})


def test_a_candidate_mapping_of_plain_values_and_one_to_convert_give_the_same_spec():
    """Plain values are taken as they are; others are converted by pydantic, to the same spec."""
    plain = candidate_from_mapping({"policy": "ucb", "train": False, "train_fraction": 0.25})
    converted = candidate_from_mapping({"policy": "ucb", "train": "no", "train_fraction": "0.25"})
    assert plain == converted == CandidateSpec(name="ucb", policy="ucb", train=False, train_fraction=0.25)
    assert candidate_from_mapping({"variant": "plain", "train_fraction": 0}).train_fraction == 0.0
    with pytest.raises(ValueError, match="train_fraction: must be at least 0 and less than 1"):
        CandidateSpec(policy="ucb", train_fraction=1.0)
    with pytest.raises(SimulationInputError, match="candidates\\['x'\\].variant: 'bold' is not one of"):
        replay_report(make_log(100, np.random.default_rng(5)).data, {"x": CandidateSpec(variant="bold")})


def test_replay_is_skipped_with_a_note_for_stochastic_candidates():
    data = make_log(400, np.random.default_rng(6)).data
    report = replay_report(data, {"uniform": CandidateSpec(train=False)}, estimators=("replay", "ips"))
    (candidate,) = report.candidates
    assert [e.estimator for e in candidate.estimates] == ["ips"]
    assert candidate.notes == ("replay skipped: it needs a deterministic candidate, this one is stochastic",)
    with pytest.raises(SimulationInputError, match="estimators: only replay was asked"):
        replay_report(data, {"uniform": CandidateSpec(train=False)}, estimators=("replay",))


@pytest.mark.slow  # about 60 s of CPU: 1,000 logs, 200 batched refits each
def test_refitting_the_reward_model_in_the_bootstrap_gives_the_direct_method_honest_intervals():
    # DM's normal interval treats the fitted model as known: it covered the true value far less than
    # 95% of the time, so none is given now (NaN: plain_covered stays 0). The refit interval's standard
    # error is the spread of resamples that each refit the model. Over 1,000 logs (binomial SE 0.7 points
    # at 95%) it must cover 93-97%: measured 0.941.
    # The earlier interval, the percentile interval of 60 refits, covered 0.916 over the same kind of
    # logs and fails this band.
    truth = true_value()
    seeds, refit_covered, plain_covered = 1000, 0, 0
    for s in range(seeds):
        log = make_log(1000, np.random.default_rng(300 + s))
        (refit,) = evaluate_policy(log.data, log.target, ("dm",), bootstrap=200, rng=np.random.default_rng(s),
                                   refit=True)
        (plain,) = evaluate_policy(log.data, log.target, ("dm",))
        refit_covered += refit.ci[0] <= truth <= refit.ci[1]
        plain_covered += plain.ci[0] <= truth <= plain.ci[1]
        assert refit.ci_method == "bootstrap (refit)" and refit.warnings == ()
        assert refit.value == plain.value and plain.ci_method == "none"
    assert 0.93 <= refit_covered / seeds <= 0.97
    assert plain_covered / seeds < 0.6


@pytest.mark.parametrize("kind", ["logistic", "linear"])
@pytest.mark.parametrize("estimator", ["dm", "dr", "clipped_dr"])
def test_batched_refits_equal_fitting_each_resample_on_its_own(estimator, kind):
    # Categorical contexts: the encoder has no standardisation, so weighting the original rows by their
    # resample counts is the same fit as the resampled rows themselves.
    log = make_log(600, np.random.default_rng(8), as_mappings=True)
    got = refit_replicates(estimator, log.data, log.target, kind, 2.0, 20, np.random.default_rng(4))
    indices = np.random.default_rng(4).integers(0, log.data.n, size=(20, log.data.n))
    for value, idx in zip(got, indices, strict=True):
        sample = log.data.take(idx)
        q = fit_reward_model(sample, kind=kind).predict(sample.contexts)
        expected = estimate_policy_value(estimator, sample, log.target[idx], q, clip=2.0).value
        assert value == pytest.approx(expected, abs=1e-12)


def test_refits_drawn_in_blocks_are_the_same_replicates(monkeypatch):
    # Large logs are resampled a block of resamples at a time (bounded memory): same draws, same values.
    log = make_log(500, np.random.default_rng(2))
    whole = refit_replicates("dr", log.data, log.target, "auto", 10.0, 30, np.random.default_rng(5))
    monkeypatch.setattr("simulations.refit_bootstrap._BLOCK_CELLS", 500 * 7)
    blocks = refit_replicates("dr", log.data, log.target, "auto", 10.0, 30, np.random.default_rng(5))
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-12)


def test_refit_needs_a_bootstrap_and_no_given_model():
    log = make_log(100, np.random.default_rng(1))
    with pytest.raises(SimulationInputError, match="refit: needs bootstrap > 0 and no reward_model"):
        evaluate_policy(log.data, log.target, ("dm",), refit=True)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("p.csv", b"", "empty"),
        ("p.csv", b"plain,urgent,emoji\n\xe9,0,0\n", "not UTF-8 text"),
        ("p.parquet", b"plain,urgent,emoji\n1,0,0\n", "not a Parquet file"),
        ("p.parquet", b"", "empty"),
    ],
)
def test_a_probability_file_that_is_not_what_its_name_says_is_named(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SimulationInputError, match=f"^{path}: {problem}$"):
        load_probabilities(path, ACTIONS)
