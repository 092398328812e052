"""Bayesian results: Beta-Binomial for rates, a normal model for values.

Under the normal model the probability to beat control and the expected loss against it have closed
forms; everything else (those two for Betas, the probability to be best, the expected loss against the
best arm, the credible intervals of the lift) is a one-dimensional integral, by Gauss-Legendre panels
and, for the intervals, Newton's method (:mod:`analysis.posterior_quadrature`;
:func:`summarise_posteriors` gives them all for one metric at once). All are deterministic and
accurate to about 1e-9.
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
from analysis.posterior_quadrature import (
    TAIL,
    Density,
    compare_betas,
    difference_quantiles,
    rank_arms,
    ratio_quantiles,
)
from analysis.stats import ProportionStats, SampleStats


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

    Normal: :math:`\\Phi((\\mu_B - \\mu_A)/\\sqrt{\\sigma_A^2 + \\sigma_B^2})`. Beta:
    :math:`\\int f_B(x) F_A(x)\\,dx` over the narrower posterior
    (:func:`analysis.posterior_quadrature.compare_betas`).
    """
    _same_family([control, variant])
    if control.family == "normal":
        s = math.hypot(control.b, variant.b)
        if s == 0:
            return 0.5 if variant.a == control.a else float(variant.a > control.a)
        return float(special.ndtr((variant.a - control.a) / s))
    return compare_betas(Density(control), Density(variant))[0]


def prob_best(posteriors: Sequence[Posterior]) -> np.ndarray:
    """Probability that each arm has the highest mean, shape (k,).

    .. math:: P(\\text{best} = i) = \\int f_i(x) \\prod_{j \\ne i} F_j(x)\\,dx

    by 7-point Gauss-Legendre panels between the quantiles of every arm (so that each arm's density
    and each distribution function's rise are resolved, however narrow:
    :mod:`analysis.posterior_quadrature`), over a range holding all but 1e-13 of every posterior.
    """
    _same_family(posteriors)
    if len(posteriors) < 2:
        raise AnalysisInputError(f"posteriors: need at least 2 arms, got {len(posteriors)}")
    if any(p.family == "normal" and p.b == 0 for p in posteriors):
        return _prob_best_with_point_masses(posteriors)
    return rank_arms([Density(p) for p in posteriors])[0]


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
        lo, hi = max(float(arm.ppf(TAIL)), top), float(arm.ppf(1 - TAIL))
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
    Beta: one integral over the narrower posterior
    (:func:`analysis.posterior_quadrature.compare_betas`).
    """
    _same_family([control, variant])
    if control.family == "normal":
        mu = control.a - variant.a
        s = math.hypot(control.b, variant.b)
        if s == 0:
            return max(mu, 0.0)
        z = mu / s
        return float(mu * special.ndtr(z) + s * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    return compare_betas(Density(control), Density(variant))[1]


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

#: Posterior mass at or below zero above which a control's relative lift is not reported (NaN).
_RATIO_MASS = 1e-6


@dataclass(frozen=True)
class PosteriorSummary:
    """Summaries of k posteriors against the first (control), by numerical integration.

    ``expected_loss_vs_best`` has shape (k,); ``absolute_lift_ci`` and ``relative_lift_ci`` shape (k, 2),
    the control's own rows zero; ``prob_best`` (k,) is :func:`prob_best`: with
    ``expected_loss_vs_best``, the fields of :class:`PosteriorDraws`, without Monte Carlo error.
    ``prob_beat_control`` and ``expected_loss_vs_control`` (k,) are :func:`prob_beat` and
    :func:`expected_loss` of each arm against the control, the control's own entries zero.
    """

    expected_loss_vs_best: np.ndarray
    absolute_lift_ci: np.ndarray
    relative_lift_ci: np.ndarray
    prob_best: np.ndarray
    prob_beat_control: np.ndarray
    expected_loss_vs_control: np.ndarray


def summarise_posteriors(posteriors: Sequence[Posterior], *, level: float = 0.95) -> PosteriorSummary:
    """Credible intervals of each arm's lift over ``posteriors[0]``, its expected loss versus the best, its
    probability to be best and its probability to beat and expected loss against the control, computed
    by one-dimensional quadrature and root finding (deterministic, accurate to about 1e-9).

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
    are found by Newton's method from second-order Cornish-Fisher quantiles, safeguarded by bisection. The
    probability to beat and the expected losses against the control are :func:`prob_beat` and
    :func:`expected_loss` on the same panels; with two arms they are also the probabilities to be best
    and the losses versus the best.
    """
    _same_family(posteriors)
    if len(posteriors) < 2:
        raise AnalysisInputError(f"posteriors: need at least 2 arms, got {len(posteriors)}")
    if not 0 < level < 1:
        raise AnalysisInputError(f"level: must be between 0 and 1, got {level!r}")
    k = len(posteriors)
    q = ((1 - level) / 2, (1 + level) / 2)
    densities = [Density(p) for p in posteriors]
    # each arm against the control: P(beat), E[(control - arm)+], E[(arm - control)+]
    pairs = np.array([(0.0, 0.0, 0.0)] + [_against_control(densities[0], d) for d in densities[1:]])
    beats, control_loss = pairs[:, 0], pairs[:, 1]
    if k == 2:  # the best of two is the one ahead: P(best) and the loss versus the best are the pair's
        best = np.array([1 - beats[1], beats[1]])
        loss = np.array([pairs[1, 2], pairs[1, 1]])
    else:
        best, top = rank_arms(densities)
        if any(p.family == "normal" and p.b == 0 for p in posteriors):
            best = _prob_best_with_point_masses(posteriors)
        loss = np.array([max(top - p.mean, 0.0) for p in posteriors])
    absolute = np.zeros((k, 2))
    relative = np.zeros((k, 2))
    ratio_defined = float(posteriors[0].cdf(0.0)) <= _RATIO_MASS
    for i in range(1, k):
        absolute[i] = difference_quantiles(densities[0], densities[i], q)
        ratio = ratio_quantiles(densities[0], densities[i], q) if ratio_defined else [math.nan, math.nan]
        relative[i] = [t - 1 for t in ratio]
    return PosteriorSummary(loss, absolute, relative, best, beats, control_loss)


def _against_control(over_control: Density, over_variant: Density) -> tuple[float, float, float]:
    """:math:`P(V > C)`, :math:`E[(C - V)^+]` and :math:`E[(V - C)^+]`: closed forms for normal posteriors
    (:func:`prob_beat`, :func:`expected_loss`), one integral for Betas."""
    control, variant = over_control.posterior, over_variant.posterior
    if control.family == "normal":
        return prob_beat(control, variant), expected_loss(control, variant), expected_loss(variant, control)
    return compare_betas(over_control, over_variant)

