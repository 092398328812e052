r"""The standard normal distribution function from array arithmetic alone, for quadrature over many nodes.

For :math:`x \ge 0` the upper tail is :math:`Q(x) = 1 - \Phi(x) = \varphi(x) R(x)`, with :math:`R`
Mills' ratio. :math:`R` is taken as a rational function of degree (5, 6),

.. math:: R(x) \approx \frac{\sum_{i=0}^{5} p_i x^i}{\sum_{i=0}^{6} q_i x^i},

fitted by weighted least squares (with Lawson's reweighting toward the minimax error) to
``scipy.special.erfcx`` on :math:`[0, 9]`: its relative error is below 2e-11 there and below 1e-6
beyond, where :math:`Q < 2 \cdot 10^{-19}` (both tested against ``scipy.special.ndtr``). Every
coefficient is positive, so the ratio is a sum of positive terms over a sum of positive terms, without
cancellation at any :math:`x \ge 0`, and it falls like :math:`1/x` as :math:`R` does. Both polynomials
are evaluated by Horner's rule in place, so the distribution function comes from a few passes over
the nodes and one exponential (which a caller may supply, :func:`cdf_from_density`).

:math:`\Phi(u)` is :math:`Q(|u|)` for :math:`u < 0` and :math:`1 - Q(u)` otherwise. :func:`fill_cdf`
returns it as :math:`\tfrac12 + \operatorname{sign}(u)\,(\tfrac12 - Q(|u|))`, exact to about 1e-16
absolutely (a quadrature that multiplies distribution functions needs no more); :func:`cdf_and_hazard`
keeps the lower tail's relative accuracy.
"""

from __future__ import annotations

import math

import numpy as np

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
#: The number of powers of x (0 to 6) the ratio needs.
POWERS = TAIL_RATIO.shape[1]
#: Rows of the work space of :func:`fill_cdf`.
WORK_ROWS = 3
# the coefficients from x^6 down, for Horner's rule (the numerator's x^6 term is 0, the denominator's 1)
_NUMERATOR = TAIL_RATIO[0, ::-1].tolist()
_DENOMINATOR = TAIL_RATIO[1, ::-1].tolist()


def fill_cdf(u: np.ndarray, work: np.ndarray, cdf: np.ndarray, density: np.ndarray) -> None:
    r"""Write :math:`\Phi(u)` into ``cdf`` and :math:`e^{-u^2/2}` into ``density``, in place.

    Parameters
    ----------
    u : ndarray of float, shape (p,)
        Finite, :math:`|u| < 10^{50}` (the sixth power stays finite).
    work : ndarray of float, shape (WORK_ROWS, p)
        Work space.
    cdf, density : ndarray of float, shape (p,)
        Outputs. ``density`` lacks the factor :math:`1/\sqrt{2\pi}`.
    """
    np.multiply(u, u, out=density)
    density *= -0.5
    np.exp(density, out=density)
    cdf_from_density(u, density, work, cdf)


def cdf_from_density(u: np.ndarray, density: np.ndarray, work: np.ndarray, cdf: np.ndarray) -> None:
    r"""Write :math:`\Phi(u)` into ``cdf`` given ``density`` :math:`= e^{-u^2/2}` (to a relative error
    of about 1e-12 or better: the error passes to :math:`1 - \Phi(|u|)` as it is); arguments as for
    :func:`fill_cdf`, ``density`` read only.

    A caller that has the exponential already, e.g. from a recurrence along an arithmetic progression
    of ``u`` (:meth:`bandit.gaussian_max._Workspace.sums`), saves the one transcendental pass. Both
    polynomials by Horner's rule, in place: fewer passes over memory than a matrix product of the
    powers of ``|u|``.
    """
    x, numerator, denominator = work[0], work[1], work[2]
    np.abs(u, out=x)
    np.multiply(x, _NUMERATOR[1], out=numerator)
    numerator += _NUMERATOR[2]
    for c in _NUMERATOR[3:]:
        numerator *= x
        numerator += c
    np.add(x, _DENOMINATOR[1], out=denominator)  # the leading coefficient is 1
    for c in _DENOMINATOR[2:]:
        denominator *= x
        denominator += c
    tail = np.divide(numerator, denominator, out=cdf)
    tail *= density
    np.subtract(0.5, tail, out=tail)  # 1/2 - Q >= 0; with the sign of u it is Phi(u) - 1/2
    np.copysign(tail, u, out=tail)
    tail += 0.5


def cdf_and_hazard(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\Phi(z)` and the reversed hazard :math:`\varphi(z)/\Phi(z)`, each the shape of ``z``.

    Accurate relatively in both tails for :math:`|z| \le 9` (the fitted range; the lower tail as
    :math:`Q(|z|)` itself, not :math:`1 - (1 - Q)`), so a caller can take the log of a product of
    them. :math:`|z|` is capped at 37 (there :math:`Q < 10^{-299}`): above it :math:`\Phi` is 1 and
    the hazard below 1e-297, and below it :math:`\Phi` comes out as :math:`Q(37)`, too large. The cap
    keeps the exponential out of the subnormal range, where it is several times slower. ``z`` may be
    infinite, not NaN.
    """
    shape = np.shape(z)
    powers = np.empty((POWERS, *shape))
    powers[0] = 1.0
    x = np.minimum(np.abs(z), 37.0, out=powers[1])
    for i in range(2, POWERS):
        np.multiply(powers[i - 1], x, out=powers[i])
    numerator, denominator = np.tensordot(TAIL_RATIO, powers, axes=1)
    mills = np.divide(numerator, denominator, out=numerator)  # R(x) / sqrt(2 pi)
    density = np.multiply(powers[2], -0.5, out=denominator)
    np.exp(density, out=density)  # sqrt(2 pi) phi(x)
    cdf = np.multiply(density, mills, out=powers[1])  # Q(x)
    upper = z >= 0
    np.subtract(1.0, cdf, out=cdf, where=upper)
    density *= _INV_SQRT_2PI
    hazard = np.divide(density, cdf, out=density)
    return cdf.copy(), hazard
