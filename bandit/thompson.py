r"""Thompson sampling for binary rewards (Beta-Bernoulli) and real rewards (Normal-Inverse-Gamma).

The propensity of an arm is its posterior probability of being the best among the allowed arms,

.. math:: \pi_a = P\left(\theta_a = \max_{b \in \text{allowed}} \theta_b \mid \text{data}\right),

estimated by Monte Carlo from ``n_draws`` joint posterior draws. The draws come from a generator
derived from the policy seed and a digest of the posterior state and the mask, so the same state always
gives the same probabilities. ``choose`` then samples from exactly these probabilities (not from a
fresh posterior draw), so the logged propensity is the true probability of the logged action. An arm
that wins none of the draws gets probability 0 and is not chosen. ``explored`` is True where the
chosen arm is not among those with the best posterior mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.arm_policy import ArmPolicy
from bandit.inputs import Feedback, Revision, check_finite, check_positive
from bandit.options import check_n_actions, check_n_draws, check_seed
from bandit.policy import PolicyError
from bandit.sampling import best_set
from bandit.seeding import derived_generator
from bandit.snapshot import encode_snapshot

DEFAULT_DRAWS = 10_000


def _win_shares(draws: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fraction of rows of ``draws`` (n_draws, m) each allowed arm wins, scattered into shape (k,)."""
    winners = np.argmax(draws, axis=1)
    shares = np.bincount(winners, minlength=draws.shape[1]) / draws.shape[0]
    probs = np.zeros(mask.shape[0])
    probs[np.flatnonzero(mask)] = shares
    return probs


class BetaThompson(ArmPolicy):
    """Beta-Bernoulli Thompson sampling for rewards in [0, 1] (clicks, opens, conversions).

    Each arm has a Beta(``prior_alpha`` + successes, ``prior_beta`` + failures) posterior; a reward
    ``r`` in [0, 1] adds ``r`` successes and ``1 - r`` failures (fractional rewards are allowed).

    Parameters
    ----------
    n_actions : int
    prior_alpha, prior_beta : float, > 0
    n_draws : int, in [100, 1000000]
        Monte Carlo draws for the probability of being best (standard error <= 0.5 / sqrt(n_draws)).
    seed : int
        Seeds the Monte Carlo generator (combined with the posterior state).
    """

    tag = "thompson"

    def __init__(
        self,
        n_actions: int,
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        n_draws: int = DEFAULT_DRAWS,
        seed: int = 0,
    ) -> None:
        super().__init__(check_n_actions(n_actions))
        self.prior_alpha = check_positive("prior_alpha", prior_alpha)
        self.prior_beta = check_positive("prior_beta", prior_beta)
        self.n_draws = check_n_draws(n_draws)
        self.seed = check_seed(seed)
        self.arm_to_successes = np.zeros(self.n_actions)
        self.arm_to_failures = np.zeros(self.n_actions)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """The Beta posterior parameters ``(alpha, beta)``, each of shape (n_actions,)."""
        return self.prior_alpha + self.arm_to_successes, self.prior_beta + self.arm_to_failures

    def _distribution(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta = self.posterior()
        rng = derived_generator(self.seed, alpha, beta, mask)
        draws = rng.beta(alpha[mask], beta[mask], size=(self.n_draws, int(mask.sum())))
        return _win_shares(draws, mask), best_set(alpha / (alpha + beta), mask)

    def _learn(self, feedback: Feedback) -> None:
        rewards = feedback.rewards
        if np.any((rewards < 0) | (rewards > 1)):
            bad = float(rewards[(rewards < 0) | (rewards > 1)][0])
            raise PolicyError(
                f"rewards: Beta-Bernoulli Thompson sampling needs rewards in [0, 1], got {bad!r}"
            )
        k = self.n_actions
        self.arm_to_successes += np.bincount(feedback.actions, weights=rewards, minlength=k)
        self.arm_to_failures += np.bincount(feedback.actions, weights=1.0 - rewards, minlength=k)

    def _revise(self, revision: Revision) -> None:
        """A reward ``r`` added ``r`` successes and ``1 - r`` failures: move ``new - old`` across."""
        for name, rewards in (("old_rewards", revision.old_rewards), ("new_rewards", revision.new_rewards)):
            outside = (rewards < 0) | (rewards > 1)
            if outside.any():
                raise PolicyError(
                    f"{name}: Beta-Bernoulli Thompson sampling needs rewards in [0, 1], "
                    f"got {float(rewards[outside][0])!r}"
                )
        learned = self.arm_to_successes + self.arm_to_failures  # one per reward learned
        unseen = revision.actions[learned[revision.actions] <= 0]
        if unseen.size:
            raise PolicyError(f"actions: arm {int(unseen[0])} has no learned reward to revise")
        moved = np.bincount(revision.actions, weights=revision.deltas, minlength=self.n_actions)
        self.arm_to_successes = self.arm_to_successes + moved
        self.arm_to_failures = self.arm_to_failures - moved

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, {
            "n_actions": self.n_actions, "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta,
            "n_draws": self.n_draws, "seed": self.seed,
            "successes": self.arm_to_successes, "failures": self.arm_to_failures,
        })

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BetaThompson:
        policy = cls(state["n_actions"], prior_alpha=state["prior_alpha"], prior_beta=state["prior_beta"],
                     n_draws=state["n_draws"], seed=state["seed"])
        policy.arm_to_successes = np.asarray(state["successes"], dtype=np.float64)
        policy.arm_to_failures = np.asarray(state["failures"], dtype=np.float64)
        return policy


class GaussianThompson(ArmPolicy):
    r"""Thompson sampling for real-valued rewards (revenue) with a Normal-Inverse-Gamma prior per arm.

    Rewards of arm ``a`` are modelled as Normal(mu_a, sigma_a^2) with unknown mean and variance and
    the conjugate prior NIG(``prior_mean``, ``prior_count``, ``prior_alpha``, ``prior_beta``). After
    ``n`` rewards with mean :math:`\bar x` and sum of squared deviations ``m2``:

    .. math::
        \kappa_n = \kappa_0 + n,\quad \mu_n = (\kappa_0\mu_0 + n\bar x)/\kappa_n,\quad
        \alpha_n = \alpha_0 + n/2,\quad
        \beta_n = \beta_0 + m_2/2 + \kappa_0 n (\bar x - \mu_0)^2 / (2\kappa_n),

    and the posterior of the mean is Student-t with :math:`2\alpha_n` degrees of freedom, location
    :math:`\mu_n` and scale :math:`\sqrt{\beta_n / (\alpha_n\kappa_n)}` (Murphy 2007, "Conjugate
    Bayesian analysis of the Gaussian distribution", eqs. 85-90 and 110). Batches merge by the
    parallel-variance formula (Chan et al. 1979), so arrival order does not matter.
    """

    tag = "gaussian_thompson"

    def __init__(
        self,
        n_actions: int,
        *,
        prior_mean: float = 0.0,
        prior_count: float = 1.0,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        n_draws: int = DEFAULT_DRAWS,
        seed: int = 0,
    ) -> None:
        super().__init__(check_n_actions(n_actions))
        self.prior_mean = check_finite("prior_mean", prior_mean)
        self.prior_count = check_positive("prior_count", prior_count)
        self.prior_alpha = check_positive("prior_alpha", prior_alpha)
        self.prior_beta = check_positive("prior_beta", prior_beta)
        self.n_draws = check_n_draws(n_draws)
        self.seed = check_seed(seed)
        self.arm_to_count = np.zeros(self.n_actions)
        self.arm_to_mean = np.zeros(self.n_actions)
        self.arm_to_m2 = np.zeros(self.n_actions)

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The posterior ``(mu_n, kappa_n, alpha_n, beta_n)``, each of shape (n_actions,)."""
        n, xbar = self.arm_to_count, self.arm_to_mean
        kappa = self.prior_count + n
        mu = (self.prior_count * self.prior_mean + n * xbar) / kappa
        alpha = self.prior_alpha + n / 2
        beta = self.prior_beta + self.arm_to_m2 / 2 + self.prior_count * n * (xbar - self.prior_mean) ** 2 / (
            2 * kappa)
        return mu, kappa, alpha, beta

    def _distribution(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, kappa, alpha, beta = self.posterior()
        rng = derived_generator(self.seed, mu, kappa, alpha, beta, mask)
        scale = np.sqrt(beta / (alpha * kappa))
        m = int(mask.sum())
        draws = mu[mask] + scale[mask] * rng.standard_t(2 * alpha[mask], size=(self.n_draws, m))
        return _win_shares(draws, mask), best_set(mu, mask)

    def _learn(self, feedback: Feedback) -> None:
        k = self.n_actions
        count = np.bincount(feedback.actions, minlength=k).astype(np.float64)
        sums = np.bincount(feedback.actions, weights=feedback.rewards, minlength=k)
        batch_mean = np.divide(sums, count, out=np.zeros(k), where=count > 0)
        deviations = feedback.rewards - batch_mean[feedback.actions]
        batch_m2 = np.bincount(feedback.actions, weights=deviations**2, minlength=k)
        total = self.arm_to_count + count
        delta = batch_mean - self.arm_to_mean
        share = np.divide(count, total, out=np.zeros(k), where=total > 0)
        self.arm_to_m2 = self.arm_to_m2 + batch_m2 + delta**2 * self.arm_to_count * share
        self.arm_to_mean = self.arm_to_mean + delta * share
        self.arm_to_count = total

    def _revise(self, revision: Revision) -> None:
        r"""Replace learned rewards ``x`` by ``y`` (``d = y - x``) in each arm's count ``n``, mean and m2.

        .. math::
            \bar x' = \bar x + \textstyle\sum d / n,\quad
            m_2' = m_2 + \textstyle\sum d\,(y - \bar x' + x - \bar x),

        which follows from :math:`m_2 = \sum x^2 - n\bar x^2` (for one row it is the replacement step
        of Welford's update); the count does not change.
        """
        k = self.n_actions
        unseen = revision.actions[self.arm_to_count[revision.actions] <= 0]
        if unseen.size:
            raise PolicyError(f"actions: arm {int(unseen[0])} has no learned reward to revise")
        deltas = revision.deltas
        moved = np.bincount(revision.actions, weights=deltas, minlength=k)
        count = self.arm_to_count
        mean = self.arm_to_mean + np.divide(moved, count, out=np.zeros(k), where=count > 0)
        spread = (revision.new_rewards - mean[revision.actions]) + (
            revision.old_rewards - self.arm_to_mean[revision.actions])
        m2 = self.arm_to_m2 + np.bincount(revision.actions, weights=deltas * spread, minlength=k)
        self.arm_to_m2 = np.maximum(m2, 0.0)  # rounding must not make a sum of squares negative
        self.arm_to_mean = mean

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, {
            "n_actions": self.n_actions, "prior_mean": self.prior_mean, "prior_count": self.prior_count,
            "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta, "n_draws": self.n_draws,
            "seed": self.seed, "count": self.arm_to_count, "mean": self.arm_to_mean, "m2": self.arm_to_m2,
        })

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GaussianThompson:
        policy = cls(state["n_actions"], prior_mean=state["prior_mean"], prior_count=state["prior_count"],
                     prior_alpha=state["prior_alpha"], prior_beta=state["prior_beta"],
                     n_draws=state["n_draws"], seed=state["seed"])
        policy.arm_to_count = np.asarray(state["count"], dtype=np.float64)
        policy.arm_to_mean = np.asarray(state["mean"], dtype=np.float64)
        policy.arm_to_m2 = np.asarray(state["m2"], dtype=np.float64)
        return policy
