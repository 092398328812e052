r"""The probability that each of independent normal scores is the largest.

Linear Thompson sampling draws, per row, independent scores :math:`X_a \sim N(m_a, s_a^2)` and takes
the largest; the propensity of action :math:`i` is

.. math:: P_i = P\big(X_i = \max_a X_a\big)
        = \int f_i(t) \prod_{j \ne i} F_j(t)\, dt,

with :math:`f_j, F_j` the density and distribution function of :math:`X_j`. Equivalently, with
:math:`X_i = m_i + s_i Z`, the differences :math:`D_j = X_i - X_j` share the one factor :math:`Z`
and are independent given it, which is the same integral in :math:`Z`.

It is computed row by row in four cases:

1. actions that cannot win get 0: an action whose chance to beat the row's leader (the largest mean)
   is below :data:`NEGLIGIBLE` (a z-score above 8.3) is dropped, which moves no probability by more
   than that bound;
2. with two actions left, the closed form :math:`P_i = \Phi\big((m_i - m_j)/\sqrt{s_i^2 + s_j^2}\big)`;
3. with three or more, the integral over :math:`t` by the midpoint rule on :math:`[L, U]`, all actions
   on one grid. Outside it the maximum lies with probability at most :data:`TAIL` on each side:
   :math:`U = \max_j(m_j + c\, s_j)` with :math:`k\,\Phi(-c) =` :data:`TAIL`, and :math:`L` solves
   :math:`\sum_j \log F_j(L) = \log` :data:`TAIL` (the maximum's distribution function there) by
   Newton's method from the left, which stays left of the root because the sum is concave. The step
   is :math:`\sigma \cdot` :data:`STEP_PER_SD`, where :math:`\sigma = (\sum_j s_j^{-2})^{-1/2}` over
   the remaining actions. The integrand is entire and decays like a normal density, so the rule
   converges like :math:`e^{-2\pi^2(\sigma/h)^2}` (the product of ``k`` factors is as steep as one
   normal of sd :math:`\sigma`): 3.3e-7 at the chosen step, which with the two tails bounds the error
   by :data:`MIDPOINT_ERROR` (the 1e-6 that issue 19 asks of a logged propensity, with room). The
   distribution functions come from :mod:`bandit.normal_tail` (relative error below 2e-11), the
   densities from a recurrence along each action's nodes; the grid and the sums are compiled code
   (:mod:`bandit.midpoint_rule`, numba), which evaluates rows with the same number of nodes side by
   side;
4. rows that would need more than :data:`MAX_NODES` nodes (widths far apart: the step follows the
   narrowest, the span the widest) by composite Gauss–Legendre quadrature instead: the panels
   end at :math:`m_j + c\, s_j` for every remaining action and each :math:`c` in :data:`PANEL_ENDS`,
   so every density and every step of a distribution function is resolved at its own scale, however
   different the widths (a product of steep and flat factors defeats a Gauss–Hermite rule in one
   action's variable); outside :math:`[\max_j(m_j - 8.5 s_j), \max_j(m_j + 8.5 s_j)]` the integrand
   is below 1e-16.

Each row is normalised to sum to 1. The midpoint rule is within :data:`MIDPOINT_ERROR` of adaptive
integration (about 1e-7 at worst on random rows of 3 to 8 actions, alike or with widths up to 20
apart; 6e-9 on the rows of ``benchmarks.linear``), and the panel rule within 1e-11 (tests, with
widths up to 1000 apart, and up to 200 apart on random rows). A caller that draws from these
probabilities logs the exact probability of its draw.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.legendre import leggauss

#: An action whose chance to beat the leader is below this gets probability 0.
NEGLIGIBLE = 5e-17
_PRUNE_Z = 8.3  # Phi(-8.3) = 5.2e-17
_SPAN = 8.5
#: Panel ends, in standard deviations of each remaining action around its mean.
PANEL_ENDS = np.array([-_SPAN, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, _SPAN])
_NODES, _WEIGHTS = leggauss(8)
_ROWS_PER_BLOCK = 512
#: The probability of the maximum below the midpoint rule's span, and above it.
TAIL = 1e-8
_LOG_TAIL = math.log(TAIL)
_LOW_Z = -5.612001244174789  # Phi(_LOW_Z) = TAIL
#: The midpoint rule's step, in units of the combined sd of the remaining actions.
STEP_PER_SD = 1.15
#: The midpoint rule's error bound: exp(-2 pi^2 / STEP_PER_SD^2) = 3.3e-7, the tails and room.
MIDPOINT_ERROR = 5e-7
#: Rows whose midpoint rule would need more nodes go to the panel rule.
MAX_NODES = 128
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _ndtr(x: np.ndarray) -> np.ndarray:
    """The standard normal distribution function, from ``scipy.special`` (imported on first use:
    importing it is dear, and only linear Thompson sampling's propensities need it)."""
    from scipy.special import ndtr

    return ndtr(x)


def _ndtri(p: np.ndarray | float) -> np.ndarray:
    """Its inverse, likewise."""
    from scipy.special import ndtri

    return ndtri(p)


def probability_of_max(mean: np.ndarray, sd: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the probability that each allowed action's normal score is the largest.

    Parameters
    ----------
    mean, sd : ndarray of float, shape (n, k)
        The scores' means and standard deviations (``sd`` > 0 where allowed).
    allowed : ndarray of bool, shape (n, k)
        At least one True per row; other actions get probability 0.

    Returns
    -------
    ndarray of float, shape (n, k)
        Rows sum to 1.

    Examples
    --------
    >>> p = probability_of_max(np.array([[0.0, 0.0, 0.0]]), np.ones((1, 3)), np.ones((1, 3), bool))
    >>> np.round(p, 12).tolist()
    [[0.333333333333, 0.333333333333, 0.333333333333]]
    """
    n, k = mean.shape
    masked = np.where(allowed, mean, -np.inf)
    leader = np.argmax(masked, axis=1)
    rows = np.arange(n)
    lead_mean, lead_sd = mean[rows, leader][:, None], sd[rows, leader][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (lead_mean - mean) / np.sqrt(lead_sd**2 + sd**2)
    contending = allowed & ~(gap > _PRUNE_Z)
    contending[rows, leader] = True
    count = np.full(n, k) if contending.all() else contending.sum(axis=1)
    out = np.zeros((n, k))
    single = count == 1
    out[single, leader[single]] = 1.0
    pair = np.flatnonzero(count == 2)
    if pair.size:
        out[pair] = _two(mean[pair], sd[pair], contending[pair])
    many = np.flatnonzero(count > 2)
    if many.size:
        from bandit import midpoint_rule  # compiled by numba: imported only when a row needs the rule

        every = many.size == n  # no copies when every row has three or more
        part = [np.ascontiguousarray(a if every else a[many], dtype=t)
                for a, t in ((mean, np.float64), (sd, np.float64), (contending, bool))]
        low, step, nodes = midpoint_grid(*part)
        near = out if every else np.zeros((many.size, k))
        midpoint_rule.midpoint_rule(*part, low, step, nodes, MAX_NODES, near)
        if not every:
            out[many] = near
        far = many[nodes > MAX_NODES]
        for start in range(0, far.size, _ROWS_PER_BLOCK):
            rows = far[start:start + _ROWS_PER_BLOCK]
            out[rows] = _quadrature(mean[rows], sd[rows], contending[rows])
    return out


def warm_up() -> None:
    """Compile the midpoint rule's kernels now, or load them from numba's on-disk cache: one row of three
    alike actions. A process that will need linear Thompson sampling's propensities calls it ahead of
    its first decision (``sendlab serve``: :mod:`api.warm_up`), which otherwise waits for numba."""
    probability_of_max(np.zeros((1, 3)), np.ones((1, 3)), np.ones((1, 3), dtype=bool))


def midpoint_grid(mean: np.ndarray, sd: np.ndarray,
                  contending: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (m,): the midpoint rule's start :math:`L`, its step and its node count (``MAX_NODES + 1``
    for any more; a multiple of 4), for rows of ``mean``, ``sd`` (m, k) with three or more
    ``contending`` actions (:func:`bandit.midpoint_rule.midpoint_grid`)."""
    from bandit import midpoint_rule  # compiled by numba: imported only when a row needs the rule

    m, k = mean.shape
    low, step, nodes = np.empty(m), np.empty(m), np.empty(m, np.int64)
    high_z = -float(_ndtri(TAIL / k))  # k Phi(-z) = TAIL
    midpoint_rule.midpoint_grid(np.ascontiguousarray(mean, dtype=np.float64),
                                np.ascontiguousarray(sd, dtype=np.float64), np.ascontiguousarray(contending),
                                _LOW_Z, high_z, _LOG_TAIL, STEP_PER_SD, MAX_NODES, low, step, nodes)
    return low, step, nodes


def _two(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray) -> np.ndarray:
    """Rows with exactly two contending actions: the normal difference in closed form."""
    m = len(mean)
    first = np.argmax(contending, axis=1)
    second = contending.shape[1] - 1 - np.argmax(contending[:, ::-1], axis=1)
    rows = np.arange(m)
    z = (mean[rows, first] - mean[rows, second]) / np.hypot(sd[rows, first], sd[rows, second])
    out = np.zeros(mean.shape)
    out[rows, first] = _ndtr(z)
    out[rows, second] = _ndtr(-z)
    return out


def _integrand(t: np.ndarray, mean: np.ndarray, sd: np.ndarray, contending: np.ndarray,
               row: np.ndarray) -> np.ndarray:
    r"""At nodes ``t`` (p,) of rows ``row`` (p,): each action's :math:`f_i(t) \prod_{j \ne i} F_j(t)`,
    shape (k, p).

    It is computed as :math:`\prod_j F_j(t) \cdot f_i(t) / F_i(t)`: where :math:`F_i(t)` underflows
    to 0 so does the product, and the term is 0 (its true value is below :math:`|z_i|` times the
    smallest double).
    """
    # A non-contending action becomes a score of -inf: its F is 1 and its f is 0 at every node.
    centre = np.where(contending, mean, -np.inf).T[:, row]  # (k, p)
    scale = np.where(contending, sd, 1.0).T[:, row]
    u = (t - centre) / scale
    cdf = _ndtr(u)
    hazard = np.exp(-0.5 * u * u)
    hazard *= _INV_SQRT_2PI / scale
    np.divide(hazard, cdf, out=hazard, where=cdf > 0)
    product = cdf[0].copy()
    for factor in cdf[1:]:
        product *= factor
    hazard *= product
    return hazard


def _row_sums(weighted: np.ndarray, starts: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Sum the consecutive node blocks of ``weighted`` (k, p) that begin at ``starts``: per row (m, k),
    scaled and normalised."""
    out = np.add.reduceat(weighted, starts, axis=1).T * scale
    return out / out.sum(axis=1, keepdims=True)


def _quadrature(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray) -> np.ndarray:
    r"""Rows with three or more contending actions: composite Gauss–Legendre over the score.

    Panels of zero width (ends clipped to the range, or shared by two actions) are dropped, and the
    rest of every row laid end to end, so that each node does work.
    """
    m = len(mean)
    low = np.where(contending, mean - _SPAN * sd, -np.inf).max(axis=1, keepdims=True)
    high = np.where(contending, mean + _SPAN * sd, -np.inf).max(axis=1, keepdims=True)
    ends = mean[:, :, None] + sd[:, :, None] * PANEL_ENDS  # (m, k, c)
    ends = np.where(contending[:, :, None], ends, low[:, :, None])
    ends = np.sort(np.clip(ends.reshape(m, -1), low, high), axis=1)
    width = np.diff(ends, axis=1)
    row, panel = np.nonzero(width > 0)  # row-major: each row's panels are consecutive
    left, half = ends[row, panel], 0.5 * width[row, panel]
    t = (left + half)[:, None] + half[:, None] * _NODES  # (p, q)
    values = _integrand(t.ravel(), mean, sd, contending, np.repeat(row, len(_NODES)))
    per_panel = values.reshape(len(values), len(row), len(_NODES)) @ _WEIGHTS * half  # (k, p)
    return _row_sums(per_panel, np.flatnonzero(np.r_[True, row[1:] != row[:-1]]), 1.0)
