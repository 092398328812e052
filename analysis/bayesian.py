"""Bayesian results: Beta-Binomial for rates, a normal model for values.

Probabilities to beat control and to be best are one-dimensional integrals computed by adaptive
quadrature; the expected loss against control has a closed form; credible intervals of the lift and
the expected loss against the best arm are one-dimensional integrals too, by Gauss-Legendre panels and
Newton's method (:func:`summarise_posteriors`). All are deterministic and accurate to about 1e-9.
:func:`summarise_draws` gives the same summaries by Monte Carlo over posterior draws from an explicit
:class:`numpy.random.Generator` (their error shrinks as one over the square root of the draws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import integrate, special
from scipy import stats as sps

from analysis.errors import AnalysisInputError
from analysis.stats import ProportionStats, SampleStats

_TAIL = 1e-13  # integration range: the central 1 - 2e-13 of the integrated arm's posterior


@dataclass(frozen=True)
class Posterior:
    """A posterior of an arm's mean: ``beta`` with shape parameters ``(a, b)``, or ``normal`` with
    mean ``a`` and standard deviation ``b``."""

    family: Literal["beta", "normal"]
    a: float
    b: float

    def __post_init__(self) -> None:
        if self.family not in ("beta", "normal"):
            raise AnalysisInputError(f"family: must be 'beta' or 'normal', got {self.family!r}")
        if self.family == "beta" and not (self.a > 0 and self.b > 0):
            raise AnalysisInputError(f"Posterior: beta parameters must be > 0, got a={self.a}, b={self.b}")
        if self.family == "normal" and not self.b >= 0:
            raise AnalysisInputError(f"Posterior: normal standard deviation must be >= 0, got {self.b}")

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b) if self.family == "beta" else self.a

    @property
    def std(self) -> float:
        if self.family == "normal":
            return self.b
        s = self.a + self.b
        return math.sqrt(self.a * self.b / (s * s * (s + 1)))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at ``x``, any shape (Beta: scipy's, accurate to about 1e-15 relative even when the
        parameters are in the hundreds of thousands, where the log-space formula loses 1e-10)."""
        x = np.asarray(x, dtype=float)
        if self.family == "normal":
            if self.b == 0:
                return np.where(x == self.a, np.inf, 0.0)
            return np.exp(-0.5 * ((x - self.a) / self.b) ** 2) / (self.b * math.sqrt(2 * math.pi))
        inside = (x > 0) & (x < 1)
        # scipy.stats.beta's density kernel itself: the public wrapper's argument broadcasting and checks
        # cost several times the kernel on the few hundred quadrature nodes of one posterior
        with np.errstate(over="ignore"):
            density = sps.beta._pdf(np.where(inside, x, 0.5), self.a, self.b)
        return np.where(inside, density, 0.0)

    def _rough_pdf(self, x: np.ndarray) -> np.ndarray:
        """The density by the log-space formula: faster than :meth:`pdf`, relative error up to about 1e-10
        for large Beta parameters (used only to steer Newton's method)."""
        if self.family == "normal":
            return self.pdf(x)
        x = np.asarray(x, dtype=float)
        inside = (x > 0) & (x < 1)
        xc = np.clip(x, 1e-300, 1 - 1e-16)
        log = (self.a - 1) * np.log(xc) + (self.b - 1) * np.log1p(-xc) - special.betaln(self.a, self.b)
        return np.where(inside, np.exp(log), 0.0)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Distribution function at ``x``, any shape."""
        x = np.asarray(x, dtype=float)
        if self.family == "normal":
            if self.b == 0:
                return (x >= self.a).astype(float)
            return special.ndtr((x - self.a) / self.b)
        return special.betainc(self.a, self.b, np.clip(x, 0.0, 1.0))

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantile function at probabilities ``q``, any shape."""
        q = np.asarray(q, dtype=float)
        if self.family == "normal":
            return self.a + self.b * special.ndtri(q)
        return special.betaincinv(self.a, self.b, q)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws, shape (size,)."""
        if self.family == "normal":
            return rng.normal(self.a, self.b, size)
        return rng.beta(self.a, self.b, size)


def rate_posterior(arm: ProportionStats, prior: tuple[float, float] = (1.0, 1.0)) -> Posterior:
    """Beta posterior of a rate: :math:`\\mathrm{Beta}(a_0 + x, b_0 + n - x)` (uniform prior by default)."""
    a0, b0 = prior
    if not (a0 > 0 and b0 > 0):
        raise AnalysisInputError(f"prior: beta prior parameters must be > 0, got {prior!r}")
    return Posterior("beta", a0 + arm.successes, b0 + arm.failures)


def mean_posterior(arm: SampleStats) -> Posterior:
    """Normal posterior of a mean under a flat prior: :math:`N(\\bar x, s^2/n)`."""
    if arm.n < 2:
        raise AnalysisInputError(f"arm: the normal model needs n >= 2, got n = {arm.n}")
    return Posterior("normal", arm.mean, math.sqrt(arm.variance_of_mean))


def prob_beat(control: Posterior, variant: Posterior) -> float:
    """:math:`P(\\theta_B > \\theta_A)` for independent posteriors.

    Normal: :math:`\\Phi((\\mu_B - \\mu_A)/\\sqrt{\\sigma_A^2 + \\sigma_B^2})`. Otherwise
    :math:`\\int f_B(x) F_A(x)\\,dx` by quadrature.
    """
    _same_family([control, variant])
    if control.family == "normal":
        s = math.hypot(control.b, variant.b)
        if s == 0:
            return 0.5 if variant.a == control.a else float(variant.a > control.a)
        return float(special.ndtr((variant.a - control.a) / s))
    return _prob_beta_beats(control, variant)


def _prob_beta_beats(control: Posterior, variant: Posterior) -> float:
    """:math:`P(\\theta_B > \\theta_A)` for two Beta posteriors (the two-arm case of :func:`prob_best`).

    Integrated over the narrower density, in the Gauss-Legendre panels of :class:`_Density` with the
    other's distribution function evaluated at every node at once: :math:`\\int f_B F_A` over B, or
    :math:`1 - \\int f_A F_B` over A.
    """
    if variant.std <= control.std:
        value = float(_Density(variant).integrate(lambda x: control.cdf(x)[None, :])[0])
    else:
        value = 1.0 - float(_Density(control).integrate(lambda x: variant.cdf(x)[None, :])[0])
    return min(max(value, 0.0), 1.0)  # quadrature error can step a hair outside [0, 1]


def prob_best(posteriors: Sequence[Posterior]) -> np.ndarray:
    """Probability that each arm has the highest mean, shape (k,).

    .. math:: P(\\text{best} = i) = \\int f_i(x) \\prod_{j \\ne i} F_j(x)\\,dx

    by 7-point Gauss-Legendre panels between the quantiles of every arm (so that each arm's density
    and each distribution function's rise are resolved, however narrow; :func:`_union_breaks`), over
    a range holding all but 1e-13 of every posterior.
    """
    _same_family(posteriors)
    if len(posteriors) < 2:
        raise AnalysisInputError(f"posteriors: need at least 2 arms, got {len(posteriors)}")
    if any(p.family == "normal" and p.b == 0 for p in posteriors):
        return _prob_best_with_point_masses(posteriors)
    return _rank([_Density(p) for p in posteriors])[0]


def _prob_best_with_point_masses(posteriors: Sequence[Posterior]) -> np.ndarray:
    """:func:`prob_best` for normal posteriors some of which have zero spread (an arm whose values are
    all equal, e.g. no revenue yet): those are point masses. Tied point masses share their probability."""
    k = len(posteriors)
    mass = [i for i, p in enumerate(posteriors) if p.b == 0]
    smooth = [i for i, p in enumerate(posteriors) if p.b > 0]
    out = np.zeros(k)
    top = max(posteriors[i].a for i in mass)
    tied = [i for i in mass if posteriors[i].a == top]
    for i in tied:  # a lower point mass is never best
        others = [float(special.ndtr((top - posteriors[j].a) / posteriors[j].b)) for j in smooth]
        out[i] = float(np.prod(others)) / len(tied)
    for i in smooth:
        arm = posteriors[i]
        rest = [posteriors[j] for j in smooth if j != i]
        lo, hi = max(float(arm.ppf(_TAIL)), top), float(arm.ppf(1 - _TAIL))
        if lo >= hi:
            continue

        def integrand(x: float, arm: Posterior = arm, rest: list[Posterior] = rest) -> float:
            return float(arm.pdf(x)) * float(np.prod([float(r.cdf(x)) for r in rest]))

        out[i] = integrate.quad(integrand, lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    return np.clip(out, 0.0, 1.0)


def expected_loss(control: Posterior, variant: Posterior) -> float:
    """Risk of shipping the variant: :math:`E[\\max(\\theta_A - \\theta_B, 0)]`.

    Normal, with :math:`d = \\theta_A - \\theta_B \\sim N(\\mu, s^2)`:
    :math:`\\mu\\Phi(\\mu/s) + s\\phi(\\mu/s)`.
    Beta: one integral over the narrower posterior (:func:`_beta_expected_loss`).
    """
    _same_family([control, variant])
    if control.family == "normal":
        mu = control.a - variant.a
        s = math.hypot(control.b, variant.b)
        if s == 0:
            return max(mu, 0.0)
        z = mu / s
        return float(mu * special.ndtr(z) + s * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    return max(_beta_expected_loss(control, variant), 0.0)


def _beta_expected_loss(control: Posterior, variant: Posterior) -> float:
    r""":math:`E[(\theta_A - \theta_B)^+]` for two Betas, one integral over the narrower density.

    With :math:`A^+ \sim \mathrm{Beta}(a_A + 1, b_A)` (so :math:`x f_A(x) = \bar\theta_A f_{A^+}(x)`),
    :math:`E[(A - y)^+] = \bar\theta_A (1 - F_{A^+}(y)) - y (1 - F_A(y))` and
    :math:`E[(x - B)^+] = x F_B(x) - \bar\theta_B F_{B^+}(x)`, integrated against :math:`f_B` or
    :math:`f_A` in the Gauss-Legendre panels of :class:`_Density`.
    """
    if variant.std <= control.std:
        plus = Posterior("beta", control.a + 1, control.b)
        return float(_Density(variant).integrate(
            lambda y: (control.mean * (1 - plus.cdf(y)) - y * (1 - control.cdf(y)))[None, :])[0])
    plus = Posterior("beta", variant.a + 1, variant.b)
    return float(_Density(control).integrate(
        lambda x: (x * variant.cdf(x) - variant.mean * plus.cdf(x))[None, :])[0])


@dataclass(frozen=True)
class PosteriorDraws:
    """Monte Carlo summaries of k posteriors against the first (control), from ``draws`` draws each.

    ``expected_loss_vs_best`` has shape (k,); the interval arrays (k, 2), the control's own row zero.
    """

    expected_loss_vs_best: np.ndarray
    absolute_lift_ci: np.ndarray
    relative_lift_ci: np.ndarray
    draws: int


def summarise_draws(
    posteriors: Sequence[Posterior], *, rng: np.random.Generator, draws: int = 20_000, level: float = 0.95
) -> PosteriorDraws:
    """Credible intervals of each arm's lift over ``posteriors[0]`` and its expected loss versus the best.

    Expected loss versus the best arm is :math:`E[\\max_j \\theta_j - \\theta_i]`; the lift intervals
    are the central ``level`` quantiles of :math:`\\theta_i - \\theta_0` and
    :math:`\\theta_i / \\theta_0 - 1` (NaN when the control's draws reach zero for a normal model).
    """
    _same_family(posteriors)
    if draws < 100:
        raise AnalysisInputError(f"draws: need at least 100 posterior draws, got {draws}")
    if not 0 < level < 1:
        raise AnalysisInputError(f"level: must be between 0 and 1, got {level!r}")
    theta = np.stack([p.sample(rng, draws) for p in posteriors])  # (k, draws)
    best = theta.max(axis=0)
    loss = (best[None, :] - theta).mean(axis=1)
    q = [(1 - level) / 2, (1 + level) / 2]
    absolute = np.quantile(theta - theta[0], q, axis=1).T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = theta / theta[0] - 1
    if np.all(theta[0] > 0):
        relative = np.quantile(ratio, q, axis=1).T
    else:
        relative = np.full((len(posteriors), 2), np.nan)
    return PosteriorDraws(loss, absolute, relative, draws)


def _same_family(posteriors: Sequence[Posterior]) -> None:
    families = {p.family for p in posteriors}
    if len(families) > 1:
        raise AnalysisInputError(f"posteriors: all arms need the same model, got {sorted(families)}")


@dataclass(frozen=True)
class PosteriorCurve:
    """A posterior density evaluated on a grid, for plotting: ``x`` and ``density`` shape (points,)."""

    label: str
    x: np.ndarray
    density: np.ndarray


def posterior_curve(posterior: Posterior, label: str, points: int = 200) -> PosteriorCurve:
    """The density over the central 99.98% of ``posterior``; a point mass (a normal posterior with zero
    spread) is drawn as a unit spike at its value."""
    if posterior.family == "normal" and posterior.b == 0:
        return PosteriorCurve(label, np.array([posterior.a, posterior.a]), np.array([0.0, 1.0]))
    x = np.linspace(float(posterior.ppf(1e-4)), float(posterior.ppf(1 - 1e-4)), points)
    return PosteriorCurve(label, x, posterior.pdf(x))


# ---------------------------------------------------------------- exact summaries by numerical integration

#: Quantiles of a posterior where its quadrature panels break: dense in the tails, so that every panel
#: spans well under one standard deviation; the mass left outside is 2e-13.
_PANEL_QUANTILES = np.array(
    [_TAIL, 1e-11, 1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97,
     0.99, 0.999, 1 - 1e-4, 1 - 1e-5, 1 - 1e-7, 1 - 1e-9, 1 - 1e-11, 1 - _TAIL]
)
_PANEL_Z = special.ndtri(_PANEL_QUANTILES[1:-1])
_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(7)  # panels < 1 sd wide: 7 nodes agree with 10 to 1e-14
#: Posterior mass at or below zero above which a control's relative lift is not reported (NaN).
_RATIO_MASS = 1e-6


@dataclass(frozen=True)
class PosteriorSummary:
    """Summaries of k posteriors against the first (control), by numerical integration.

    ``expected_loss_vs_best`` has shape (k,); ``absolute_lift_ci`` and ``relative_lift_ci`` shape (k, 2),
    the control's own rows zero; ``prob_best`` (k,) is :func:`prob_best`. The fields of
    :class:`PosteriorDraws`, without Monte Carlo error.
    """

    expected_loss_vs_best: np.ndarray
    absolute_lift_ci: np.ndarray
    relative_lift_ci: np.ndarray
    prob_best: np.ndarray


def summarise_posteriors(posteriors: Sequence[Posterior], *, level: float = 0.95) -> PosteriorSummary:
    """Credible intervals of each arm's lift over ``posteriors[0]`` and its expected loss versus the best,
    computed by one-dimensional quadrature and root finding (deterministic, accurate to about 1e-9).

    Expected loss versus the best arm :math:`E[\\max_j \\theta_j] - E[\\theta_i]`, with

    .. math:: E[\\max_j \\theta_j] = \\int x \\, d\\prod_j F_j(x) = h - \\int_l^h \\prod_j F_j(x)\\,dx

    over a range :math:`[l, h]` holding all but 1e-13 of every posterior. The absolute lift's interval
    holds the quantiles of :math:`D = \\theta_i - \\theta_0`, whose distribution function is
    :math:`P(D \\le d) = \\int f_0(x) F_i(x + d)\\,dx` (normal posteriors: :math:`D` is normal). The
    relative lift's holds those of :math:`R = \\theta_i / \\theta_0 - 1`,
    :math:`P(R \\le r) = P(\\theta_i \\le (1 + r)\\theta_0) = \\int f_0(x) F_i((1 + r)x)\\,dx` (normal:
    :math:`\\Phi\\big(((1+r)\\mu_0 - \\mu_i) / \\sqrt{\\sigma_i^2 + (1+r)^2\\sigma_0^2}\\big)`), defined
    while the control's posterior puts at most 1e-6 of its mass at or below zero (NaN otherwise). Each
    integral runs over the narrower of the two densities, in 7-point Gauss-Legendre panels between its
    quantiles (breaking also where the other's distribution function reaches 0 or 1); the quantiles
    are found by Newton's method from the normal approximation, safeguarded by bisection.
    """
    _same_family(posteriors)
    if len(posteriors) < 2:
        raise AnalysisInputError(f"posteriors: need at least 2 arms, got {len(posteriors)}")
    if not 0 < level < 1:
        raise AnalysisInputError(f"level: must be between 0 and 1, got {level!r}")
    k = len(posteriors)
    q = ((1 - level) / 2, (1 + level) / 2)
    densities = [_Density(p) for p in posteriors]
    best, top = _rank(densities)
    if any(p.family == "normal" and p.b == 0 for p in posteriors):
        best = _prob_best_with_point_masses(posteriors)
    loss = np.array([max(top - p.mean, 0.0) for p in posteriors])
    absolute = np.zeros((k, 2))
    relative = np.zeros((k, 2))
    ratio_defined = float(posteriors[0].cdf(0.0)) <= _RATIO_MASS
    for i in range(1, k):
        absolute[i] = _difference_quantiles(densities[0], densities[i], q)
        ratio = _ratio_quantiles(densities[0], densities[i], q) if ratio_defined else [math.nan, math.nan]
        relative[i] = [t - 1 for t in ratio]
    return PosteriorSummary(loss, absolute, relative, best)


#: Beta parameters from which the inner panel boundaries come from the Cornish-Fisher expansion (skewness
#: at most 0.07 there) instead of the exact quantile function.
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


class _Density:
    r"""Quadrature of :math:`\int f(x) g(x)\,dx` against one posterior's density f, its panels, nodes
    and weighted density values computed once."""

    def __init__(self, posterior: Posterior) -> None:
        self.posterior = posterior
        self.breaks = _breaks(posterior)
        x, w = _gauss_nodes(self.breaks)
        self.x = x
        with np.errstate(invalid="ignore"):  # a point mass has no nodes
            self.wf = w * posterior.pdf(x)

    def integrate(self, g, kinks: Sequence[float] = ()) -> np.ndarray:
        """The integrals for a function ``g`` of x returning rows (shape (m, nodes)), shape (m,); panels
        also break at ``kinks``, where g may not be smooth (a distribution function reaching 0 or 1)."""
        lo, hi = self.breaks[0], self.breaks[-1]
        inner = [c for c in kinks if lo < c < hi]
        if not inner:
            return g(self.x) @ self.wf
        x, w = _gauss_nodes(np.unique(np.concatenate([self.breaks, inner])))
        return g(x) @ (w * self.posterior.pdf(x))


def _union_breaks(densities: Sequence[_Density]) -> np.ndarray:
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


def _rank(densities: Sequence[_Density]) -> tuple[np.ndarray, float]:
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
    cdfs = np.stack([d.posterior.cdf(x) for d in densities])  # (k, nodes)
    ones = np.ones((1, x.size))
    before = np.cumprod(np.vstack([ones, cdfs[:-1]]), axis=0)  # product of the arms before i
    after = np.cumprod(np.vstack([ones, cdfs[:0:-1]]), axis=0)[::-1]  # product of the arms after i
    best = np.array([float((w * d.posterior.pdf(x)) @ (before[i] * after[i]))
                     for i, d in enumerate(densities)])
    top = hi - float(w @ (before[-1] * cdfs[-1]))
    return np.clip(best, 0.0, 1.0), top


def _difference_quantiles(
    over_control: _Density, over_variant: _Density, probs: Sequence[float]
) -> list[float]:
    """Quantiles of :math:`\\theta_{variant} - \\theta_{control}` at ``probs``."""
    control, variant = over_control.posterior, over_variant.posterior
    if control.family == "normal":
        s = math.hypot(control.b, variant.b)
        return [variant.a - control.a + s * float(special.ndtri(p)) for p in probs]
    # distribution and density of the difference at d, integrated over the narrower posterior; the
    # other's distribution function has kinks where its argument reaches 0 and 1
    if control.std <= variant.std:
        dens = over_control

        def cdf_pdf(d: float) -> tuple[float, float]:
            cdf, pdf = dens.integrate(lambda x: np.stack([variant.cdf(x + d), variant._rough_pdf(x + d)]),
                                      (-d, 1 - d))
            return float(cdf), float(pdf)
    else:
        dens = over_variant

        def cdf_pdf(d: float) -> tuple[float, float]:
            sf, pdf = dens.integrate(lambda y: np.stack([control.cdf(y - d), control._rough_pdf(y - d)]),
                                     (d, 1 + d))
            return 1 - float(sf), float(pdf)

    centre = variant.mean - control.mean
    spread = math.hypot(control.std, variant.std)
    skew = (_third_cumulant(variant) - _third_cumulant(control)) / spread**3
    starts = [centre + spread * _cornish_fisher(float(special.ndtri(p)), skew) for p in probs]
    return [_quantile(cdf_pdf, p, centre, spread, -1.0, 1.0, start)
            for p, start in zip(probs, starts, strict=True)]


def _third_cumulant(p: Posterior) -> float:
    """:math:`E[(\theta - \bar\theta)^3]` of a Beta posterior."""
    a, b = p.a, p.b
    return 2 * (b - a) * math.sqrt(a + b + 1) / ((a + b + 2) * math.sqrt(a * b)) * p.std**3


def _cornish_fisher(z: float, skew: float) -> float:
    """The standardised quantile of a distribution of skewness ``skew`` at the normal quantile ``z``
    (first-order Cornish-Fisher): where Newton's method starts."""
    return z + (z * z - 1) * skew / 6


def _ratio_quantiles(over_control: _Density, over_variant: _Density, probs: Sequence[float]) -> list[float]:
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
                    lambda x: np.stack([variant.cdf(t * x), x * variant._rough_pdf(t * x)]), (1 / t,))
                return float(cdf), float(pdf)
            sf, pdf = over_variant.integrate(
                lambda y: np.stack([control.cdf(y / t), y / (t * t) * control._rough_pdf(y / t)]), (t,))
            return 1 - float(sf), float(pdf)

        lower = 0.0
    centre = variant.mean / control.mean
    spread = math.hypot(variant.std / control.mean, centre * control.std / control.mean)
    starts: list[float | None] = [None] * len(probs)
    if control.family == "beta":  # log t nearly N(log(m_v / m_c) - (cv_v^2 - cv_c^2) / 2, cv_v^2 + cv_c^2)
        cv_c, cv_v = control.std / control.mean, variant.std / variant.mean
        mu, sigma = math.log(centre) - (cv_v**2 - cv_c**2) / 2, math.hypot(cv_c, cv_v)
        starts = [math.exp(mu + sigma * float(special.ndtri(p))) for p in probs]
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
