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
   densities from a recurrence along each action's nodes (:meth:`_Workspace.sums`), all rows with the
   same number of actions and of nodes as one array;
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

from bandit.normal_tail import WORK_ROWS, cdf_and_hazard, cdf_from_density

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
_NEWTON_STEPS = 1
_LOG_PRODUCT = 30  # TAIL ** 30 = 1e-240: still a normal double
_LOW_Z = -5.612001244174789  # Phi(_LOW_Z) = TAIL
#: The midpoint rule's step, in units of the combined sd of the remaining actions.
STEP_PER_SD = 1.15
#: The midpoint rule's error bound: exp(-2 pi^2 / STEP_PER_SD^2) = 3.3e-7, the tails and room.
MIDPOINT_ERROR = 5e-7
#: Rows whose midpoint rule would need more nodes go to the panel rule.
MAX_NODES = 128
_NODE_MULTIPLE = 4  # node counts are rounded up to this, so that rows share arrays
_BLOCK = 1 << 15  # nodes times actions evaluated at once
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
        chosen = slice(None) if many.size == n else many  # no copies when every row has three or more
        low, step, nodes = midpoint_grid(mean[chosen], sd[chosen], contending[chosen])
        near = nodes <= MAX_NODES
        if near.all():
            out[chosen] = _midpoint(mean[chosen], sd[chosen], contending[chosen], low, step, nodes)
        elif near.any():
            rows = many[near]
            out[rows] = _midpoint(mean[rows], sd[rows], contending[rows], low[near], step[near], nodes[near])
        far = many[~near]
        for start in range(0, far.size, _ROWS_PER_BLOCK):
            part = far[start:start + _ROWS_PER_BLOCK]
            out[part] = _quadrature(mean[part], sd[part], contending[part])
    return out


def midpoint_grid(mean: np.ndarray, sd: np.ndarray,
                  contending: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (m,): the midpoint rule's start :math:`L`, its step and its node count (``MAX_NODES + 1``
    for any more; a multiple of 4), for rows of ``mean``, ``sd`` (m, k) with three or more
    ``contending`` actions."""
    # laid out (k, m): numpy reduces over the leading axis of a contiguous array far faster than over
    # rows of a few actions
    every = bool(contending.all())
    mean, sd = np.ascontiguousarray(mean.T), np.ascontiguousarray(sd.T)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # widths near 0: no midpoint rule
        inverse = 1.0 / sd
        start = mean + _LOW_Z * sd
        end = mean - _ndtri(TAIL / len(mean)) * sd  # k Phi(-z) = TAIL
        if not every:
            out = ~contending.T
            inverse[out] = 0.0
            start[out] = -np.inf
            end[out] = -np.inf
        low = start.max(axis=0)
        for _ in range(_NEWTON_STEPS):  # Newton's method on sum_j log F_j(L) = log TAIL, from the left
            z = (low - mean) * inverse
            if not every:
                z[out] = np.inf  # an action left out counts as F = 1
            cdf, hazard = cdf_and_hazard(z)
            hazard *= inverse
            # every F_j(L) >= TAIL at the start, so a product of up to _LOG_PRODUCT of them is a normal
            # double, and one log per row takes the place of one per action
            log = np.log(np.prod(cdf, axis=0)) if len(cdf) <= _LOG_PRODUCT else np.log(cdf).sum(axis=0)
            move = (_LOG_TAIL - log) / hazard.sum(axis=0)
            low += np.where(move > 0, move, 0.0)  # also NaN
        high = end.max(axis=0)
        inverse *= inverse
        combined = 1.0 / np.sqrt(inverse.sum(axis=0))
        nodes = np.ceil((high - low) / (combined * STEP_PER_SD * _NODE_MULTIPLE))
    nodes = np.where(nodes * _NODE_MULTIPLE <= MAX_NODES, nodes * _NODE_MULTIPLE, MAX_NODES + 1)  # NaN, inf
    nodes = nodes.astype(np.int64)
    return low, (high - low) / np.maximum(nodes, 1), nodes


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


def _midpoint(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray, low: np.ndarray, step: np.ndarray,
              nodes: np.ndarray) -> np.ndarray:
    """Rows (m, k) with three or more contending actions and their grids (m,): the midpoint rule.

    Rows with the same number of contending actions and of nodes are evaluated together, the
    contending actions moved to the front of each row.
    """
    m, k = mean.shape
    every = bool(contending.all())
    count = np.full(m, k) if every else contending.sum(axis=1)
    key = nodes if every else count * (MAX_NODES + 1) + nodes
    by_key = np.argsort(key, kind="stable")
    key = key[by_key]
    mean, sd, contending = mean[by_key], sd[by_key], contending[by_key]
    low, step, nodes, count = low[by_key], step[by_key], nodes[by_key], count[by_key]
    order = None
    if not every:
        order = np.argsort(~contending, axis=1, kind="stable")  # contending actions first, in order
        mean = np.take_along_axis(mean, order, axis=1)
        sd = np.take_along_axis(sd, order, axis=1)
    work = _Workspace(max(_BLOCK, k * MAX_NODES))
    compact = np.zeros((m, k))
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]).tolist()
    for first, last in zip(starts, [*starts[1:], m], strict=True):
        c, q = int(count[first]), int(nodes[first])
        per_block = max(1, _BLOCK // (c * q))
        for begin in range(first, last, per_block):
            end = min(begin + per_block, last)
            compact[begin:end, :c] = work.sums(mean[begin:end, :c], sd[begin:end, :c], low[begin:end],
                                               step[begin:end], q)
    compact /= (compact @ np.ones(k))[:, None]
    if order is not None:
        np.put_along_axis(compact, order, compact.copy(), axis=1)
    out = np.empty((m, k))
    out[by_key] = compact
    return out


class _Workspace:
    """Arrays reused by every block of one call of the midpoint rule (``size`` nodes times actions)."""

    def __init__(self, size: int) -> None:
        self.work = np.empty((WORK_ROWS, size))
        self.score = np.empty(size)
        self.cdf = np.empty(size)
        self.density = np.empty(size)
        self.others = np.empty(size)
        self.suffix = np.empty(size)
        self.grid = np.stack([np.arange(MAX_NODES, dtype=np.float64), np.ones(MAX_NODES)], axis=1)
        self.ones = np.ones((1, MAX_NODES))

    def sums(self, mean: np.ndarray, sd: np.ndarray, low: np.ndarray, step: np.ndarray,
             nodes: int) -> np.ndarray:
        r"""Rows (r, c), all ``c`` actions contending, ``nodes`` each: per action
        :math:`\sum_n f_i(t_n) \prod_{j \ne i} F_j(t_n)` up to a factor common to the row, shape (r, c).

        The arrays are laid out (action, node, row). The standardised scores of an action in a row are
        an arithmetic progression :math:`u_n = u_0 + n b`, so :math:`e^{-u_n^2/2}` follows from its
        predecessor by one product, :math:`e^{-u_{n+1}^2/2} = e^{-u_n^2/2} \rho_n` with
        :math:`\rho_n = e^{-u_n b - b^2/2}` and :math:`\rho_{n+1} = \rho_n e^{-b^2}`: three exponentials
        per action and row instead of one per node (relative error below about :math:`n^2` units of
        rounding, 2e-12 at :data:`MAX_NODES`). The first node lies at or above every action's
        :math:`m_j - 6.71 s_j` (:func:`midpoint_grid`), so the progression starts above underflow, and
        after its peak it only falls.
        """
        r, c = mean.shape
        size = c * r * nodes
        inverse = 1.0 / sd.T  # (c, r)
        line = np.empty((c, 2, r))  # per action and row: the slope b and the first score u_0
        slope, first = line[:, 0], line[:, 1]
        np.multiply(step, inverse, out=slope)
        np.multiply(low - mean.T, inverse, out=first)
        first += 0.5 * slope
        score = self.score[:size].reshape(c, nodes, r)
        np.matmul(self.grid[:nodes], line, out=score)
        density = self.density[:size].reshape(c, nodes, r)
        np.multiply(first, first, out=density[:, 0])
        density[:, 0] *= -0.5
        np.exp(density[:, 0], out=density[:, 0])
        factor = np.multiply(first, slope)
        square = np.multiply(slope, slope)
        factor += 0.5 * square
        np.negative(factor, out=factor)
        np.exp(factor, out=factor)  # rho_0
        np.negative(square, out=square)
        np.exp(square, out=square)  # e^{-b^2}
        for n in range(1, nodes):
            np.multiply(density[:, n - 1], factor, out=density[:, n])
            factor *= square
        flat = score.reshape(size)
        cdf_from_density(flat, self.density[:size], self.work[:, :size], self.cdf[:size])
        cdf = self.cdf[:size].reshape(c, nodes * r)
        density = self.density[:size].reshape(c, nodes * r)
        # others[i] = prod_{j != i} F_j: prefix products (others[0] = 1 is not stored), then times the
        # suffix products; others[0] is the last suffix product
        others = self.others[:size].reshape(c, nodes * r)
        np.multiply(cdf[0], cdf[1], out=others[2])
        for i in range(3, c):
            np.multiply(others[i - 1], cdf[i - 1], out=others[i])
        suffix = cdf[c - 1]
        for i in range(c - 2, 1, -1):
            others[i] *= suffix
            suffix = np.multiply(suffix, cdf[i], out=self.suffix[:r * nodes])
        np.multiply(cdf[0], suffix, out=others[1])
        np.multiply(suffix, cdf[1], out=others[0])
        density *= others
        totals = np.matmul(self.ones[:, :nodes], density.reshape(c, nodes, r))  # (c, 1, r)
        return (totals.reshape(c, r) * inverse).T


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
