"""The Vowpal Wabbit wrapper: escaping, exploration algorithms, snapshots, and learning by segment."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import vowpalwabbit
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import PolicyError, VWContextualBandit, load_policy, make_policy
from bandit.vw_text import escape, shared_line
from tests.bandit.gof import assert_choices_match

SEGMENT_TO_BEST = {"young": 0, "family": 1, "retired": 2}
SUBJECTS = [{"tone": "playful", "length": 0.3}, {"tone": "practical", "length": 0.6},
            {"tone": "formal", "length": 0.9}]


def click_rates(segments: np.ndarray) -> np.ndarray:
    """(n, 3) click probabilities: 12% for the segment's best subject line, 4% for the others."""
    best = np.array([SEGMENT_TO_BEST[s] for s in segments])
    rates = np.full((len(segments), 3), 0.04)
    rates[np.arange(len(segments)), best] = 0.12
    return rates


def shared_feature_count(line: str) -> int:
    """How many features VW itself parses in the shared namespace of ``line`` (independent of our code)."""
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --quiet")
    examples = workspace.parse([line, "|Action a"])
    try:
        return examples[0]["U"].num_features_in()
    finally:
        workspace.finish_example(examples)


def test_values_with_syntax_characters_stay_one_feature_each():
    context = {"subject seen": "Sale | 50%: today only", "city": "a:b", "segment": "x y|z"}
    assert shared_feature_count(shared_line(context)) == 3


def test_numpy_scalars_format_like_python_ones():
    assert shared_line({"vip": np.True_, "n": np.int64(3), "x": np.float32(0.5)}) == shared_line(
        {"vip": True, "n": 3, "x": 0.5})


def test_missing_values_are_left_out():
    assert shared_line({"segment": None, "recency": 2.0}) == shared_line({"recency": 2.0})


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12),
                       st.one_of(st.text(max_size=12), st.booleans(), st.integers(-10**6, 10**6),
                                 st.floats(-1e6, 1e6).filter(lambda v: v == 0 or abs(v) > 1e-6)),
                       min_size=1, max_size=5))
def test_any_names_and_values_parse_as_exactly_one_feature_each(context):
    # VW drops numeric features whose value is zero (they add nothing to a linear score).
    expected = sum(isinstance(v, str | bool) or v != 0 for v in context.values())
    assert shared_feature_count(shared_line(context)) == expected


def test_escaping_keeps_distinct_values_distinct():
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --quiet")

    def hashes(context):
        examples = workspace.parse([shared_line(context), "|Action a"])
        try:
            namespace = examples[0]["U"]
            return sorted(namespace[i][0] for i in range(namespace.num_features_in()))
        finally:
            workspace.finish_example(examples)

    assert hashes({"segment": "a b"}) != hashes({"segment": "a_b"})
    assert hashes({"segment": "a:1"}) != hashes({"segment": "a"})
    assert hashes({"a=b": "c"}) != hashes({"a": "b=c"})


@settings(max_examples=200, derandomize=True)
@given(st.text(max_size=20), st.text(max_size=20))
def test_escape_is_injective_and_removes_syntax(a, b):
    for text in (a, b):
        assert not set(escape(text)) & set(" \t\n\r|:=")
    assert (escape(a) == escape(b)) == (a == b)


def train(policy: VWContextualBandit, rounds: int, seed: int, batch: int = 100) -> float:
    """Run the policy on the segment population with updates one batch late; mean expected click rate."""
    rng = np.random.default_rng(seed)
    segments_all = np.array(list(SEGMENT_TO_BEST))
    pending = None
    earned = []
    for _ in range(rounds // batch):
        segments = segments_all[rng.integers(0, 3, batch)]
        contexts = [{"segment": s} for s in segments]
        choices = policy.choose(contexts, rng)
        rates = click_rates(segments)[np.arange(batch), choices.actions]
        earned.append(rates)
        clicks = (rng.random(batch) < rates).astype(float)
        if pending is not None:
            policy.update(*pending)
        pending = (contexts, choices.actions, clicks, choices.propensities)
    return float(np.concatenate(earned).mean())


def test_vw_beats_the_best_single_subject_line_when_the_best_differs_by_segment():
    policy = make_policy("vw", 3, options={"vw_args": "--cb_explore_adf --squarecb -q UA"},
                         action_features=SUBJECTS, seed=1)
    rate = train(policy, rounds=4000, seed=2)  # includes the learning phase
    best_fixed = (0.12 + 0.04 + 0.04) / 3  # every subject line is best for exactly one third
    assert rate > best_fixed + 0.02, rate  # the segment-aware optimum is 0.12
    segments = np.array(list(SEGMENT_TO_BEST))
    learned = policy.probabilities([{"segment": s} for s in segments])
    final_rate = (learned * click_rates(segments)).sum(axis=1).mean()  # exact, segments equally likely
    assert final_rate > best_fixed + 0.02, final_rate


@pytest.mark.parametrize("exploration", ["--epsilon 0.1", "--softmax --lambda 5", "--bag 3", "--cover 3",
                                         "--squarecb"])
def test_each_exploration_gives_a_valid_pmf_and_restores(exploration):
    policy = make_policy("vw", 3, options={"vw_args": f"--cb_explore_adf {exploration} -q UA"},
                         action_features=SUBJECTS, seed=3)
    train(policy, rounds=600, seed=4)
    rng = np.random.default_rng(5)
    contexts = [{"segment": s} for s in np.array(list(SEGMENT_TO_BEST))[rng.integers(0, 3, 3000)]]
    allowed = rng.random((3000, 3)) < 0.7
    allowed[:, 1] = True
    for mask in (None, allowed):
        probs = policy.probabilities(contexts, mask)
        assert np.all(probs >= 0)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
        if mask is not None:
            assert np.all(probs[~mask] == 0)
        assert_choices_match(probs, policy.choose(contexts, np.random.default_rng(6), mask))
    restored = load_policy(policy.to_bytes())
    # VW recomputes scores after a reload up to float32 rounding (its pmf is float32): see the note
    # in bandit/vw.py. The draws agree; the probabilities agree to VW's own precision.
    np.testing.assert_allclose(restored.probabilities(contexts[:50]), policy.probabilities(contexts[:50]),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(restored.choose(contexts, np.random.default_rng(7)).actions,
                                  policy.choose(contexts, np.random.default_rng(7)).actions)


def test_reward_is_turned_into_cost():
    # Action 2 always pays 1, the others 0: a reward-maximiser must come to prefer action 2.
    policy = make_policy("vw", 3, options={"vw_args": "--cb_explore_adf --epsilon 0.1"}, seed=0)
    n = 300
    actions = np.arange(n) % 3
    policy.update(n, actions, (actions == 2).astype(float), np.full(n, 1 / 3))
    np.testing.assert_allclose(policy.probabilities(1)[0], [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3], rtol=1e-6)


def test_snapshot_keeps_learning_state():
    options = {"vw_args": "--cb_explore_adf --squarecb -q UA"}
    policy = make_policy("vw", 3, options=options, action_features=SUBJECTS, seed=8)
    train(policy, rounds=300, seed=9)
    restored = load_policy(policy.to_bytes())
    assert train(policy, rounds=300, seed=10) == train(restored, rounds=300, seed=10)
    contexts = [{"segment": s} for s in SEGMENT_TO_BEST]
    np.testing.assert_allclose(policy.probabilities(contexts), restored.probabilities(contexts), atol=1e-6)
    # A snapshot of a restored policy restores bit for bit.
    again = load_policy(restored.to_bytes())
    np.testing.assert_array_equal(again.probabilities(contexts), restored.probabilities(contexts))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vw_args": "--cb_adf"}, "options.vw_args: must contain --cb_explore_adf"),
        ({"vw_args": "--cb_explore_adf -f model.vw"}, r"options.vw_args: -f is not an option SendLab allows"),
        ({"vw_args": "--cb_explore_adf --random_seed 3"}, "options.vw_args: do not set --random_seed"),
        ({"vw_args": "--cb_explore_adf --no_such_option"}, "options.vw_args: --no_such_option is not an"),
        ({"vw_args": "--cb_explore_adf --squarecb --cb_type ips"}, "options.vw_args: Vowpal Wabbit rejected"),
        ({"vw_args": 3}, "options.vw_args: expected a string"),
        ({"action_features": [{}, {}]}, "action_features: expected 3 mappings, got 2"),
        ({"action_features": [{}, {}, "x"]}, r"action_features\[2\]: expected a mapping"),
        ({"action_features": [{}, {}, {"n": float("nan")}]},
         r"action_features\[2\]: feature 'n' must be finite"),
    ],
)
def test_bad_construction(kwargs, message):
    with pytest.raises(PolicyError, match=message):
        VWContextualBandit(3, **kwargs)


def test_update_with_the_decision_mask_learns():
    # Only actions 0 and 2 were offered; each learning example holds just those two.
    options = {"vw_args": "--cb_explore_adf --epsilon 0.1 --cb_type ips"}
    masked = make_policy("vw", 3, options=options, seed=0)
    n = 300
    actions = np.where(np.arange(n) % 2 == 0, 0, 2)
    rewards = (actions == 2).astype(float)
    allowed = np.tile([True, False, True], (n, 1))
    masked.update(n, actions, rewards, np.full(n, 0.5), allowed=allowed)
    probs = masked.probabilities(1, allowed[:1])[0]
    np.testing.assert_allclose(probs, [0.05, 0, 0.95], rtol=1e-6)  # learned: 2 beats 0 among the two


def test_import_bandit_leaves_vowpal_wabbit_unloaded_until_a_vw_policy_needs_it():
    """``import bandit`` costs no VW import; a vw spec still checks, builds, learns and restores."""
    script = "\n".join([
        "import sys",
        "import numpy as np",
        "import bandit",
        "print('vowpalwabbit' in sys.modules)",
        "print(bandit.option_problems('vw', {'vw_args': '--cb_explore_adf --bogus'}, 2) != [])",
        "policy = bandit.make_policy('vw', 2, action_features=[{'a': 1}, {'a': 2}], seed=3)",
        "policy.update([{'u': 1}, {'u': 2}], np.array([0, 1]), np.array([1.0, 0.0]), np.array([0.5, 0.5]))",
        "restored = bandit.load_policy(policy.to_bytes())",
        "print(isinstance(restored, bandit.VWContextualBandit), 'vowpalwabbit' in sys.modules)",
    ])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True"]
