"""Build a policy from its name and options, and restore any policy from its snapshot."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bandit.fixed import FixedAllocation
from bandit.greedy import EpsilonGreedy
from bandit.linear import LinearThompson, LinUCB
from bandit.policy import FeatureValue, Policy, PolicyError
from bandit.snapshot import decode_snapshot
from bandit.thompson import BetaThompson, GaussianThompson
from bandit.ucb import UCB1
from bandit.vw import VWContextualBandit

Builder = Callable[[int, dict[str, Any], Sequence[Mapping[str, FeatureValue]] | None, int], Policy]


def _fixed(n: int, options: dict[str, Any], _features: Any, _seed: int) -> Policy:
    return FixedAllocation(n, options.pop("weights", None))


def _epsilon_greedy(n: int, options: dict[str, Any], _features: Any, _seed: int) -> Policy:
    return EpsilonGreedy(n, **_take(options, "epsilon", "initial_value"))


def _ucb(n: int, options: dict[str, Any], _features: Any, _seed: int) -> Policy:
    return UCB1(n, **_take(options, "alpha"))


def _thompson(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return BetaThompson(n, seed=seed, **_take(options, "prior_alpha", "prior_beta", "n_draws"))


def _gaussian_thompson(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    keys = ("prior_mean", "prior_count", "prior_alpha", "prior_beta", "n_draws")
    return GaussianThompson(n, seed=seed, **_take(options, *keys))


def _linear_ts(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return LinearThompson(n, seed=seed, **_take(options, "scale", "n_draws", "dim", "regularization"))


def _linucb(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return LinUCB(n, seed=seed, **_take(options, "alpha", "dim", "regularization"))


def _vw(n: int, options: dict[str, Any], features: Any, seed: int) -> Policy:
    return VWContextualBandit(n, seed=seed, action_features=features, **_take(options, "vw_args"))


def _take(options: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: options.pop(key) for key in keys if key in options}


name_to_builder: dict[str, Builder] = {
    "fixed": _fixed,
    "epsilon_greedy": _epsilon_greedy,
    "ucb": _ucb,
    "thompson": _thompson,
    "gaussian_thompson": _gaussian_thompson,
    "linear_ts": _linear_ts,
    "linucb": _linucb,
    "vw": _vw,
}

tag_to_class: dict[str, Any] = {
    FixedAllocation.tag: FixedAllocation,
    EpsilonGreedy.tag: EpsilonGreedy,
    UCB1.tag: UCB1,
    BetaThompson.tag: BetaThompson,
    GaussianThompson.tag: GaussianThompson,
    LinearThompson.tag: LinearThompson,
    LinUCB.tag: LinUCB,
    VWContextualBandit.tag: VWContextualBandit,
}


def make_policy(
    name: str,
    n_actions: int,
    *,
    options: Mapping[str, Any] | None = None,
    action_features: Sequence[Mapping[str, FeatureValue]] | None = None,
    seed: int = 0,
) -> Policy:
    """Build the policy called ``name`` over ``n_actions`` actions.

    Parameters
    ----------
    name : str
        One of ``fixed``, ``epsilon_greedy``, ``ucb``, ``thompson``, ``gaussian_thompson``,
        ``linear_ts``, ``linucb``, ``vw``.
    n_actions : int
    options : mapping, optional
        The policy's settings (see each class); an unknown key is a PolicyError.
    action_features : sequence of mappings, length n_actions, optional
        Each action's features; used by ``vw`` and ignored by the others.
    seed : int
        Seeds the policy's internal randomness (Monte Carlo propensities, VW's ``--random_seed``).

    Returns
    -------
    Policy

    Examples
    --------
    >>> import numpy as np
    >>> policy = make_policy("fixed", 2, options={"weights": [3, 1]})
    >>> policy.probabilities(1).tolist()
    [[0.75, 0.25]]
    >>> choices = policy.choose(4, np.random.default_rng(0))
    >>> choices.propensities.tolist() == [0.75 if a == 0 else 0.25 for a in choices.actions]
    True
    """
    builder = name_to_builder.get(name)
    if builder is None:
        raise PolicyError(f"name: unknown policy {name!r} (known: {', '.join(sorted(name_to_builder))})")
    if options is not None and not isinstance(options, Mapping):
        raise PolicyError(f"options: expected a mapping, got {type(options).__name__}")
    remaining = dict(options or {})
    policy = builder(n_actions, remaining, action_features, seed)
    if remaining:
        raise PolicyError(f"options: unknown option(s) {sorted(remaining)} for policy {name!r}")
    return policy


def load_policy(data: bytes) -> Policy:
    """Restore a policy from ``Policy.to_bytes()``; the type tag inside the bytes picks the class."""
    tag, state = decode_snapshot(data)
    cls = tag_to_class.get(tag)
    if cls is None:
        raise PolicyError(f"snapshot: unknown policy type {tag!r}")
    return cls.from_state(state)
