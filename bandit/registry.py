"""Build a policy from its name and options, and restore any policy from its snapshot."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bandit.features import check_dim
from bandit.fixed import FixedAllocation
from bandit.forgetting import check_discount, check_window_days
from bandit.greedy import EpsilonGreedy, check_epsilon
from bandit.inputs import check_finite, check_positive
from bandit.linear import LinearThompson, LinUCB
from bandit.options import check_min_share, check_n_draws, check_weights
from bandit.policy import FeatureValue, Policy, PolicyError
from bandit.snapshot import decode_snapshot
from bandit.thompson import BetaThompson, GaussianThompson
from bandit.ucb import UCB1, check_batch_size
from bandit.vw import VWContextualBandit, check_vw_command

Builder = Callable[[int, dict[str, Any], Sequence[Mapping[str, FeatureValue]] | None, int], Policy]


def _fixed(n: int, options: dict[str, Any], _features: Any, _seed: int) -> Policy:
    return FixedAllocation(n, options.pop("weights", None))


def _epsilon_greedy(n: int, options: dict[str, Any], _features: Any, _seed: int) -> Policy:
    return EpsilonGreedy(n, **_take(options, "epsilon_greedy"))


def _ucb(n: int, options: dict[str, Any], _features: Any, _seed: int) -> Policy:
    return UCB1(n, **_take(options, "ucb"))


def _thompson(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return BetaThompson(n, seed=seed, **_take(options, "thompson"))


def _gaussian_thompson(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return GaussianThompson(n, seed=seed, **_take(options, "gaussian_thompson"))


def _linear_ts(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return LinearThompson(n, seed=seed, **_take(options, "linear_ts"))


def _linucb(n: int, options: dict[str, Any], _features: Any, seed: int) -> Policy:
    return LinUCB(n, seed=seed, **_take(options, "linucb"))


def _vw(n: int, options: dict[str, Any], features: Any, seed: int) -> Policy:
    return VWContextualBandit(n, seed=seed, action_features=features, **_take(options, "vw"))


def _take(options: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: options.pop(key) for key in name_to_option_checks[name] if key in options}


OptionCheck = Callable[[Any, int], object]


def _positive(key: str) -> OptionCheck:
    return lambda value, _n: check_positive(key, value)


def _finite(key: str) -> OptionCheck:
    return lambda value, _n: check_finite(key, value)


_N_DRAWS: OptionCheck = lambda value, _n: check_n_draws(value)  # noqa: E731
_DIM: OptionCheck = lambda value, _n: check_dim(value)  # noqa: E731
#: Every adaptive policy takes ``min_share``; the non-contextual ones also forget on request. As in the
#: constructors, null means the default (the default floor; no forgetting).
_FLOOR: dict[str, OptionCheck] = {
    "min_share": lambda value, n: None if value is None else check_min_share(value, n),
}
_FORGETTING: dict[str, OptionCheck] = {
    "discount": lambda value, _n: None if value is None else check_discount(value),
    "window_days": lambda value, _n: None if value is None else check_window_days(value),
}

#: Per policy, each option it takes and the check its constructor applies to it, as
#: ``check(value, n_actions)`` raising :class:`PolicyError` (see :func:`option_problems`).
name_to_option_checks: dict[str, dict[str, OptionCheck]] = {
    "fixed": {"weights": lambda value, n: check_weights("options.weights", value, n)},
    "epsilon_greedy": {
        "epsilon": lambda value, _n: check_epsilon(value),
        "initial_value": _finite("initial_value"),
        **_FLOOR, **_FORGETTING,
    },
    "ucb": {"alpha": _positive("alpha"), "batch_size": lambda value, _n: check_batch_size(value),
            **_FLOOR, **_FORGETTING},
    "thompson": {"prior_alpha": _positive("prior_alpha"), "prior_beta": _positive("prior_beta"),
                 "n_draws": _N_DRAWS, **_FLOOR, **_FORGETTING},
    "gaussian_thompson": {
        "prior_mean": _finite("prior_mean"),
        "prior_count": _positive("prior_count"),
        "prior_alpha": _positive("prior_alpha"),
        "prior_beta": _positive("prior_beta"),
        "n_draws": _N_DRAWS,
        **_FLOOR, **_FORGETTING,
    },
    "linear_ts": {"scale": _positive("scale"), "n_draws": _N_DRAWS, "dim": _DIM,
                  "regularization": _positive("regularization"), **_FLOOR},
    "linucb": {"alpha": _positive("alpha"), "dim": _DIM, "regularization": _positive("regularization"),
               **_FLOOR},
    "vw": {"vw_args": lambda value, _n: check_vw_command(value), **_FLOOR},
}


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


def option_problems(name: str, options: Mapping[str, Any], n_actions: int) -> list[tuple[str, str]]:
    """Every problem of a policy's options at once, without building the policy.

    Each option is checked on its own by the check its constructor applies (``vw_args`` is also parsed
    by Vowpal Wabbit), and every option the policy does not take is named.

    Parameters
    ----------
    name : str
        A policy name of :func:`make_policy`; an unknown name has no options to check (empty list).
    options : mapping
    n_actions : int
        The number of actions (``fixed`` checks its ``weights`` against it).

    Returns
    -------
    list of (option, message)
        In the options' order; empty when every option is fine.

    Examples
    --------
    >>> option_problems("epsilon_greedy", {"epsilon": 2}, 3)
    [('epsilon', 'must lie in [0, 1], got 2')]
    >>> option_problems("linucb", {"beta": 1}, 3)
    [('beta', "unknown option for policy 'linucb' (it takes: alpha, dim, regularization, min_share)")]
    """
    checks = name_to_option_checks.get(name)
    if checks is None:
        return []
    problems = []
    for key, value in options.items():
        check = checks.get(key)
        if check is None:
            known = ", ".join(checks) or "no options"
            problems.append((str(key), f"unknown option for policy {name!r} (it takes: {known})"))
            continue
        try:
            check(value, n_actions)
        except PolicyError as exc:
            message = str(exc)
            prefix = f"options.{key}: "
            problems.append((str(key), message[len(prefix):] if message.startswith(prefix) else message))
    return problems


def load_policy(data: bytes) -> Policy:
    """Restore a policy from ``Policy.to_bytes()``; the type tag inside the bytes picks the class."""
    tag, state = decode_snapshot(data)
    cls = tag_to_class.get(tag)
    if cls is None:
        raise PolicyError(f"snapshot: unknown policy type {tag!r}")
    return cls.from_state(state)
