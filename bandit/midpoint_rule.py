r"""The midpoint rule of :func:`bandit.gaussian_max.probability_of_max`, compiled by numba.

For rows of independent normal scores :math:`N(m_j, s_j^2)` with three or more contending actions,
:func:`midpoint_grid` places the grid and :func:`midpoint_rule` sums, per action,
:math:`h \sum_n f_i(t_n) \prod_{j \ne i} F_j(t_n)` over its nodes :math:`t_n = L + (n + \tfrac12) h`
and normalises each row to 1. The rule, its span and its error bound are described in
:mod:`bandit.gaussian_max`; this module holds only their arithmetic.

Each row's grid is scalar code. The sums run on blocks of :data:`LANES` rows with the same node count
(the rows sorted by it), the rows of a block side by side in the innermost loop, so the compiler
evaluates several rows per vector instruction. The densities along an action's nodes come from a
recurrence (:func:`midpoint_rule`), the distribution functions from :mod:`bandit.normal_tail`.

Compiled on first use and cached on disk (:func:`bandit.compiled.compiled`); imported by
:mod:`bandit.gaussian_max` only when a row needs the rule, so importing :mod:`bandit` does not load
numba.
"""

from __future__ import annotations

import math

import numpy as np

from bandit.compiled import compiled
from bandit.normal_tail import cdf_and_hazard, cdf_from_density

#: Rows evaluated side by side.
LANES = 64
#: Node counts are rounded up to a multiple of this, so that rows share blocks.
NODE_MULTIPLE = 4
# the score of an action left out of a row: Phi is 1 there and its density 0 at every node
_OUT_SCORE = 40.0
_FOLD = 1e-200  # a running product of distribution functions below this is folded into the log


@compiled
def midpoint_grid(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray, low_z: float, high_z: float,
                  log_tail: float, step_per_sd: float, max_nodes: int, low: np.ndarray, step: np.ndarray,
                  nodes: np.ndarray) -> None:
    r"""Per row of ``mean``, ``sd`` (m, k) with three or more ``contending`` actions: the start
    :math:`L`, the step and the node count of the midpoint rule, written into ``low``, ``step`` and
    ``nodes`` (m,).

    :math:`L` starts at :math:`\max_j(m_j + z_{low} s_j)` and takes one Newton step on
    :math:`\sum_j \log F_j(L) = ` ``log_tail`` (only forward: the sum is concave, so the step stays
    left of the root); the end is :math:`U = \max_j(m_j + z_{high} s_j)`; the step is at most
    ``step_per_sd`` times :math:`\sigma = (\sum_j s_j^{-2})^{-1/2}`, the node count the least
    multiple of :data:`NODE_MULTIPLE` that reaches :math:`U`, or ``max_nodes + 1`` where that exceeds
    ``max_nodes`` or is undefined (widths near 0).
    """
    m, k = mean.shape
    inverse = np.empty(k)
    for r in range(m):
        start, end, precision = -np.inf, -np.inf, 0.0
        for j in range(k):
            if contending[r, j]:
                start = max(start, mean[r, j] + low_z * sd[r, j])
                end = max(end, mean[r, j] + high_z * sd[r, j])
                inverse[j] = 1.0 / sd[r, j]
                precision += inverse[j] * inverse[j]
        # every F_j(L) >= Phi(low_z) at the start: one log per row for the running product, unless it
        # would leave the normal doubles
        product, log, slope = 1.0, 0.0, 0.0
        for j in range(k):
            if contending[r, j]:
                cdf, hazard = cdf_and_hazard((start - mean[r, j]) * inverse[j])
                product *= cdf
                slope += hazard * inverse[j]
                if product < _FOLD:
                    log += math.log(product)
                    product = 1.0
        move = (log_tail - log - math.log(product)) / slope
        if move > 0.0:  # not NaN
            start += move
        count = np.ceil((end - start) * math.sqrt(precision) / (step_per_sd * NODE_MULTIPLE)) * NODE_MULTIPLE
        low[r] = start
        if count <= max_nodes:  # not NaN or inf
            nodes[r] = max(int(count), NODE_MULTIPLE)
            step[r] = (end - start) / nodes[r]
        else:
            nodes[r] = max_nodes + 1
            step[r] = (end - start) / (max_nodes + 1)


@compiled
def midpoint_rule(mean: np.ndarray, sd: np.ndarray, contending: np.ndarray, low: np.ndarray,
                  step: np.ndarray, nodes: np.ndarray, max_nodes: int, out: np.ndarray) -> None:
    r"""The probabilities of the rows of ``mean``, ``sd`` (m, k) whose grid (``low``, ``step``,
    ``nodes``, (m,) each) has at most ``max_nodes`` nodes, written into those rows of ``out`` (m, k)
    (the other rows are left as they are); actions not ``contending`` get 0.

    The standardised scores of an action in a row are an arithmetic progression
    :math:`u_n = u_0 + n b`, so :math:`e^{-u_n^2/2}` follows from its predecessor by one product,
    :math:`e^{-u_{n+1}^2/2} = e^{-u_n^2/2} \rho_n` with :math:`\rho_n = e^{-u_n b - b^2/2}` and
    :math:`\rho_{n+1} = \rho_n e^{-b^2}`: three exponentials per action and row instead of one per
    node (relative error below about :math:`n^2` units of rounding, 2e-12 at 128 nodes). The grid
    starts at or above every action's :math:`m_j - 6.71 s_j` (:func:`midpoint_grid`), so the
    progression starts above underflow, and after its peak it only falls. Per node, the product of
    the other actions' distribution functions is a prefix product times a suffix product (no
    division, so a distribution function that underflows to 0 does no harm).
    """
    m, k = mean.shape
    # the rows by node count (a counting sort over the multiples of NODE_MULTIPLE)
    kinds = max_nodes // NODE_MULTIPLE + 1
    bounds = np.zeros(kinds + 1, np.int64)
    for r in range(m):
        if nodes[r] <= max_nodes:
            bounds[nodes[r] // NODE_MULTIPLE + 1] += 1
    for kind in range(kinds):
        bounds[kind + 1] += bounds[kind]
    order = np.empty(bounds[kinds], np.int64)
    filled = bounds[:kinds].copy()
    for r in range(m):
        if nodes[r] <= max_nodes:
            kind = nodes[r] // NODE_MULTIPLE
            order[filled[kind]] = r
            filled[kind] += 1
    # per action and lane: 1 / s, the score's slope b and first value u_0, the density, rho, e^{-b^2},
    # the distribution function, the prefix product and the running sum
    inverse, slope, first = np.empty((k, LANES)), np.empty((k, LANES)), np.empty((k, LANES))
    density, factor, decay = np.empty((k, LANES)), np.empty((k, LANES)), np.empty((k, LANES))
    cdf, prefix, total = np.empty((k, LANES)), np.empty((k, LANES)), np.empty((k, LANES))
    suffix = np.empty(LANES)
    for kind in range(kinds):
        count = kind * NODE_MULTIPLE
        for begin in range(bounds[kind], bounds[kind + 1], LANES):
            lanes = min(LANES, bounds[kind + 1] - begin)
            for lane in range(lanes):
                r = order[begin + lane]
                for a in range(k):
                    total[a, lane] = 0.0
                    if contending[r, a]:
                        i = 1.0 / sd[r, a]
                        b = step[r] * i
                        u = (low[r] - mean[r, a]) * i + 0.5 * b
                        inverse[a, lane], slope[a, lane], first[a, lane] = i, b, u
                        density[a, lane] = math.exp(-0.5 * u * u)
                        factor[a, lane] = math.exp(-u * b - 0.5 * b * b)
                        decay[a, lane] = math.exp(-b * b)
                    else:
                        inverse[a, lane], slope[a, lane], first[a, lane] = 0.0, 0.0, _OUT_SCORE
                        density[a, lane], factor[a, lane], decay[a, lane] = 0.0, 0.0, 0.0
            for n in range(count):
                for a in range(k):
                    for lane in range(lanes):
                        cdf[a, lane] = cdf_from_density(first[a, lane] + n * slope[a, lane], density[a, lane])
                for lane in range(lanes):
                    prefix[0, lane] = 1.0
                    suffix[lane] = 1.0
                for a in range(1, k):
                    for lane in range(lanes):
                        prefix[a, lane] = prefix[a - 1, lane] * cdf[a - 1, lane]
                for a in range(k - 1, -1, -1):
                    for lane in range(lanes):
                        total[a, lane] += density[a, lane] * prefix[a, lane] * suffix[lane]
                        suffix[lane] *= cdf[a, lane]
                for a in range(k):
                    for lane in range(lanes):
                        density[a, lane] *= factor[a, lane]
                        factor[a, lane] *= decay[a, lane]
            for lane in range(lanes):
                r = order[begin + lane]
                row_sum = 0.0
                for a in range(k):
                    total[a, lane] *= inverse[a, lane]
                    row_sum += total[a, lane]
                for a in range(k):
                    out[r, a] = total[a, lane] / row_sum
