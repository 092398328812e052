"""Test-then-send on a known list: how much of the list to test before sending the winner to the rest.

A campaign tests ``arms`` variants on ``n`` recipients each, then sends the variant with the highest
observed rate to the remaining ``N - arms * n`` recipients. Expected total conversions are

.. math:: E(n) = n \\sum_j p_j + (N - k n)\\, E[p_{\\hat\\jmath}(n)],

where :math:`\\hat\\jmath(n)` is the arm with the highest observed rate after the test. The plan is the
``n`` (a whole number) that maximises :math:`E(n)`.

Two ways to say what the rates are:

known rates (``rates``, or ``baseline`` with ``lift``)
    The observed rates are normal, :math:`\\hat p_j \\sim N(p_j, \\sigma_j^2)` with
    :math:`\\sigma_j^2 = p_j q_j / n`, and the chance each arm wins is the one-dimensional integral

    .. math:: P(\\hat\\jmath = j) = E_Z\\left[\\prod_{i \\ne j}
        \\Phi\\big((p_j + \\sigma_j Z - p_i)/\\sigma_i\\big)\\right],

    computed by Gauss-Hermite quadrature (for two arms it is the closed form
    :math:`\\Phi\\big((p_1 - p_0) / \\sqrt{\\sigma_0^2 + \\sigma_1^2}\\big)`).
normal prior (``baseline`` with ``prior_sd``)
    Each arm's rate is drawn from :math:`N(\\mu, \\sigma^2)` with :math:`\\mu` the baseline, as in
    Feit & Berman (2019): :math:`E[p_{\\hat\\jmath}] = \\mu + e_k \\sigma^2 / \\sqrt{\\sigma^2 + s^2/n}` with
    :math:`s^2 = \\mu(1-\\mu)` and :math:`e_k` the expected maximum of ``k`` standard normals
    (:math:`e_2 = 1/\\sqrt{\\pi}`); for two arms the optimum has the closed form
    :math:`n^* = \\sqrt{N s^2 / (4\\sigma^2) + (3 s^2 / (4\\sigma^2))^2} - 3 s^2 / (4\\sigma^2)`.

Everything here is closed form or deterministic quadrature under the normal approximation; no
simulation (the tests check the chance of picking the winner against a seeded simulation).

References
----------
Feit, E. M. and Berman, R. (2019). Test & Roll: Profit-maximizing A/B tests. *Marketing Science*
38(6), 1038-1058.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import stats

from analysis.power.answer import Answer
from analysis.power.inputs import (
    MAX_ARMS,
    MAX_N_PER_ARM,
    Correction,
    PowerInputError,
    check_count,
    check_nonzero,
    check_open_unit,
    check_positive,
    check_rates,
    comparison_alpha,
)
from analysis.power.rates import solve_rate

#: Most arms with known rates (the chance each wins costs k^2 quadratures per test size).
MAX_KNOWN_RATES = 10

_NODES, _WEIGHTS = hermegauss(121)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class TestThenSendPlan(Answer):
    """The test size that maximises expected conversions on a known list.

    Attributes
    ----------
    list_size : int
        Recipients on the list, ``N``.
    arms : int
        Variants tested, ``k``.
    model : {"known rates", "normal prior"}
        How the rates were described.
    rates : tuple of float or None
        The assumed true rate of each arm (known rates), control first.
    prior_mean, prior_sd : float or None
        The normal prior of each arm's rate (normal prior).
    per_arm : int
        Recipients per variant in the test, ``n``.
    test_size, send_size : int
        ``k * n`` and ``N - k * n``.
    test_share : float
        ``test_size / N``.
    expected_conversions : float
        :math:`E(n)` at the optimum.
    expected_conversions_without_test : float
        Sending the control to everyone (known rates) or any one arm (prior): :math:`N p_0` or :math:`N\\mu`.
    expected_conversions_perfect : float
        Sending the truly best arm to everyone (the unreachable ceiling).
    power : float
        Power of the test of the best treatment against the control at ``n`` per arm (two-sided,
        statsmodels convention, Bonferroni over ``k - 1`` comparisons); with a prior, the power
        averaged over the prior.
    prob_correct_winner : float or None
        Chance that the arm sent to the rest is the truly best one (None with a prior and ``k > 2``).
    shares, expected_by_share : tuple of float
        The expected total conversions on a grid of test shares, for a chart.
    method : str
        A sentence stating the model and how the numbers were computed.
    """

    __test__ = False  # not a pytest class despite the name

    list_size: int
    arms: int
    model: Literal["known rates", "normal prior"]
    rates: tuple[float, ...] | None
    prior_mean: float | None
    prior_sd: float | None
    per_arm: int
    test_size: int
    send_size: int
    test_share: float
    expected_conversions: float
    expected_conversions_without_test: float
    expected_conversions_perfect: float
    power: float
    prob_correct_winner: float | None
    alpha: float
    shares: tuple[float, ...]
    expected_by_share: tuple[float, ...]
    method: str


def win_probabilities(rates: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Chance each arm has the highest observed rate after ``n`` recipients per arm (normal approximation).

    Parameters
    ----------
    rates : ndarray, shape (k,)
        True rates, in (0, 1).
    n : ndarray, shape (m,)
        Recipients per arm.

    Returns
    -------
    ndarray, shape (m, k)
        Rows sum to 1 (up to quadrature error).
    """
    rates = np.asarray(rates, dtype=float)
    n = np.asarray(n, dtype=float)
    sd = np.sqrt(rates * (1 - rates))[None, :] / np.sqrt(n)[:, None]  # (m, k)
    k = rates.size
    if k == 2:
        z = (rates[1] - rates[0]) / np.sqrt(sd[:, 0] ** 2 + sd[:, 1] ** 2)
        second = stats.norm.cdf(z)
        return np.column_stack([1 - second, second])
    out = np.empty((n.size, k))
    for j in range(k):
        # observed rate of arm j at each node: p_j + sd_j z, shape (m, g)
        level = rates[j] + sd[:, j, None] * _NODES[None, :]
        others = [i for i in range(k) if i != j]
        below = np.ones_like(level)
        for i in others:
            below *= stats.norm.cdf((level - rates[i]) / sd[:, i, None])
        out[:, j] = below @ _WEIGHTS
    return out


def expected_max_of_normals(k: int) -> float:
    """Expected maximum of ``k`` independent standard normals, :math:`e_k` (:math:`e_2 = 1/\\sqrt\\pi`)."""
    if k == 2:
        return 1.0 / math.sqrt(math.pi)
    # E[max] = integral of z * k * phi(z) * Phi(z)^(k-1); with Gauss-Hermite weights for phi
    return float(np.sum(_WEIGHTS * _NODES * k * stats.norm.cdf(_NODES) ** (k - 1)))


def _candidates(limit: int) -> np.ndarray:
    return np.unique(np.round(np.geomspace(1, limit, min(limit, 400))).astype(np.int64))


def _maximise(objective, limit: int) -> int:
    """The whole ``n`` in [1, limit] with the largest objective: a geometric grid, then evenly spaced
    grids between the best point's neighbours until every integer between them is tried."""
    grid = _candidates(limit)
    while True:
        values = objective(grid)
        best = int(np.argmax(values))
        low = int(grid[max(best - 1, 0)])
        high = int(grid[min(best + 1, grid.size - 1)])
        if high - low <= 64:
            break
        grid = np.unique(np.round(np.linspace(low, high, 65)).astype(np.int64))
    fine = np.arange(low, high + 1, dtype=np.int64)
    return int(fine[int(np.argmax(objective(fine)))])


def plan_test_then_send(
    list_size: int,
    baseline: float | None = None,
    *,
    lift: float | None = None,
    relative: bool = True,
    rates: Sequence[float] | None = None,
    prior_sd: float | None = None,
    arms: int = 2,
    alpha: float = 0.05,
    correction: Correction = "bonferroni",
) -> TestThenSendPlan:
    """The share of a list to test that maximises expected total conversions.

    Give exactly one of: ``rates`` (the true rate of each arm, control first); ``baseline`` with
    ``lift`` (two arms, the treatment at ``baseline * (1 + lift)``, or ``baseline + lift`` with
    ``relative=False``); ``baseline`` with ``prior_sd`` (``arms`` arms whose rates are drawn from a
    normal prior centred on the baseline).

    Parameters
    ----------
    list_size : int
        Recipients on the list, at least ``2 * arms``.
    baseline : float, optional
        Control rate, in (0, 1).
    lift : float, optional
        The treatment's effect, relative (default) or absolute.
    relative : bool, default True
        Read ``lift`` as a share of the baseline.
    rates : sequence of float, shape (k,), optional
        The true rates, control first; not all equal.
    prior_sd : float, optional
        Standard deviation of the normal prior of the rates.
    arms : int, default 2
        Number of arms with a prior (``rates`` sets it otherwise).
    alpha : float, default 0.05
        Significance level for the reported power.
    correction : {"bonferroni", "none"}
        Per-comparison alpha for the reported power when ``k > 2``.

    Returns
    -------
    TestThenSendPlan

    Examples
    --------
    >>> plan = plan_test_then_send(100_000, 0.03, lift=0.2)
    >>> plan.per_arm, round(plan.test_share, 3), round(plan.prob_correct_winner, 3)
    (6143, 0.123, 0.969)
    """
    list_size = check_count("list_size", list_size, 4, 2 * MAX_N_PER_ARM)
    alpha = check_open_unit("alpha", alpha)
    given = [name for name, value in (("rates", rates), ("lift", lift), ("prior_sd", prior_sd))
             if value is not None]
    if len(given) != 1:
        raise PowerInputError("give exactly one of rates, lift (with baseline) or prior_sd (with baseline).",
                              field="")
    if prior_sd is not None:
        return _plan_with_prior(list_size, baseline, prior_sd, arms, alpha, correction)
    if lift is not None:
        if baseline is None:
            raise PowerInputError("baseline is missing; lift is relative to the control rate.")
        baseline = check_open_unit("baseline", baseline)
        lift = check_nonzero("lift", lift)
        treatment = baseline * (1 + lift) if relative else baseline + lift
        if not 0.0 < treatment < 1.0:
            raise PowerInputError(f"lift gives a treatment rate of {treatment:.6g}, outside (0, 1).")
        rates = [baseline, treatment]
    elif baseline is not None:
        raise PowerInputError("baseline and rates were both given; the first rate is the control.")
    values = np.asarray(check_rates(rates, MAX_KNOWN_RATES, "there is no winner to find"))
    if list_size < 2 * values.size:
        raise PowerInputError(
            f"list_size must be at least {2 * values.size} to test {values.size} arms; got {list_size}."
        )
    return _plan_with_rates(list_size, values, alpha, correction)


def _by_share(list_size: int, k: int, expected) -> dict[str, tuple[float, ...]]:
    """Expected total conversions on a grid of test shares, for a chart."""
    limit = list_size // k
    grid = np.unique(np.round(np.linspace(1, limit, min(limit, 60))).astype(np.int64))
    return {"shares": tuple(float(s) for s in k * grid / list_size),
            "expected_by_share": tuple(float(e) for e in expected(grid))}


def _plan_with_rates(
    list_size: int, rates: np.ndarray, alpha: float, correction: Correction
) -> TestThenSendPlan:
    k = rates.size
    limit = list_size // k

    def expected(n: np.ndarray) -> np.ndarray:
        winner_rate = win_probabilities(rates, n) @ rates
        return n * rates.sum() + (list_size - k * n) * winner_rate

    n = _maximise(expected, limit)
    alpha_each = comparison_alpha(alpha, k, correction)
    best_treatment = 1 + int(np.argmax(np.abs(rates[1:] - rates[0])))
    if rates[best_treatment] == rates[0]:
        power = alpha_each
    else:
        power = solve_rate(rates[0], mde=rates[best_treatment] - rates[0], n_per_arm=n, power=None,
                           alpha=alpha, arms=k, correction=correction).power
    best = rates == rates.max()
    prob_correct = float(win_probabilities(rates, np.array([n]))[0, best].sum())
    return TestThenSendPlan(
        list_size=list_size, arms=k, model="known rates", rates=tuple(float(r) for r in rates),
        prior_mean=None, prior_sd=None, per_arm=n, test_size=k * n, send_size=list_size - k * n,
        test_share=k * n / list_size, expected_conversions=float(expected(np.array([n]))[0]),
        expected_conversions_without_test=float(list_size * rates[0]),
        expected_conversions_perfect=float(list_size * rates.max()),
        power=float(power), prob_correct_winner=prob_correct, alpha=alpha,
        **_by_share(list_size, k, expected),
        method=(
            f"Known rates, {k} arms of equal size; the chance each arm wins is the normal approximation "
            "of the observed rates (closed form for 2 arms, Gauss-Hermite quadrature beyond); the test size "
            "maximises expected total conversions over whole recipients per arm; power is the two-sided "
            "statsmodels power of the best treatment against the control"
            + (f" at Bonferroni alpha {alpha_each:.4g}." if k > 2 and correction == "bonferroni" else ".")
        ),
    )


def _plan_with_prior(
    list_size: int, baseline: float | None, prior_sd: float, arms: int, alpha: float, correction: Correction
) -> TestThenSendPlan:
    if baseline is None:
        raise PowerInputError("baseline is missing; the prior is centred on the control rate.")
    mu = check_open_unit("baseline", baseline)
    sigma = check_positive("prior_sd", prior_sd)
    if sigma > 0.5:
        raise PowerInputError(f"prior_sd must be at most 0.5 (rates lie in (0, 1)); got {prior_sd!r}.")
    k = check_count("arms", arms, 2, MAX_ARMS)
    if list_size < 2 * k:
        raise PowerInputError(f"list_size must be at least {2 * k} to test {k} arms; got {list_size}.")
    s2 = mu * (1 - mu)
    e_k = expected_max_of_normals(k)

    def expected(n: np.ndarray) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        return list_size * mu + (list_size - k * n) * e_k * sigma**2 / np.sqrt(sigma**2 + s2 / n)

    n = _maximise(expected, list_size // k)
    alpha_each = comparison_alpha(alpha, k, correction)
    # average power over the prior: the true difference m_j - m_0 is N(0, 2 sigma^2)
    z = stats.norm.isf(alpha_each / 2)
    shift = np.abs(math.sqrt(2) * sigma * _NODES) / math.sqrt(2 * s2 / n)
    power = float(_WEIGHTS @ (stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)))
    # two arms: the observed and the true difference are normal with correlation rho
    rho = sigma / math.sqrt(sigma**2 + s2 / n)
    prob_correct = 0.5 + math.asin(rho) / math.pi if k == 2 else None
    return TestThenSendPlan(
        list_size=list_size, arms=k, model="normal prior", rates=None, prior_mean=mu, prior_sd=sigma,
        per_arm=n, test_size=k * n, send_size=list_size - k * n, test_share=k * n / list_size,
        expected_conversions=float(expected(np.array([n]))[0]),
        expected_conversions_without_test=float(list_size * mu),
        expected_conversions_perfect=float(list_size * (mu + e_k * sigma)),
        power=power, prob_correct_winner=prob_correct, alpha=alpha,
        **_by_share(list_size, k, expected),
        method=(
            f"Normal prior N({mu:g}, {sigma:g}^2) on each of {k} arms' rates (Feit & Berman 2019, Test & "
            "Roll), closed form; the test size maximises expected total conversions over whole recipients "
            "per arm; power is the two-sided power against the control averaged over the prior"
            + ("; the chance of the correct winner is 1/2 + asin(rho)/pi." if k == 2 else
               "; the chance of the correct winner is not computed beyond 2 arms.")
        ),
    )
