r"""The compiled arithmetic of :func:`bandit.gaussian_max.probability_of_max`'s midpoint rule (numba).

For rows of independent normal scores :math:`N(m_j, s_j^2)` with three or more contending actions,
:func:`midpoint_grid` places the grid and :func:`midpoint_rule` sums, per action,
:math:`h \sum_n f_i(t_n) \prod_{j \ne i} F_j(t_n)` over its nodes :math:`t_n = L + (n + \tfrac12) h`
and normalises each row to 1. The rule, its span and its error bound are described in
:mod:`bandit.gaussian_max`; this module holds only their arithmetic.

Each row's grid is scalar code. The sums run on blocks of :data:`LANES` rows with the same node count
(the rows sorted by it), the rows of a block side by side in the innermost loop, so the compiler
evaluates several rows per vector instruction. The densities along an action's nodes come from a
recurrence (:func:`midpoint_rule`).

**The normal tail.** For :math:`x \ge 0` the upper tail is :math:`Q(x) = 1 - \Phi(x) = \varphi(x)
R(x)`, with :math:`R` Mills' ratio, taken as a rational function of degree (5, 6),

.. math:: R(x) \approx \frac{\sum_{i=0}^{5} p_i x^i}{\sum_{i=0}^{6} q_i x^i},

fitted by weighted least squares (with Lawson's reweighting toward the minimax error) to
``scipy.special.erfcx`` on :math:`[0, 9]`: its relative error is below 2e-11 there and below 1e-6
beyond, where :math:`Q < 2 \cdot 10^{-19}` (both tested against ``scipy.special.ndtr``). Every
coefficient is positive, so the ratio is a sum of positive terms over a sum of positive terms, without
cancellation at any :math:`x \ge 0`, and it falls like :math:`1/x` as :math:`R` does. Both polynomials
are evaluated by Horner's rule: a few multiply-adds, one division and one exponential (which a caller
may supply, :func:`cdf_from_density`). :math:`\Phi(u)` is :math:`Q(|u|)` for :math:`u < 0`
(relatively accurate in the lower tail) and :math:`1 - Q(u)` otherwise (to about 1e-16 absolutely; a
quadrature that multiplies distribution functions needs no more).

**The exponential.** numba compiles ``math.exp`` to a call of the C library's ``exp``, one element at
a time, and a loop that calls it cannot use vector instructions; :func:`exponential` is plain
arithmetic instead: :math:`e^x = 2^k e^r` with :math:`k` the integer nearest :math:`x / \ln 2` and
:math:`r = x - k \ln 2` (in two parts, so exact), :math:`|r| \le \tfrac12 \ln 2`; :math:`e^r` by its
Taylor polynomial of degree 13 (the remainder below 4e-18 relatively) and :math:`2^k` written into the
exponent bits of a double. Within about one unit of rounding of ``numpy.exp`` on :math:`[-708, 709]`
(tested); below -708, where :math:`e^x < 3.3 \cdot 10^{-308}` leaves the normal doubles, it is 0. The
sums' set-up loops use it; the grid's scalar code keeps ``math.exp``, the quicker one at a time.

All of it is in one module because numba's on-disk cache of a function is keyed on its own file only
(:mod:`bandit.compiled`): a compiled function inlined from another file would outlive an edit there.
Compiled on first use and cached on disk; imported by :mod:`bandit.gaussian_max` only when a row needs
the rule, so importing :mod:`bandit` does not load numba.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from bandit.compiled import compiled

# adding 1.5 * 2^52 rounds to an integer and leaves it in the low bits of the mantissa
_SHIFTER = 6755399441055744.0
_LOG2_E = 1.4426950408889634
_LN2_HIGH = 6.93147180369123816490e-01  # ln 2 = _LN2_HIGH + _LN2_LOW; k * _LN2_HIGH is exact
_LN2_LOW = 1.90821492927058770002e-10
#: Below this the result is 0.
LOWEST = -708.0
(_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12,
 _C13) = (1.0 / math.factorial(i) for i in range(14))


@intrinsic
def _double_from_bits(typingctx: object, bits: types.Type) -> tuple:
    """The double whose IEEE 754 bits are the 64-bit integer ``bits``."""
    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list) -> ir.Value:
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bits_of_double(typingctx: object, value: types.Type) -> tuple:
    """The IEEE 754 bits of the double ``value`` as a 64-bit integer."""
    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list) -> ir.Value:
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@compiled(inline="always")
def exponential(x: float) -> float:
    """:math:`e^x` for :math:`x \\le 709`, 0 below :data:`LOWEST`; ``x`` not NaN."""
    shifted = x * _LOG2_E + _SHIFTER
    k = shifted - _SHIFTER
    r = x - k * _LN2_HIGH - k * _LN2_LOW
    taylor = ((((((((((((_C13 * r + _C12) * r + _C11) * r + _C10) * r + _C9) * r + _C8) * r + _C7) * r
                   + _C6) * r + _C5) * r + _C4) * r + _C3) * r + _C2) * r + _C1) * r + _C0
    power = _double_from_bits((_bits_of_double(shifted) - _bits_of_double(_SHIFTER) + 1023) << 52)
    return taylor * power if x >= LOWEST else 0.0


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: Rows: the numerator and the denominator of Mills' ratio; columns: the coefficients of x^0 ... x^6.
#: The numerator carries the factor 1 / sqrt(2 pi) of the density, so ``numerator / denominator``
#: times ``exp(-x^2 / 2)`` is Q(x).
TAIL_RATIO = np.array([
    np.array([674.8896413589188, 660.685344503192, 316.92326742751703, 87.35753023846995,
              13.743861979790296, 0.9999949821282658, 0.0]) * _INV_SQRT_2PI,
    [538.4840250962076, 956.7987247228748, 747.0411178932487, 330.5703458166535,
     88.36399746127239, 13.74359627117582, 1.0],
])
_P0, _P1, _P2, _P3, _P4, _P5 = TAIL_RATIO[0, :6].tolist()
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5 = TAIL_RATIO[1, :6].tolist()  # the coefficient of x^6 is 1
#: Beyond this :math:`|z|`, :func:`cdf_and_hazard` takes :math:`Q(37) < 10^{-299}` as the tail.
Z_CAP = 37.0


@compiled(inline="always")
def tail_ratio(x: float) -> float:
    r""":math:`R(x) / \sqrt{2\pi}` for :math:`x \ge 0`: times :math:`e^{-x^2/2}` it is :math:`Q(x)`."""
    numerator = ((((_P5 * x + _P4) * x + _P3) * x + _P2) * x + _P1) * x + _P0
    denominator = (((((x + _Q5) * x + _Q4) * x + _Q3) * x + _Q2) * x + _Q1) * x + _Q0
    return numerator / denominator


@compiled(inline="always")
def cdf_from_density(u: float, density: float) -> float:
    r""":math:`\Phi(u)` given ``density`` :math:`= e^{-u^2/2}` (to a relative error of about 1e-12 or
    better: the error passes to :math:`Q(|u|)` as it is). ``u`` finite, :math:`|u| < 10^{50}`.

    A caller that has the exponential already, e.g. from a recurrence along an arithmetic progression
    of ``u`` (:func:`midpoint_rule`), saves the one transcendental call.
    """
    tail = tail_ratio(abs(u)) * density
    return tail if u < 0.0 else 1.0 - tail


@compiled
def cdf_and_hazard(z: float) -> tuple[float, float]:
    r""":math:`\Phi(z)` and the reversed hazard :math:`\varphi(z)/\Phi(z)`.

    Accurate relatively in both tails for :math:`|z| \le 9` (the fitted range; the lower tail as
    :math:`Q(|z|)` itself, not :math:`1 - (1 - Q)`), so a caller can take the log of a product of
    them. :math:`|z|` is capped at :data:`Z_CAP` (there :math:`Q < 10^{-299}`): above it :math:`\Phi`
    is 1 and the hazard below 1e-297, and below it :math:`\Phi` comes out as :math:`Q(37)`, too large.
    The cap keeps the exponential out of the subnormal range, where it is several times slower. ``z``
    may be infinite, not NaN.
    """
    x = min(abs(z), Z_CAP)
    density = math.exp(-0.5 * x * x)
    tail = tail_ratio(x) * density
    cdf = tail if z < 0.0 else 1.0 - tail
    return cdf, density * _INV_SQRT_2PI / cdf


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
                    if contending[r, a]:
                        i = 1.0 / sd[r, a]
                        b = step[r] * i
                        inverse[a, lane], slope[a, lane] = i, b
                        first[a, lane] = (low[r] - mean[r, a]) * i + 0.5 * b
                    else:  # Phi is 1 and the density 0 at every node
                        inverse[a, lane], slope[a, lane], first[a, lane] = 0.0, 0.0, _OUT_SCORE
            for a in range(k):
                for lane in range(lanes):
                    u, b = first[a, lane], slope[a, lane]
                    density[a, lane] = exponential(-0.5 * u * u)
                    factor[a, lane] = exponential(-u * b - 0.5 * b * b)
                    decay[a, lane] = exponential(-b * b)
                    total[a, lane] = 0.0
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
