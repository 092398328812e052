"""Bandit planning: how much traffic a Thompson sampling bandit sends to losing variants, by simulation.

A campaign of ``horizon`` sends goes out in ``batches`` equal batches. The bandit is SendLab's own
Beta-Bernoulli Thompson sampling policy (``bandit.make_policy("thompson", k)``): each batch is drawn
from its probabilities of being best, the batch's outcomes are fed back with ``update``, and the next
batch uses the new posterior. The fixed A/B test of the same length sends ``1/k`` of the traffic to
every arm. The *losing share* is the share of sends that went to an arm whose true rate is below the
best; *lost conversions* are :math:`\\sum_{\\text{sends}} (p^* - p_{a})`, the expected conversions given
up against sending the best arm to everyone (the regret).

The bandit's numbers are a seeded simulation of ``replications`` campaigns, reported with their Monte
Carlo standard errors; the fixed test's are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.power.answer import Answer
from analysis.power.inputs import (
    MAX_ARMS,
    Correction,
    check_count,
    check_open_unit,
    check_random,
    check_rates,
)
from analysis.power.rates import solve_rate
from bandit import make_policy
from bandit.options import default_min_share


@dataclass(frozen=True)
class BanditPlan(Answer):
    """Traffic to losing variants: a Thompson sampling bandit against a fixed A/B test of the same length.

    Attributes
    ----------
    rates : tuple of float, length k
        Assumed true rate of each arm, control first.
    horizon, batches, batch_size : int
        Sends in the campaign, the number of batches, and the sends of the first batch (batch sizes
        differ by at most one).
    replications : int
        Simulated campaigns.
    losing_share_bandit, losing_share_bandit_se : float
        Mean share of sends to losing arms under the bandit, and its Monte Carlo standard error.
    losing_share_fixed : float
        The same for the fixed test (exact: losing arms / k).
    lost_conversions_bandit, lost_conversions_bandit_se, lost_conversions_fixed : float
        Expected conversions given up against always sending the best arm.
    losing_share_by_batch : tuple of float, length batches
        The bandit's mean share of each batch sent to losing arms (its learning curve).
    prob_bandit_picks_best : float
        Share of campaigns in which the arm with the highest posterior mean at the end is the best.
    fixed_power : float
        Power of the fixed test (two-sided, statsmodels convention, Bonferroni over k - 1
        comparisons) of the best treatment against the control at ``horizon / k`` per arm.
    method : str
        A sentence stating what was simulated and how.
    seed : int or None
        The seed the generator was made from, when the caller gave a seed.
    """

    rates: tuple[float, ...]
    horizon: int
    batches: int
    batch_size: int
    replications: int
    losing_share_bandit: float
    losing_share_bandit_se: float
    losing_share_fixed: float
    lost_conversions_bandit: float
    lost_conversions_bandit_se: float
    lost_conversions_fixed: float
    losing_share_by_batch: tuple[float, ...]
    prob_bandit_picks_best: float
    fixed_power: float
    method: str
    seed: int | None = None


def _batch_sizes(horizon: int, batches: int) -> np.ndarray:
    """``batches`` sizes summing to ``horizon``, differing by at most one (the larger ones first)."""
    base, extra = divmod(horizon, batches)
    sizes = np.full(batches, base, dtype=np.int64)
    sizes[:extra] += 1
    return sizes


def plan_bandit(
    rates: Sequence[float],
    horizon: int,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    batches: int = 20,
    replications: int = 200,
    n_draws: int = 1000,
    alpha: float = 0.05,
    correction: Correction = "bonferroni",
    on_progress: Callable[[int], None] | None = None,
) -> BanditPlan:
    """Simulate a Thompson sampling campaign and compare its traffic to losers with a fixed A/B test.

    Parameters
    ----------
    rates : sequence of float, shape (k,)
        Assumed true rates, control first; not all equal.
    horizon : int
        Sends in the campaign.
    rng : numpy.random.Generator, optional
        Drives the policy's draws, the simulated outcomes and the policies' seeds.
    seed : int, optional
        Instead of ``rng``: the seed of a new generator, returned with the answer.
    batches : int, default 20
        Equal batches the sends go out in; the bandit learns between batches.
    replications : int, default 200
        Simulated campaigns.
    n_draws : int, default 1000
        The policy's Monte Carlo draws for its probabilities of being best (at least 100).
    alpha, correction
        For the fixed test's power.
    on_progress : callable, optional
        Called with the number of campaigns simulated so far after each one (for a progress bar).

    Returns
    -------
    BanditPlan

    Examples
    --------
    >>> plan = plan_bandit([0.04, 0.05], 20_000, rng=np.random.default_rng(1), replications=20)
    >>> plan.losing_share_fixed, plan.losing_share_bandit < 0.5
    (0.5, True)
    """
    values = np.asarray(check_rates(rates, MAX_ARMS, "no variant is losing"))
    rng, seed = check_random(rng, seed)
    k = values.size
    batches = check_count("batches", batches, 1)
    horizon = check_count("horizon", horizon, batches)
    replications = check_count("replications", replications, 2)
    n_draws = check_count("n_draws", n_draws, 100)
    alpha = check_open_unit("alpha", alpha)
    best = values.max()
    losing = values < best
    gap = best - values
    sizes = _batch_sizes(horizon, batches)

    losing_by_batch = np.zeros((replications, batches))
    lost = np.zeros(replications)
    picks_best = np.zeros(replications, dtype=bool)
    for r in range(replications):
        policy = make_policy("thompson", k, options={"n_draws": n_draws}, seed=int(rng.integers(2**31)))
        for b, size in enumerate(sizes):
            choices = policy.choose(int(size), rng)
            rewards = (rng.random(int(size)) < values[choices.actions]).astype(float)
            policy.update(int(size), choices.actions, rewards, choices.propensities)
            losing_by_batch[r, b] = np.count_nonzero(losing[choices.actions]) / size
            lost[r] += gap[choices.actions].sum()
        alpha_post, beta_post = policy.posterior()  # type: ignore[attr-defined]
        picks_best[r] = not losing[int(np.argmax(alpha_post / (alpha_post + beta_post)))]
        if on_progress is not None:
            on_progress(r + 1)

    share = losing_by_batch @ (sizes / horizon)
    best_treatment = 1 + int(np.argmax(np.abs(values[1:] - values[0])))
    fixed_power = solve_rate(values[0], mde=values[best_treatment] - values[0], n_per_arm=horizon / k,
                             power=None, alpha=alpha, arms=k, correction=correction).power
    return BanditPlan(
        rates=tuple(float(v) for v in values), horizon=horizon, batches=batches, batch_size=int(sizes[0]),
        replications=replications,
        losing_share_bandit=float(share.mean()),
        losing_share_bandit_se=float(share.std(ddof=1) / np.sqrt(replications)),
        losing_share_fixed=float(np.count_nonzero(losing) / k),
        lost_conversions_bandit=float(lost.mean()),
        lost_conversions_bandit_se=float(lost.std(ddof=1) / np.sqrt(replications)),
        lost_conversions_fixed=float(horizon * gap.mean()),
        losing_share_by_batch=tuple(float(v) for v in losing_by_batch.mean(axis=0)),
        prob_bandit_picks_best=float(picks_best.mean()),
        fixed_power=float(fixed_power),
        method=(
            f"Seeded simulation of {replications} campaigns of {horizon:,} sends in {batches} batches with "
            f"SendLab's Beta-Bernoulli Thompson sampling (bandit.make_policy('thompson'), Beta(1, 1) prior, "
            f"{n_draws} draws for its probabilities, at least {default_min_share(k):.0%} of each batch to "
            "every arm); the fixed A/B test splits the same sends equally "
            "(exact); the fixed test's power is the two-sided statsmodels power of the best treatment "
            "against the control."
        ),
        seed=seed,
    )
