"""``option_problems`` reports every bad option at once, each as its constructor would reject it."""

from __future__ import annotations

import pytest

from bandit import POLICY_NAMES, PolicyError, make_policy, option_problems
from bandit.registry import name_to_option_checks

# (policy, option, bad value): one bad value per option of every policy
BAD_VALUES = [
    ("fixed", "weights", [1, 2]),
    ("epsilon_greedy", "epsilon", 1.5),
    ("epsilon_greedy", "initial_value", "high"),
    ("ucb", "alpha", 0),
    ("thompson", "prior_alpha", -1),
    ("thompson", "prior_beta", float("nan")),
    ("thompson", "n_draws", 10),
    ("thompson", "n_draws", 10**9),
    ("gaussian_thompson", "prior_mean", float("inf")),
    ("gaussian_thompson", "prior_count", 0),
    ("gaussian_thompson", "prior_alpha", "1"),
    ("gaussian_thompson", "prior_beta", None),
    ("gaussian_thompson", "n_draws", 2.5),
    ("linear_ts", "scale", -2),
    ("linear_ts", "n_draws", True),
    ("linear_ts", "dim", 1),
    ("linear_ts", "regularization", 0),
    ("linucb", "alpha", "wide"),
    ("linucb", "dim", 10**6),
    ("linucb", "regularization", -1),
    ("vw", "vw_args", "--cb_adf"),
    ("vw", "vw_args", "--cb_explore_adf --foo"),
    ("vw", "vw_args", "--cb_explore_adf --epsilon often"),
    ("vw", "vw_args", "--cb_explore_adf -f model.vw"),
    ("vw", "vw_args", "--cb_explore_adf --squarecb --cb_type ips"),  # allowed options VW will not combine
    ("epsilon_greedy", "min_share", -0.01),
    ("epsilon_greedy", "discount", 1.5),
    ("epsilon_greedy", "window_days", 0),
    ("ucb", "batch_size", 0),
    ("ucb", "batch_size", 2.5),
    ("ucb", "min_share", 0.5),  # more than 1/3 for 3 arms
    ("ucb", "discount", 0),
    ("ucb", "window_days", 400),
    ("thompson", "min_share", "1%"),
    ("thompson", "discount", float("nan")),
    ("thompson", "window_days", -7),
    ("gaussian_thompson", "min_share", True),
    ("gaussian_thompson", "discount", -0.5),
    ("gaussian_thompson", "window_days", float("inf")),
    ("linear_ts", "min_share", 1),
    ("linucb", "min_share", "0.01"),
    ("vw", "min_share", 0.34),
]


def test_every_option_of_every_policy_has_a_bad_value_here() -> None:
    covered = {(name, key) for name, key, _ in BAD_VALUES}
    assert covered == {(name, key) for name, checks in name_to_option_checks.items() for key in checks}
    assert set(name_to_option_checks) == set(POLICY_NAMES)


@pytest.mark.parametrize(("name", "key", "value"), BAD_VALUES)
def test_a_bad_option_is_reported_as_the_constructor_rejects_it(name: str, key: str, value: object) -> None:
    problems = option_problems(name, {key: value}, 3)
    assert [k for k, _ in problems] == [key]
    with pytest.raises(PolicyError) as info:
        make_policy(name, 3, options={key: value}, action_features=[{}, {}, {}] if name == "vw" else None)
    constructor = str(info.value)
    if name == "vw" and "rejected" in constructor:  # the workspace names the whole command it was given
        assert problems[0][1].startswith("Vowpal Wabbit rejected them: ")
    else:
        assert constructor == f"options.{key}: {problems[0][1]}"


def test_every_problem_at_once_and_good_options_pass() -> None:
    problems = option_problems("linear_ts", {"scale": 0, "dim": 16, "colour": "red", "n_draws": 50}, 4)
    assert problems == [
        ("scale", "must be finite and > 0, got 0"),
        ("colour", "unknown option for policy 'linear_ts' "
                   "(it takes: scale, n_draws, dim, regularization, min_share)"),
        ("n_draws", "expected an integer >= 100, got 50"),
    ]
    assert option_problems("vw", {"vw_args": "--cb_explore_adf --epsilon 0.05 -q UA"}, 4) == []
    assert option_problems("thompson", {"prior_alpha": 2, "n_draws": 1000}, 4) == []
    assert option_problems("no-such-policy", {"x": 1}, 4) == []  # the policy name is reported elsewhere
