"""How much larger a test must be when it is analysed sequentially (peeking allowed) at the same power.

All designs are expressed on the information scale of the fixed-sample test: time :math:`t = n / n_{fixed}`
and the score :math:`S(t) = W(t) + \\theta t` (a Brownian motion with drift), with :math:`\\theta` the
drift at which the fixed two-sided test at ``alpha`` has exactly the requested power,
:math:`\\Phi(\\theta - z_{1-\\alpha/2}) + \\Phi(-\\theta - z_{1-\\alpha/2}) = 1 - \\beta`. The answer is the
*inflation factor*: the maximum sample of the sequential design divided by the fixed sample.

``"pocock"`` and ``"obrien_fleming"``
    Group-sequential designs with ``looks`` equally spaced analyses; reject at look ``i`` when
    :math:`|Z_i| \\ge c` (Pocock) or :math:`|Z_i| \\ge c\\sqrt{K/i}` (O'Brien-Fleming). The constant and the
    maximum sample are solved by numerical integration of the multivariate normal distribution of
    :math:`(Z_1, \\dots, Z_K)`, with :math:`\\operatorname{corr}(Z_i, Z_j) = \\sqrt{t_i/t_j}` (scipy's
    randomised quasi-Monte Carlo ``multivariate_normal.cdf``, seeded, absolute error about 1e-5).
``"msprt"``
    The mixture sequential probability ratio test (Robbins 1970; Johari et al. 2017), an always-valid
    test: with a normal mixture :math:`N(0, \\tau^2)` over the drift, reject as soon as

    .. math:: \\Lambda_t = (1 + \\tau^2 t)^{-1/2} \\exp\\left(\\frac{\\tau^2 S(t)^2}{2(1 + \\tau^2 t)}\\right)
        \\ge 1/\\alpha,

    checked ``looks`` times per fixed sample (``looks=100`` is close to continuous monitoring).
    :math:`\\tau = \\text{mixing\\_ratio} \\cdot \\theta`. Its inflation is the ``power`` quantile of the
    first crossing time, by seeded simulation of ``replications`` paths.

References
----------
Jennison, C. and Turnbull, B. W. (2000). *Group Sequential Methods with Applications to Clinical
Trials*, ch. 2 (tables of Pocock and O'Brien-Fleming constants and inflation factors).
Johari, R., Koomen, P., Pekelis, L. and Walsh, D. (2017). Peeking at A/B tests. *KDD '17*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

from analysis.power.answer import Answer
from analysis.power.inputs import (
    PowerInputError,
    check_choice,
    check_count,
    check_open_unit,
    check_positive,
    check_power,
    check_random,
    round_up,
)

Design = Literal["msprt", "pocock", "obrien_fleming"]


@dataclass(frozen=True)
class SequentialInflation(Answer):
    """The sample of a sequential design relative to the fixed-sample test at the same power.

    Attributes
    ----------
    design : {"msprt", "pocock", "obrien_fleming"}
    alpha, power : float
        Two-sided significance level and power, as for the fixed test.
    looks : int
        Analyses in the design (group-sequential), or checks per fixed sample (mSPRT).
    inflation : float
        Maximum sample needed divided by the fixed sample (for the mSPRT: the sample by which the test
        has stopped with probability ``power``).
    expected_sample_ratio : float
        Expected sample at stopping, under the planned effect, divided by the fixed sample (the design
        stops early when the effect is there); the mSPRT is capped at ``inflation``.
    critical_value : float or None
        Pocock's :math:`c` or O'Brien-Fleming's :math:`c` (the final-look boundary); None for the mSPRT.
    mixing_ratio : float or None
        :math:`\\tau / \\theta` of the mSPRT.
    fixed_n, sequential_n : int or None
        The fixed-sample size given, and ``inflation`` times it rounded up.
    computed_by : str
        ``"numerical integration"`` or ``"seeded simulation"``.
    replications : int or None
        Simulated paths (mSPRT).
    method : str
        A sentence stating the design and how the numbers were computed.
    seed : int or None
        The seed the generator was made from, when the caller gave a seed.
    """

    design: Design
    alpha: float
    power: float
    looks: int
    inflation: float
    expected_sample_ratio: float
    critical_value: float | None
    mixing_ratio: float | None
    fixed_n: int | None
    sequential_n: int | None
    computed_by: str
    replications: int | None
    method: str
    seed: int | None = None


def fixed_drift(alpha: float, power: float) -> float:
    """The drift :math:`\\theta` at which the fixed two-sided z-test (both tails) has exactly ``power``."""
    z = stats.norm.isf(alpha / 2)
    return optimize.brentq(
        lambda theta: stats.norm.cdf(theta - z) + stats.norm.cdf(-theta - z) - power, 0.0, 40.0, xtol=1e-13
    )


def _correlation(times: np.ndarray) -> np.ndarray:
    return np.sqrt(np.minimum.outer(times, times) / np.maximum.outer(times, times))


def _continue_probability(bounds: np.ndarray, means: np.ndarray, times: np.ndarray, seed: int) -> float:
    """P(|Z_i| < bounds_i for every look i) for Z with the given means and Brownian correlation."""
    return float(stats.multivariate_normal.cdf(
        bounds, mean=means, cov=_correlation(times), lower_limit=-bounds, abseps=1e-5, releps=1e-5,
        rng=np.random.default_rng(seed),
    ))


def _group_sequential(design: Design, alpha: float, power: float, looks: int,
                      seed: int) -> tuple[float, float, float]:
    """(critical value, inflation, expected sample ratio) of a Pocock or O'Brien-Fleming design."""
    fractions = np.arange(1, looks + 1) / looks
    shape = np.ones(looks) if design == "pocock" else np.sqrt(looks / np.arange(1, looks + 1))
    zeros = np.zeros(looks)

    def type_one_gap(c: float) -> float:
        return 1.0 - _continue_probability(c * shape, zeros, fractions, seed) - alpha

    critical = optimize.brentq(type_one_gap, stats.norm.isf(alpha / 2) * 0.5, 10.0, xtol=1e-7)
    bounds = critical * shape
    theta = fixed_drift(alpha, power)

    def power_gap(maximum: float) -> float:
        means = theta * np.sqrt(maximum * fractions)
        return 1.0 - _continue_probability(bounds, means, fractions, seed) - power

    inflation = optimize.brentq(power_gap, 0.5, 10.0, xtol=1e-7)
    # expected sample: the design runs past look i when it has not stopped at looks 1..i
    means = theta * np.sqrt(inflation * fractions)
    expected = fractions[0]
    for i in range(1, looks):
        running = _continue_probability(bounds[:i], means[:i], fractions[:i], seed)
        expected += running * (fractions[i] - fractions[i - 1])
    return critical, inflation, expected * inflation


def _msprt(alpha: float, power: float, looks: int, mixing_ratio: float, replications: int,
           rng: np.random.Generator) -> tuple[float, float]:
    """(inflation, expected sample ratio) of the mSPRT, by simulating ``replications`` paths."""
    theta = fixed_drift(alpha, power)
    tau2 = (mixing_ratio * theta) ** 2
    dt = 1.0 / looks
    log_threshold = math.log(1.0 / alpha)
    score = np.zeros(replications)
    crossed_at = np.full(replications, np.inf)
    step, horizon = 0, 200 * looks  # 200 fixed samples: far beyond any practical inflation
    while step < horizon:
        step += 1
        t = step * dt
        score += theta * dt + math.sqrt(dt) * rng.standard_normal(replications)
        log_lr = -0.5 * math.log1p(tau2 * t) + tau2 * score**2 / (2.0 * (1.0 + tau2 * t))
        newly = (log_lr >= log_threshold) & np.isinf(crossed_at)
        crossed_at[newly] = t
        if np.mean(np.isfinite(crossed_at)) >= power and step % looks == 0:
            break
    if np.mean(np.isfinite(crossed_at)) < power:
        raise PowerInputError("mixing_ratio is too far from 1: the mSPRT does not reach the power in time.")
    inflation = float(np.quantile(crossed_at, power, method="inverted_cdf"))
    expected = float(np.mean(np.minimum(crossed_at, inflation)))
    return inflation, expected


def sequential_inflation(
    design: Design = "msprt",
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    looks: int | None = None,
    mixing_ratio: float = 1.0,
    replications: int = 20_000,
    fixed_n: int | None = None,
) -> SequentialInflation:
    """The sample of a sequential analysis relative to the fixed-sample test at the same power.

    Parameters
    ----------
    design : {"msprt", "pocock", "obrien_fleming"}
        The always-valid mSPRT (analyse any time), or a group-sequential design with ``looks`` analyses.
    rng : numpy.random.Generator, optional
        Seeds the simulation (mSPRT) or the quasi-Monte Carlo integration (group-sequential).
    seed : int, optional
        Instead of ``rng``: the seed of a new generator, returned with the answer.
    alpha, power : float
        Two-sided significance level and power.
    looks : int, optional
        Group-sequential analyses (default 5, at most 10), or mSPRT checks per fixed sample
        (default 100).
    mixing_ratio : float, default 1.0
        mSPRT mixing standard deviation over the planned effect.
    replications : int, default 20,000
        mSPRT simulated paths.
    fixed_n : int, optional
        A fixed-sample size (per arm or total) to inflate; gives ``sequential_n``.

    Returns
    -------
    SequentialInflation

    Examples
    --------
    >>> result = sequential_inflation("pocock", looks=5, rng=np.random.default_rng(0))
    >>> round(result.critical_value, 3), round(result.inflation, 3)
    (2.413, 1.228)
    """
    check_choice("design", design, ("msprt", "pocock", "obrien_fleming"))
    alpha = check_open_unit("alpha", alpha)
    power = check_power(power)
    if power <= alpha:
        raise PowerInputError(
            f"power must be greater than alpha ({alpha:g}), which a test reaches with no effect at all; "
            f"got {power!r}."
        )
    rng, seed = check_random(rng, seed)
    if fixed_n is not None:
        fixed_n = check_count("fixed_n", fixed_n, 1)
    if design == "msprt":
        looks = 100 if looks is None else check_count("looks", looks, 1)
        mixing_ratio = check_positive("mixing_ratio", mixing_ratio)
        if mixing_ratio > 1e6:
            raise PowerInputError(f"mixing_ratio must be at most 1e6; got {mixing_ratio!r}.")
        replications = check_count("replications", replications, 100)
        inflation, expected = _msprt(alpha, power, looks, mixing_ratio, replications, rng)
        critical, computed_by, mixing = None, "seeded simulation", mixing_ratio
        text = (
            f"mSPRT with a normal mixture (tau = {mixing_ratio:g} x the planned drift), always valid at "
            f"alpha {alpha:g}, checked {looks} times per fixed sample; the inflation is the {power:g} "
            f"quantile of the stopping time over {replications:,} seeded simulated paths."
        )
    else:
        looks = 5 if looks is None else check_count("looks", looks, 1)
        if looks > 10:
            raise PowerInputError(f"looks must be at most 10 for a group-sequential design; got {looks}.")
        # the boundaries are integrated to an absolute error of about 1e-5: alpha and 1 - power must
        # stay well above it
        if alpha < 1e-3:
            raise PowerInputError(
                f"alpha must be at least 0.001 for a group-sequential design (its boundary is integrated "
                f"to about 1e-5); got {alpha!r}."
            )
        if power > 0.999:
            raise PowerInputError(
                f"power must be at most 0.999 for a group-sequential design (its boundary is integrated "
                f"to about 1e-5); got {power!r}."
            )
        integration_seed = int(rng.integers(2**32))
        critical, inflation, expected = _group_sequential(design, alpha, power, looks, integration_seed)
        computed_by, mixing, replications = "numerical integration", None, None
        name = "Pocock" if design == "pocock" else "O'Brien-Fleming"
        text = (
            f"{name} group-sequential design, {looks} equally spaced looks, two-sided alpha {alpha:g}; "
            "boundary and maximum sample by numerical integration of the multivariate normal "
            "(scipy, seeded quasi-Monte Carlo)."
        )
    return SequentialInflation(
        design=design, alpha=alpha, power=power, looks=looks, inflation=inflation,
        expected_sample_ratio=expected, critical_value=critical, mixing_ratio=mixing, fixed_n=fixed_n,
        sequential_n=None if fixed_n is None else round_up(inflation * fixed_n), computed_by=computed_by,
        replications=replications, method=text, seed=seed,
    )
