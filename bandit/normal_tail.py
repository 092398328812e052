r"""The standard normal distribution function as compiled scalar code, for quadrature over many nodes.

For :math:`x \ge 0` the upper tail is :math:`Q(x) = 1 - \Phi(x) = \varphi(x) R(x)`, with :math:`R`
Mills' ratio. :math:`R` is taken as a rational function of degree (5, 6),

.. math:: R(x) \approx \frac{\sum_{i=0}^{5} p_i x^i}{\sum_{i=0}^{6} q_i x^i},

fitted by weighted least squares (with Lawson's reweighting toward the minimax error) to
``scipy.special.erfcx`` on :math:`[0, 9]`: its relative error is below 2e-11 there and below 1e-6
beyond, where :math:`Q < 2 \cdot 10^{-19}` (both tested against ``scipy.special.ndtr``). Every
coefficient is positive, so the ratio is a sum of positive terms over a sum of positive terms, without
cancellation at any :math:`x \ge 0`, and it falls like :math:`1/x` as :math:`R` does. Both polynomials
are evaluated by Horner's rule, so the distribution function costs a few multiply-adds, one division
and one exponential (which a caller may supply, :func:`cdf_from_density`).

:math:`\Phi(u)` is :math:`Q(|u|)` for :math:`u < 0` (relatively accurate in the lower tail) and
:math:`1 - Q(u)` otherwise (to about 1e-16 absolutely; a quadrature that multiplies distribution
functions needs no more).

The functions are compiled scalar code (:func:`bandit.compiled.compiled`), called from other compiled
code (:mod:`bandit.midpoint_rule`), which inlines the first two; this module is imported only when that
code runs, so importing :mod:`bandit` does not load numba.
"""

from __future__ import annotations

import math

import numpy as np

from bandit.compiled import compiled

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
    of ``u`` (:func:`bandit.midpoint_rule.midpoint_rule`), saves the one transcendental call.
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
