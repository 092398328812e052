r"""Why a contextual policy prefers an action: per-feature contributions and feature importance.

Pure functions of a policy and contexts:

- :func:`linear_contributions`: for the linear policies (LinUCB, linear Thompson sampling), exactly
  how much each recipient feature adds to an action's predicted reward *relative to the other allowed
  actions*, from the ridge coefficients :math:`\hat\theta_a`:

  .. math:: c_f = x_f \left(\hat\theta_{a, j(f)} - \frac{1}{|A|}\sum_{b \in A} \hat\theta_{b, j(f)}\right)

  where :math:`j(f)` is the hashed column of feature ``f`` (with its sign folded into :math:`x_f`).
  A feature that raises every action's prediction alike contributes nothing: it does not decide.
- :func:`vw_contributions`: the same for Vowpal Wabbit, from VW's own linear score: the weight x value
  of each feature of the action's example that carries a recipient attribute (its shared feature and,
  with ``-q UA``, its quadratic features with the action's features), as VW hashes them, relative to
  the other allowed actions and with the sign turned from cost to reward
  (:meth:`bandit.vw.VWContextualBandit.score_terms`):

  .. math:: c_f = -\left(s_{a, f} - \frac{1}{|A|}\sum_{b \in A} s_{b, f}\right)

- :func:`ablation_effects`: for any policy, how much the probability of one row's action changes when
  one attribute is left out of its context (treated as missing); the fallback for a VW model whose
  weights cannot be read as above.
- :func:`permutation_importance`: for any policy, how much the policy's distribution moves when one
  attribute's values are shuffled across the rows (:math:`\pi` a random permutation):

  .. math::

      I_f = \frac{1}{n}\sum_i \tfrac12
            \lVert p(\cdot \mid x_i) - p(\cdot \mid x_i[f \leftarrow x_{\pi(i), f}])\rVert_1

  in [0, 1]; 0 means the policy ignores the attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bandit.features import hashed_slot
from bandit.inputs import context_rows
from bandit.linear import LinearThompson, LinUCB
from bandit.policy import Context, FeatureValue, Policy, PolicyError
from bandit.vw import VWContextualBandit


@dataclass(frozen=True)
class FeatureContribution:
    """One recipient feature's push on the chosen action's score (positive: towards it)."""

    attribute: str
    value: FeatureValue
    contribution: float


def _token(name: str, value: FeatureValue) -> tuple[str, float]:
    """The hashed token of a feature and its numeric value (1 for categories), as the hasher encodes it."""
    if isinstance(value, bool | np.bool_):
        return f"{name}={'true' if bool(value) else 'false'}", 1.0
    if isinstance(value, str):
        return f"{name}={value}", 1.0
    return name, float(value)


def _checked_mask(n_actions: int, action: object, allowed: np.ndarray | None) -> np.ndarray:
    """The mask (n_actions,) of the actions ``action`` was chosen among; refuse a bad action or mask."""
    valid = isinstance(action, int | np.integer) and not isinstance(action, bool)
    if not valid or not 0 <= action < n_actions:  # type: ignore[operator]
        raise PolicyError(f"action: expected an integer in [0, {n_actions}), got {action!r}")
    mask = np.ones(n_actions, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if mask.shape != (n_actions,) or not mask[action]:  # type: ignore[index]
        raise PolicyError(f"allowed: expected {n_actions} booleans that allow action {action}")
    return mask


def linear_contributions(
    policy: LinUCB | LinearThompson,
    context: Context,
    action: int,
    allowed: np.ndarray | None = None,
) -> list[FeatureContribution]:
    """Each feature's contribution to ``action``'s predicted reward, relative to the allowed actions.

    Parameters
    ----------
    policy : LinUCB or LinearThompson
    context : mapping of str to feature value
        One recipient's features (``None`` values are missing and left out).
    action : int
        The action to explain (usually the chosen one).
    allowed : ndarray of bool, shape (n_actions,), optional
        The actions it was chosen among (default: all).

    Returns
    -------
    list of FeatureContribution
        Sorted by absolute contribution, largest first. Features that share a hashed column share it.
    """
    if not isinstance(policy, LinUCB | LinearThompson):
        raise PolicyError(f"policy: linear contributions need a linear policy, got {type(policy).__name__}")
    row = context_rows([context])[0]
    mask = _checked_mask(policy.n_actions, action, allowed)
    theta = policy.coefficients()
    relative = theta[action] - theta[mask].mean(axis=0)
    out = []
    for name, value in row.items():
        if value is None:
            continue
        token, x = _token(name, value)
        column, sign = hashed_slot(token, policy.hasher.dim)
        out.append(FeatureContribution(name, value, float(sign * x * relative[column])))
    return sorted(out, key=lambda c: -abs(c.contribution))


def vw_contributions(
    policy: VWContextualBandit,
    context: Context,
    action: int,
    allowed: np.ndarray | None = None,
) -> list[FeatureContribution] | None:
    """Each attribute's contribution to ``action``'s predicted reward under Vowpal Wabbit's linear score,
    relative to the allowed actions; None when VW's weights cannot be read for this model (see
    :meth:`bandit.vw.VWContextualBandit.score_terms`).

    Parameters
    ----------
    policy : VWContextualBandit
    context : mapping of str to feature value
    action : int
        The action to explain (usually the chosen one); it must be allowed.
    allowed : ndarray of bool, shape (n_actions,), optional
        The actions it was chosen among (default: all).

    Returns
    -------
    list of FeatureContribution or None
        Sorted by absolute contribution, largest first.
    """
    mask = _checked_mask(policy.n_actions, action, allowed)
    found = policy.score_terms(context, mask)
    if found is None:
        return None
    _, attribute_to_terms = found
    row = context_rows([context])[0]
    out = [
        FeatureContribution(name, row[name], float(-(terms[action] - terms[mask].mean())))
        for name, terms in attribute_to_terms.items()
    ]
    return sorted(out, key=lambda c: -abs(c.contribution))


def _without(rows: Sequence[Mapping[str, FeatureValue]], attribute: str) -> list[dict[str, FeatureValue]]:
    return [{k: v for k, v in row.items() if k != attribute} for row in rows]


def ablation_effects(
    policy: Policy,
    contexts: Sequence[Context],
    actions: np.ndarray,
    allowed: np.ndarray | None = None,
) -> list[list[FeatureContribution]]:
    """Per row, how much each present attribute raises the probability of that row's action.

    ``contribution = p(action | x) - p(action | x without the attribute)``; rows sorted by absolute
    contribution, largest first. Works for any policy, Vowpal Wabbit included.

    Parameters
    ----------
    contexts : sequence of mappings, length n
    actions : ndarray of int, shape (n,)
    allowed : ndarray of bool, shape (n, n_actions), optional
    """
    rows = context_rows(list(contexts))
    actions = np.asarray(actions, dtype=np.int64).reshape(-1)
    if actions.shape[0] != len(rows):
        raise PolicyError(f"actions: expected {len(rows)} actions, got {actions.shape[0]}")
    base = policy.probabilities(rows, allowed=allowed)
    index = np.arange(len(rows))
    out: list[list[FeatureContribution]] = [[] for _ in rows]
    names = sorted({k for row in rows for k, v in row.items() if v is not None})
    for name in names:
        without = policy.probabilities(_without(rows, name), allowed=allowed)
        delta = base[index, actions] - without[index, actions]
        for i, row in enumerate(rows):
            if row.get(name) is not None:
                out[i].append(FeatureContribution(name, row[name], float(delta[i])))
    return [sorted(items, key=lambda c: -abs(c.contribution)) for items in out]


def permutation_importance(
    policy: Policy,
    contexts: Sequence[Context],
    attributes: Sequence[str],
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
    repeats: int = 3,
) -> dict[str, float]:
    """How far the policy's distribution moves when one attribute's values are shuffled across rows.

    Permutation importance (Breiman 2001, "Random forests", section 10): an attribute the policy
    relies on moves the distribution when recipients swap their values of it; a constant or ignored
    one does not. Shuffling keeps each attribute's distribution (numbers are never set to an
    out-of-range 0, categories never to an unseen "missing"), so numeric and categorical attributes
    compare fairly.

    Parameters
    ----------
    contexts : sequence of mappings, length n (n >= 1)
    attributes : sequence of str
        The attributes to score (usually the design's context).
    rng : numpy Generator
        Draws the permutations.
    allowed : ndarray of bool, shape (n, n_actions), optional
    repeats : int, >= 1
        Permutations averaged per attribute.

    Returns
    -------
    dict of str to float
        ``attribute_to_importance``: the mean total-variation distance in [0, 1], largest first.
    """
    rows = context_rows(list(contexts))
    if not rows:
        raise PolicyError("contexts: at least one context is needed")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise PolicyError(f"repeats: expected an integer >= 1, got {repeats!r}")
    base = policy.probabilities(rows, allowed=allowed)
    importance = {}
    for name in attributes:
        values = [row.get(name) for row in rows]
        shifts = []
        for _ in range(repeats):
            order = rng.permutation(len(rows))
            shuffled = []
            for row, j in zip(rows, order, strict=True):
                new = {k: v for k, v in row.items() if k != name}
                if values[j] is not None:
                    new[name] = values[j]
                shuffled.append(new)
            moved = policy.probabilities(shuffled, allowed=allowed)
            shifts.append(0.5 * np.abs(base - moved).sum(axis=1).mean())
        importance[name] = float(np.mean(shifts))
    return dict(sorted(importance.items(), key=lambda kv: -kv[1]))
