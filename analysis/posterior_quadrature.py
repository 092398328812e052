"""Numerical machinery of the Bayesian summaries (:mod:`analysis.bayesian`): Gauss-Legendre panels over
each posterior, the densities integrated on them, the ranking of arms, the comparison of a pair of
Betas, and the quantiles of a lift (the difference or the ratio of two posteriors) by Newton's method
from Cornish-Fisher starts.

Pure numpy/scipy over :class:`analysis.bayesian.Posterior`; accurate to about 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from analysis.beta_cdf import MIN_PARAMETER, BetaCdf

if TYPE_CHECKING:
    from analysis.bayesian import Posterior

TAIL = 1e-13  # integration range: the central 1 - 2e-13 of the integrated arm's posterior

#: Quantiles of a posterior where its quadrature panels break: dense in the tails, so that every panel
#: spans well under one standard deviation; the mass left outside is 2e-13.
_PANEL_QUANTILES = np.array(
    [TAIL, 1e-11, 1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97,
     0.99, 0.999, 1 - 1e-4, 1 - 1e-5, 1 - 1e-7, 1 - 1e-9, 1 - 1e-11, 1 - TAIL]
)
_PANEL_Z = special.ndtri(_PANEL_QUANTILES[1:-1])
_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(7)  # panels < 1 sd wide: 7 nodes agree with 10 to 1e-14

_APPROXIMATE_BREAKS_FROM = 1000.0


def _breaks(p: Posterior) -> np.ndarray:
    """Panel boundaries of a posterior (a point mass: its one value).

    The outer two are exact quantiles (they bound the integration range); the inner ones only place the
    panels, so for a Beta with both parameters large they are the Cornish-Fisher approximations of the
    quantiles, a small fraction of a standard deviation from the exact ones.
    """
    if p.family == "normal" and p.b == 0:
        return np.array([p.a])
    if p.family == "normal" or min(p.a, p.b) < _APPROXIMATE_BREAKS_FROM:
        return np.unique(p.ppf(_PANEL_QUANTILES))
    low, high = p.ppf(_PANEL_QUANTILES[[0, -1]])
    skew = _third_cumulant(p) / p.std**3
    inner = p.mean + p.std * (_PANEL_Z + (_PANEL_Z**2 - 1) * skew / 6)
    return np.unique(np.concatenate([[low], inner[(inner > low) & (inner < high)], [high]]))


def _gauss_nodes(breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of 7-point Gauss-Legendre on each panel between consecutive ``breaks``."""
    lo, hi = breaks[:-1], breaks[1:]
    half = (hi - lo)[:, None] / 2
    x = (lo + hi)[:, None] / 2 + half * _GAUSS_X[None, :]
    return x.ravel(), (half * _GAUSS_W[None, :]).ravel()


class Density:
    r"""Quadrature of :math:`\int f(x) g(x)\,dx` against one posterior's density f, its panels, nodes
    and weighted density values computed once; and the posterior's density and distribution function
    at many points (:meth:`pdf`, :meth:`cdf`), for the integrands of the other posteriors' quadratures.

    A Beta with both parameters at least :data:`analysis.beta_cdf.MIN_PARAMETER` is evaluated by
    :class:`analysis.beta_cdf.BetaCdf` (within about 1e-14 of scipy's functions, several times faster);
    any other posterior by its own methods.
    """

    def __init__(self, posterior: Posterior) -> None:
        self.posterior = posterior
        large = posterior.family == "beta" and min(posterior.a, posterior.b) >= MIN_PARAMETER
        self._beta = BetaCdf(posterior.a, posterior.b) if large else None
        self.breaks = _breaks(posterior)
        x, w = _gauss_nodes(self.breaks)
        self.x = x
        with np.errstate(invalid="ignore"):  # a point mass has no nodes
            self.wf = w * self.pdf(x)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """The posterior's density at ``x``, any shape."""
        return self._beta.pdf(x) if self._beta is not None else self.posterior.pdf(x)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The posterior's distribution function at ``x``, any shape."""
        return self._beta.cdf(x) if self._beta is not None else self.posterior.cdf(x)

    def integrate(self, g, kinks: Sequence[float] = ()) -> np.ndarray:
        """The integrals for a function ``g`` of x returning rows (shape (m, nodes)), shape (m,); panels
        also break at ``kinks``, where g may not be smooth (a distribution function reaching 0 or 1)."""
        lo, hi = self.breaks[0], self.breaks[-1]
        inner = [c for c in kinks if lo < c < hi]
        if not inner:
            return g(self.x) @ self.wf
        x, w = _gauss_nodes(np.unique(np.concatenate([self.breaks, inner])))
        return g(x) @ (w * self.pdf(x))


def _union_breaks(densities: Sequence[Density]) -> np.ndarray:
    """Panel boundaries resolving every posterior at once: the narrowest posterior's boundaries, then each
    wider one's boundaries that are not within a fifth of their own panel of one already kept (so that
    20 similar arms do not give 20 times the panels any one of them needs)."""
    kept = np.array([], dtype=float)
    for d in sorted(densities, key=lambda d: d.posterior.std):
        own = d.breaks
        if kept.size == 0 or own.size < 2:
            kept = np.union1d(kept, own)
            continue
        width = np.diff(own)
        local = np.minimum(np.r_[width[0], width], np.r_[width, width[-1]])
        pos = np.searchsorted(kept, own)
        gap_left = np.abs(own - kept[np.clip(pos - 1, 0, kept.size - 1)])
        gap_right = np.abs(kept[np.clip(pos, 0, kept.size - 1)] - own)
        kept = np.union1d(kept, own[np.minimum(gap_left, gap_right) > 0.2 * local])
    return kept


def rank_arms(densities: Sequence[Density]) -> tuple[np.ndarray, float]:
    """Each arm's probability to be best, shape (k,), and :math:`E[\\max_j \\theta_j]`, on one set of
    panels (:func:`_union_breaks`)::

        P(best = i) = int f_i(x) prod_{j != i} F_j(x) dx,   E[max] = h - int_l^h prod_j F_j(x) dx

    Both integrands are at most 1e-13 below the highest of the arms' lower ends (there one arm's
    distribution function is below 1e-13), so the panels start there.
    """
    breaks = _union_breaks(densities)
    start = max(float(d.breaks[0]) for d in densities)
    breaks = np.concatenate([[start], breaks[breaks > start]])
    lo, hi = float(breaks[0]), float(breaks[-1])
    if hi == lo:  # every arm a point mass at the same value
        return np.full(len(densities), 1.0 / len(densities)), lo
    x, w = _gauss_nodes(breaks)
    cdfs = np.stack([d.cdf(x) for d in densities])  # (k, nodes)
    ones = np.ones((1, x.size))
    before = np.cumprod(np.vstack([ones, cdfs[:-1]]), axis=0)  # product of the arms before i
    after = np.cumprod(np.vstack([ones, cdfs[:0:-1]]), axis=0)[::-1]  # product of the arms after i
    best = np.array([float((w * d.pdf(x)) @ (before[i] * after[i])) for i, d in enumerate(densities)])
    top = hi - float(w @ (before[-1] * cdfs[-1]))
    return np.clip(best, 0.0, 1.0), top


def compare_betas(over_control: Density, over_variant: Density) -> tuple[float, float, float]:
    r"""For two Beta posteriors C (control) and V (variant): :math:`P(V > C)`, :math:`E[(C - V)^+]` and
    :math:`E[(V - C)^+]`, from one integral over the narrower density, with the other's density and
    distribution function at every node at once.

    With :math:`C^+ \sim \mathrm{Beta}(a_c + 1, b_c)`, :math:`x f_c(x) = \bar c f_{C^+}(x)` and
    :math:`F_{C^+}(y) = F_c(y) - y (1 - y) f_c(y) / a_c`, so

    .. math:: E[(C - y)^+] = (\bar c - y)(1 - F_c(y)) + \bar c\, y (1 - y) f_c(y) / a_c, \qquad
              E[(y - C)^+] = (y - \bar c) F_c(y) + \bar c\, y (1 - y) f_c(y) / a_c,

    integrated with :math:`F_c` against :math:`f_v` when V is the narrower; otherwise the same with the
    roles swapped, where :math:`\int f_c F_v = 1 - P(V > C)`.
    """
    variant_narrower = over_variant.posterior.std <= over_control.posterior.std
    over, other = (over_variant, over_control) if variant_narrower else (over_control, over_variant)
    m, a = other.posterior.mean, other.posterior.a

    def rows(x: np.ndarray) -> np.ndarray:  # P(other <= x), E[(other - x)+], E[(x - other)+]
        cdf = other.cdf(x)
        tilt = m * x * (1 - x) * other.pdf(x) / a
        return np.stack([cdf, (m - x) * (1 - cdf) + tilt, (x - m) * cdf + tilt])

    below, other_ahead, other_behind = (float(v) for v in over.integrate(rows))
    if variant_narrower:
        beat, control_ahead, variant_ahead = below, other_ahead, other_behind
    else:
        beat, control_ahead, variant_ahead = 1.0 - below, other_behind, other_ahead
    # quadrature error can step a hair outside [0, 1], or below 0
    return min(max(beat, 0.0), 1.0), max(control_ahead, 0.0), max(variant_ahead, 0.0)


def difference_quantiles(
    over_control: Density, over_variant: Density, probs: Sequence[float]
) -> list[float]:
    """Quantiles of :math:`\\theta_{variant} - \\theta_{control}` at ``probs``."""
    control, variant = over_control.posterior, over_variant.posterior
    if control.family == "normal":
        s = math.hypot(control.b, variant.b)
        return [variant.a - control.a + s * float(special.ndtri(p)) for p in probs]
    # distribution and density of the difference at d, integrated over the narrower posterior; the
    # other's distribution function has kinks where its argument reaches 0 and 1
    if control.std <= variant.std:

        def cdf_pdf(d: float) -> tuple[float, float]:
            cdf, pdf = over_control.integrate(
                lambda x: np.stack([over_variant.cdf(x + d), over_variant.pdf(x + d)]), (-d, 1 - d))
            return float(cdf), float(pdf)
    else:

        def cdf_pdf(d: float) -> tuple[float, float]:
            sf, pdf = over_variant.integrate(
                lambda y: np.stack([over_control.cdf(y - d), over_control.pdf(y - d)]), (d, 1 + d))
            return 1 - float(sf), float(pdf)

    centre = variant.mean - control.mean
    spread = math.hypot(control.std, variant.std)
    skew = (_third_cumulant(variant) - _third_cumulant(control)) / spread**3
    kurtosis = (_fourth_cumulant(variant) + _fourth_cumulant(control)) / spread**4
    starts = [centre + spread * _cornish_fisher(float(special.ndtri(p)), skew, kurtosis) for p in probs]
    return [_quantile(cdf_pdf, p, centre, spread, -1.0, 1.0, start)
            for p, start in zip(probs, starts, strict=True)]


def _third_cumulant(p: Posterior) -> float:
    """:math:`E[(\\theta - \\bar\\theta)^3]` of a Beta posterior."""
    a, b = p.a, p.b
    return 2 * (b - a) * math.sqrt(a + b + 1) / ((a + b + 2) * math.sqrt(a * b)) * p.std**3


def _fourth_cumulant(p: Posterior) -> float:
    """The fourth cumulant (excess kurtosis times the variance squared) of a Beta posterior."""
    a, b = p.a, p.b
    s = a + b
    return 6 * ((a - b) ** 2 * (s + 1) - a * b * (s + 2)) / (a * b * (s + 2) * (s + 3)) * p.std**4


_ZETA_ORDERS = np.array([[2.0], [3.0], [4.0]])  # psi^(n)(x) = (-1)^(n+1) n! zeta(n + 1, x), n = 1..3
_ZETA_FACTORS = np.array([[1.0], [-2.0], [6.0]])


def _log_beta_cumulants(p: Posterior) -> np.ndarray:
    """The first four cumulants of :math:`\\log\\theta` for a Beta posterior,
    :math:`\\psi^{(r-1)}(a) - \\psi^{(r-1)}(a + b)`, shape (4,)."""
    x = np.array([p.a, p.a + p.b])
    values = np.vstack([special.digamma(x), special.zeta(_ZETA_ORDERS, x) * _ZETA_FACTORS])  # (4, 2)
    return values[:, 0] - values[:, 1]


def _cornish_fisher(z: float, skew: float, kurtosis: float) -> float:
    """The standardised quantile of a distribution of skewness ``skew`` and excess kurtosis ``kurtosis``
    at the normal quantile ``z`` (second-order Cornish-Fisher): where Newton's method starts."""
    return (z + (z * z - 1) * skew / 6 + (z**3 - 3 * z) * kurtosis / 24
            - (2 * z**3 - 5 * z) * skew * skew / 36)


def ratio_quantiles(over_control: Density, over_variant: Density, probs: Sequence[float]) -> list[float]:
    """Quantiles of :math:`t = \\theta_{variant} / \\theta_{control}` at ``probs`` (control positive)."""
    control, variant = over_control.posterior, over_variant.posterior
    if control.family == "normal":
        ma, sa, mb, sb = control.a, control.b, variant.a, variant.b
        if sa == 0 and sb == 0:
            return [mb / ma for _ in probs]

        def cdf_pdf(t: float) -> tuple[float, float]:
            v = sb * sb + t * t * sa * sa
            g = (t * ma - mb) / math.sqrt(v)
            dg = (ma * sb * sb + mb * t * sa * sa) / v**1.5
            return float(special.ndtr(g)), math.exp(-0.5 * g * g) / math.sqrt(2 * math.pi) * dg

        lower = -math.inf
    else:

        def cdf_pdf(t: float) -> tuple[float, float]:
            if control.std <= variant.std / t:
                cdf, pdf = over_control.integrate(
                    lambda x: np.stack([over_variant.cdf(t * x), x * over_variant.pdf(t * x)]), (1 / t,))
                return float(cdf), float(pdf)
            sf, pdf = over_variant.integrate(
                lambda y: np.stack([over_control.cdf(y / t), y / (t * t) * over_control.pdf(y / t)]), (t,))
            return 1 - float(sf), float(pdf)

        lower = 0.0
    centre = variant.mean / control.mean
    spread = math.hypot(variant.std / control.mean, centre * control.std / control.mean)
    starts: list[float | None] = [None] * len(probs)
    if control.family == "beta":  # log t = log theta_v - log theta_c, from its exact cumulants
        k1, k2, k3, k4 = _log_beta_cumulants(variant) + _log_beta_cumulants(control) * [-1, 1, -1, 1]
        sigma = math.sqrt(k2)
        starts = [math.exp(k1 + sigma * _cornish_fisher(float(special.ndtri(p)), k3 / k2**1.5, k4 / k2**2))
                  for p in probs]
    return [_quantile(cdf_pdf, p, centre, spread, lower, math.inf, start)
            for p, start in zip(probs, starts, strict=True)]


def _quantile(cdf_pdf, prob: float, centre: float, spread: float, lower: float, upper: float,
              start: float | None = None) -> float:
    """Solve ``F(v) = prob`` for v in (lower, upper), where ``cdf_pdf(v)`` gives ``(F(v), F'(v))``.

    Newton's method from ``start`` (by default ``centre + z * spread``), inside a bracket
    ``F(lo) <= prob <= F(hi)`` that starts at the bounds: a step that leaves the bracket is replaced by
    bisection, or by a doubling step outwards while one side is unbounded. NaN when F never reaches
    ``prob`` (a ratio of normals may stay short of 0 or 1). It stops after a Newton step of at most 1e-7
    of the spread (the error left is of the order of that step squared over the spread) or of 1e-13
    relative.
    """
    step = max(spread, 1e-12 * max(abs(centre), 1.0))
    close = 1e-7 * step
    v = centre + float(special.ndtri(prob)) * step if start is None or not math.isfinite(start) else start
    v = v if lower < v < upper else centre
    lo, hi = lower, upper
    for _ in range(400):
        value, slope = cdf_pdf(v)
        if value < prob:
            lo = v
        elif value > prob:
            hi = v
        else:
            return v
        new = v - (value - prob) / slope if slope > 0 else math.nan
        if abs(new - v) <= max(close, 1e-13 * max(1.0, abs(v))):  # converged (False for NaN)
            return new
        bounded = math.isfinite(lo) and math.isfinite(hi)
        if not (math.isfinite(new) and lo < new < hi and (bounded or abs(new - v) <= 8 * step)):
            if bounded:
                new = (lo + hi) / 2
            else:
                new = v + (step if value < prob else -step)
                step *= 2
        if not math.isfinite(new):
            return math.nan
        if abs(new - v) <= 1e-13 * max(1.0, abs(v)):
            return new
        v = new
    return math.nan

