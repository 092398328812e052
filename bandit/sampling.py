"""Drawing actions from per-row distributions: the minimum share, the draw, and ``explored``.

``explored`` has one definition for every policy (:func:`top_set`): the drawn action is not among the
actions of highest probability in its row, ties included. It is a function of the logged distribution
alone, so an analyst can recompute it from the log, and a uniform distribution never explores, whatever
produced it.
"""

from __future__ import annotations

import numpy as np

from bandit.policy import Choices

TIE_TOLERANCE = 1e-12
#: Probabilities within this of a row's largest count as tied with it: Vowpal Wabbit reports its pmf in
#: float32 (a uniform pmf of 3 actions comes back as 0.33333331, 0.33333334, 0.33333334), whose spacing
#: below 1 is at most 6e-8, while Monte Carlo propensities move in steps of 1 / n_draws >= 1e-6.
PROBABILITY_TIE = 5e-7


def best_set(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Which allowed actions attain the row maximum of ``scores`` (ties all count).

    Parameters
    ----------
    scores : ndarray of float, shape (n, k) or (k,)
        Higher is better; ``+inf`` is allowed (an untried arm under UCB).
    allowed : ndarray of bool, same shape as ``scores``

    Returns
    -------
    ndarray of bool, same shape: True for the allowed actions tied at the best score.
    """
    masked = scores if allowed.all() else np.where(allowed, scores, -np.inf)
    top = masked.max(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        slack = TIE_TOLERANCE * np.maximum(1.0, np.abs(np.where(np.isfinite(top), top, 0.0)))
        # ``top - slack`` is ``top`` itself when top is infinite, so ``>=`` also keeps exact ties.
        return allowed & (masked >= top - slack)


def top_set(probabilities: np.ndarray) -> np.ndarray:
    """Which actions have the largest probability of their row, ties within :data:`PROBABILITY_TIE`.

    Parameters
    ----------
    probabilities : ndarray of float, shape (n, k) or (k,)

    Returns
    -------
    ndarray of bool, same shape. An action outside it that is drawn has ``explored`` True.
    """
    if probabilities.ndim == 2:  # numpy reduces rows of a few actions slowly: reduce the columns instead
        top = np.ascontiguousarray(probabilities.T).max(axis=0)[:, None]
    else:
        top = probabilities.max(axis=-1, keepdims=True)
    return (probabilities > 0) & (probabilities >= top - PROBABILITY_TIE)


def with_min_share(probabilities: np.ndarray, allowed: np.ndarray, min_share: float) -> np.ndarray:
    r"""Raise every allowed action to at least ``min_share``, scaling the others down in proportion.

    Per row, with :math:`s` = ``min_share`` and :math:`A` the allowed actions, the result is

    .. math:: p'_a = \max(s, \lambda p_a) \text{ for } a \in A,\quad p'_a = 0 \text{ otherwise},

    with :math:`\lambda \le 1` the one value that makes the row sum to 1. A row already at or above
    the floor is unchanged, the order of the actions is kept, and with
    :math:`|A| s \ge 1` the row is uniform over :math:`A`.

    Parameters
    ----------
    probabilities : ndarray of float, shape (n, k) or (k,)
        Rows that sum to 1 and are zero outside ``allowed``.
    allowed : ndarray of bool, same shape
    min_share : float in [0, 1]

    Returns
    -------
    ndarray of float, same shape.

    Examples
    --------
    >>> with_min_share(np.array([0.995, 0.005, 0.0]), np.array([True, True, True]), 0.01).tolist()
    [0.98, 0.01, 0.01]
    """
    if min_share <= 0:
        return probabilities
    p = np.atleast_2d(probabilities)
    mask = np.atleast_2d(allowed)
    every = bool(mask.all())
    ones = np.ones(p.shape[1])  # row sums as matrix products: numpy reduces rows of a few actions slowly
    counts = np.full((len(p), 1), p.shape[1]) if every else mask.sum(axis=1, keepdims=True)
    floored = p < min_share
    if not every:
        floored &= mask
    for _ in range(p.shape[1] + 1):  # each pass adds an action to the floor or stops
        rest = np.where(floored, 0.0, p)
        if not every:
            rest *= mask
        rest = (rest @ ones)[:, None]
        room = 1 - min_share * (floored @ ones)[:, None]
        scale = np.divide(room, rest, out=np.ones_like(rest), where=rest > 0)
        scaled = p * scale
        more = scaled < min_share
        if not every:
            more &= mask
        more |= floored
        if np.array_equal(more, floored):
            break
        floored = more
    out = np.where(floored, min_share, scaled)
    if not every:
        out *= mask
    uniform = counts * min_share >= 1 - TIE_TOLERANCE
    if uniform.any():
        out = np.where(uniform, mask / counts, out)
    return out.reshape(probabilities.shape)


def floored_split(members: np.ndarray, allowed: np.ndarray, min_share: float) -> np.ndarray:
    r"""``with_min_share(split_evenly(members), allowed, min_share)`` in closed form.

    With :math:`c` members among :math:`a` allowed actions and :math:`s` = ``min_share``, each member
    gets :math:`(1 - (a - c)s)/c` and every other allowed action :math:`s` (that share is at least
    :math:`s` whenever :math:`as \le 1`; at :math:`as \ge 1` the row is uniform over the allowed).

    Parameters
    ----------
    members : ndarray of bool, shape (n, k)
        At least one True per row, all of them allowed.
    allowed : ndarray of bool, shape (n, k)
    min_share : float in [0, 1 / k]

    Returns
    -------
    ndarray of float, shape (n, k).

    Examples
    --------
    >>> floored_split(np.array([[True, False, False]]), np.ones((1, 3), bool), 0.01).tolist()
    [[0.98, 0.01, 0.01]]
    """
    if min_share <= 0:
        return split_evenly(members)
    c = members.sum(axis=1, keepdims=True)
    a = allowed.shape[1] if allowed.all() else allowed.sum(axis=1, keepdims=True)
    out = np.where(members, (1 - min_share * (a - c)) / c, min_share)
    if not np.isscalar(a):
        out *= allowed
        uniform = a * min_share >= 1 - TIE_TOLERANCE
        if uniform.any():
            out = np.where(uniform, allowed / np.maximum(a, 1), out)
    elif a * min_share >= 1 - TIE_TOLERANCE:
        out = np.full(members.shape, 1.0 / a)
    return out


def pool_equal_arms(probabilities: np.ndarray, allowed: np.ndarray, *parameters: np.ndarray) -> np.ndarray:
    """Average Monte Carlo probabilities over the allowed actions whose parameters are all equal.

    Actions with the same posterior are exchangeable, so their probability of being best is the same;
    the average of their estimates is an unbiased estimate with less noise, and it makes a policy with
    no data exactly uniform (so its draws do not count as exploring by chance). Only rows where two
    allowed actions share the first parameter are compared in full.

    Parameters
    ----------
    probabilities : ndarray of float, shape (..., k)
    allowed : ndarray of bool, same shape
    *parameters : ndarray, same shape each
        The posterior parameters that decide an action's distribution (e.g. Beta's alpha and beta).

    Returns
    -------
    ndarray of float, same shape; rows keep their sums.
    """
    shape = probabilities.shape
    k = shape[-1]
    flat = probabilities.reshape(-1, k)
    mask = allowed.reshape(-1, k)
    values = [np.asarray(v).reshape(-1, k) for v in parameters]
    if values:
        candidates = _rows_with_equal_values(np.where(mask, values[0], np.nan))
    else:
        candidates = np.ones(len(flat), bool)
    if not candidates.any():
        return probabilities
    rows = slice(None) if candidates.all() else np.flatnonzero(candidates)
    same = mask[rows, :, None] & mask[rows, None, :]
    for value in values:
        same &= value[rows, :, None] == value[rows, None, :]
    size = same.sum(axis=-1)
    pooled = (same * flat[rows, None, :]).sum(axis=-1)
    out = flat.copy()
    out[rows] = np.where(size > 0, pooled / np.maximum(size, 1), flat[rows])
    return out.reshape(shape)


def _rows_with_equal_values(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (n, k) holding two equal entries (NaN equals nothing), shape (n,)."""
    k = values.shape[1]
    if k > 8:
        ordered = np.sort(values, axis=1)
        return (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    columns = np.ascontiguousarray(values.T)
    found = np.zeros(len(values), bool)
    for i in range(k):
        for j in range(i + 1, k):
            found |= columns[i] == columns[j]
    return found


def split_evenly(members: np.ndarray) -> np.ndarray:
    """A distribution that splits probability 1 evenly among the True entries of each row."""
    members = members.astype(np.float64)
    return members / members.sum(axis=-1, keepdims=True)


def sample_rows(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One action per row of ``probabilities`` (shape ``(n, k)``) by the inverse CDF of ``uniforms`` (n,).

    Zero-probability actions are never drawn; the result has shape ``(n,)`` and dtype int64.
    """
    # laid out (k, n): numpy reduces over the leading axis of a contiguous array far faster than over
    # rows of a few actions
    columns = np.ascontiguousarray(probabilities.T)
    k = len(columns)
    cdf = np.empty_like(columns)
    cdf[0] = columns[0]
    for j in range(1, k):  # the running sums in order, as np.cumsum adds them
        np.add(cdf[j - 1], columns[j], out=cdf[j])
    u = uniforms * cdf[-1]
    actions = (cdf <= u).sum(axis=0)
    # u can round up to the total: fall back to the last action with positive probability.
    last_positive = k - 1 - np.argmax(columns[::-1] > 0, axis=0)
    return np.minimum(actions, last_positive).astype(np.int64)


def sample_from(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One draw per uniform from one distribution of shape ``(k,)``; same rule as :func:`sample_rows`."""
    cdf = np.cumsum(probabilities)
    u = uniforms * cdf[-1]
    actions = np.searchsorted(cdf, u, side="right")
    last_positive = probabilities.shape[0] - 1 - int(np.argmax(probabilities[::-1] > 0))
    return np.minimum(actions, last_positive).astype(np.int64)


def make_choices(probabilities: np.ndarray, rng: np.random.Generator) -> Choices:
    """Draw from ``probabilities`` (n, k); ``explored`` is True where the draw is not in :func:`top_set`."""
    n = probabilities.shape[0]
    actions = sample_rows(probabilities, rng.random(n))
    rows = np.arange(n)
    return Choices(actions, probabilities[rows, actions], ~top_set(probabilities)[rows, actions])
