r"""The probability that each of independent normal scores is the largest.

Linear Thompson sampling draws, per row, independent scores :math:`X_a \sim N(m_a, s_a^2)` and takes
the largest; the propensity of action :math:`i` is

.. math:: P_i = P\big(X_i = \max_a X_a\big)
        = \int f_i(t) \prod_{j \ne i} F_j(t)\, dt,

with :math:`f_j, F_j` the density and distribution function of :math:`X_j`. Equivalently, with
:math:`X_i = m_i + s_i Z`, the differences :math:`D_j = X_i - X_j` share the one factor :math:`Z`
and are independent given it, which is the same integral in :math:`Z`.

It is computed row by row in three cases:

1. actions that cannot win get 0: an action whose chance to beat the row's leader (the largest mean)
   is below :data:`NEGLIGIBLE` (a z-score above 8.3) is dropped, which moves no probability by more
   than that bound;
2. with two actions left, the closed form :math:`P_i = \Phi\big((m_i - m_j)/\sqrt{s_i^2 + s_j^2}\big)`;
3. with three or more, the integral over :math:`t` by the midpoint rule on
   :math:`[\max_j(m_j - 7 s_j), \max_j(m_j + 7 s_j)]` (outside it the maximum lies with probability
   below :math:`(k + 1)\Phi(-7) < 10^{-11}`) with a step of :math:`\sigma / 1.2`, where
   :math:`\sigma = (\sum_j s_j^{-2})^{-1/2}` over the remaining actions. The integrand is entire and
   decays like a normal density, so the rule converges like :math:`e^{-2\pi^2(\sigma/h)^2}` (the
   product of ``k`` factors is as steep as one normal of sd :math:`\sigma`): about 35 nodes a row
   when the widths are alike;
4. rows that would need more than :data:`MAX_NODES` nodes (widths far apart: the step follows the
   narrowest, the span the widest) by composite Gauss–Legendre quadrature instead: the panels
   end at :math:`m_j + c\, s_j` for every remaining action and each :math:`c` in :data:`PANEL_ENDS`,
   so every density and every step of a distribution function is resolved at its own scale, however
   different the widths (a product of steep and flat factors defeats a Gauss–Hermite rule in one
   action's variable); outside :math:`[\max_j(m_j - 8.5 s_j), \max_j(m_j + 8.5 s_j)]` the integrand
   is below 1e-16.

Each row is normalised to sum to 1. Both rules are within 1e-11 of adaptive integration (tests, with
widths up to 1000 apart, and up to 100 apart on random rows). A caller that draws from these
probabilities logs the exact probability of its draw.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy.special import ndtr

#: An action whose chance to beat the leader is below this gets probability 0.
NEGLIGIBLE = 5e-17
_PRUNE_Z = 8.3  # Phi(-8.3) = 5.2e-17
_SPAN = 8.5
#: Panel ends, in standard deviations of each remaining action around its mean.
PANEL_ENDS = np.array([-_SPAN, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, _SPAN])
_NODES, _WEIGHTS = leggauss(8)
_ROWS_PER_BLOCK = 512
_MIDPOINT_SPAN = 7.0
#: The midpoint rule's step is the combined sd of the remaining actions divided by this.
NODES_PER_SD = 1.2
#: Rows whose midpoint rule would need more nodes go to the panel rule.
MAX_NODES = 128
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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
    count = contending.sum(axis=1)
    out = np.zeros((n, k))
    single = count == 1
    out[single, leader[single]] = 1.0
    pair = np.flatnonzero(count == 2)
    if pair.size:
        out[pair] = _two(mean[pair], sd[pair], contending[pair])
    many = np.flatnonzero(count > 2)
    if many.size:
        near = _midpoint_grid(mean[many], sd[many], contending[many])[0] <= MAX_NODES
        for rows, quadrature in ((many[near], _midpoint), (many[~near], _quadrature)):
            for start in range(0, rows.size, _ROWS_PER_BLOCK):
                part = rows[start:start + _ROWS_PER_BLOCK]
                out[part] = quadrature(mean[part], sd[part], contending[part])
    return out


def _midpoint_grid(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: the midpoint rule's node count (m,; ``MAX_NODES + 1`` for any more), its start and its
    step (m, 1) each."""
    low = np.where(contending, mean - _MIDPOINT_SPAN * sd, -np.inf).max(axis=1, keepdims=True)
    high = np.where(contending, mean + _MIDPOINT_SPAN * sd, -np.inf).max(axis=1, keepdims=True)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # widths near 0: no midpoint rule
        combined = 1.0 / np.sqrt((np.where(contending, sd, np.inf) ** -2.0).sum(axis=1, keepdims=True))
        nodes = np.ceil((high - low) * NODES_PER_SD / combined)[:, 0]
    nodes = np.where(nodes <= MAX_NODES, nodes, MAX_NODES + 1).astype(np.int64)  # also NaN and inf
    return nodes, low, (high - low) / nodes[:, None]


def _two(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray) -> np.ndarray:
    """Rows with exactly two contending actions: the normal difference in closed form."""
    m = len(mean)
    first = np.argmax(contending, axis=1)
    second = contending.shape[1] - 1 - np.argmax(contending[:, ::-1], axis=1)
    rows = np.arange(m)
    z = (mean[rows, first] - mean[rows, second]) / np.hypot(sd[rows, first], sd[rows, second])
    out = np.zeros(mean.shape)
    out[rows, first] = ndtr(z)
    out[rows, second] = ndtr(-z)
    return out


def _midpoint(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray) -> np.ndarray:
    """Rows with three or more contending actions and alike widths: the midpoint rule over the score."""
    nodes, low, step = _midpoint_grid(mean, sd, contending)
    row = np.repeat(np.arange(len(mean)), nodes)
    starts = np.cumsum(nodes) - nodes
    index = np.arange(row.size) - starts[row] + 0.5
    t = low[row, 0] + step[row, 0] * index
    return _row_sums(_integrand(t, mean, sd, contending, row), starts, step)


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
    cdf = ndtr(u)
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
