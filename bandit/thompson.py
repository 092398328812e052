r"""Thompson sampling for binary rewards (Beta-Bernoulli) and real rewards (Normal-Inverse-Gamma).

The propensity of an arm is its posterior probability of being the best among the allowed arms,

.. math:: \pi_a = P\left(\theta_a = \max_{b \in \text{allowed}} \theta_b \mid \text{data}\right),

estimated by Monte Carlo from ``n_draws`` joint posterior draws (averaged over arms with the same
posterior, which are exchangeable: :func:`bandit.sampling.pool_equal_arms`). The draws come from a
generator derived from the policy seed and a digest of the posterior state and the mask, so the same
state always gives the same probabilities. ``choose`` then samples from exactly these probabilities
(not from a fresh posterior draw), so the logged propensity is the true probability of the logged
action.

Every allowed arm keeps at least ``min_share`` of the probability (default 0.01:
:func:`bandit.sampling.with_min_share`), so no arm's propensity reaches 0 and none reaches 1 while two
or more arms are allowed. With ``discount`` or ``window_days`` the posterior forgets old rows
(:mod:`bandit.forgetting`), and every row may be a fractional trial (``weights``:
:mod:`bandit.row_changes`).
"""

from __future__ import annotations

import numpy as np

from bandit.arm_policy import ArmPolicy
from bandit.arm_stats import ArmMoments, ArmSuccesses
from bandit.inputs import check_finite, check_positive
from bandit.options import check_n_actions, check_n_draws, check_seed
from bandit.policy import PolicyError
from bandit.sampling import pool_equal_arms
from bandit.seeding import derived_generator

DEFAULT_DRAWS = 10_000


def _win_shares(draws: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fraction of rows of ``draws`` (n_draws, m) each allowed arm wins, scattered into shape (k,)."""
    winners = np.argmax(draws, axis=1)
    shares = np.bincount(winners, minlength=draws.shape[1]) / draws.shape[0]
    probs = np.zeros(mask.shape[0])
    probs[np.flatnonzero(mask)] = shares
    return probs


class _PosteriorThompson(ArmPolicy):
    """Shared by the two: the Monte Carlo probability of being best from ``n_draws`` posterior draws."""

    n_draws: int
    seed: int

    def _start_thompson(self, n_draws: int, seed: int, min_share: float | None, discount: float | None,
                        window_days: float | None) -> None:
        self.n_draws = check_n_draws(n_draws)
        self.seed = check_seed(seed)
        self._start_learning(min_share, discount, window_days)

    def posterior(self) -> tuple[np.ndarray, ...]:
        """The posterior parameters, each of shape (n_actions,)."""
        raise NotImplementedError

    def _draw(
        self, rng: np.random.Generator, posterior: tuple[np.ndarray, ...], mask: np.ndarray
    ) -> np.ndarray:
        """``n_draws`` joint draws of the allowed arms' means, shape (n_draws, allowed arms)."""
        raise NotImplementedError

    def _distribution(self, mask: np.ndarray) -> np.ndarray:
        posterior = self.posterior()
        draws = self._draw(derived_generator(self.seed, *posterior, mask), posterior, mask)
        return pool_equal_arms(_win_shares(draws, mask), mask, *posterior)


class BetaThompson(_PosteriorThompson):
    """Beta-Bernoulli Thompson sampling for rewards in [0, 1] (clicks, opens, conversions).

    Each arm has a Beta(``prior_alpha`` + successes, ``prior_beta`` + failures) posterior; a reward
    ``r`` in [0, 1] of a row of weight ``w`` adds ``w r`` successes and ``w (1 - r)`` failures
    (fractional rewards and weights are allowed).

    Parameters
    ----------
    n_actions : int
    prior_alpha, prior_beta : float, > 0
    n_draws : int, in [100, 1000000]
        Monte Carlo draws for the probability of being best (standard error <= 0.5 / sqrt(n_draws)).
    seed : int
        Seeds the Monte Carlo generator (combined with the posterior state).
    min_share : float in [0, 1 / n_actions], optional
        The least probability of each allowed arm; default :func:`bandit.options.default_min_share`.
    discount : float in (0, 1], optional
        Weight per day of a row's age (discounted Thompson sampling); needs ``times``.
    window_days : float, optional
        Learn only from the rows of the last ``window_days`` (sliding window); needs ``times``.
    """

    tag = "thompson"
    stats_type = ArmSuccesses
    snapshot_options = ("prior_alpha", "prior_beta", "n_draws", "seed")

    def __init__(
        self,
        n_actions: int,
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        n_draws: int = DEFAULT_DRAWS,
        seed: int = 0,
        min_share: float | None = None,
        discount: float | None = None,
        window_days: float | None = None,
    ) -> None:
        super().__init__(check_n_actions(n_actions))
        self.prior_alpha = check_positive("prior_alpha", prior_alpha)
        self.prior_beta = check_positive("prior_beta", prior_beta)
        self._start_thompson(n_draws, seed, min_share, discount, window_days)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """The Beta posterior parameters ``(alpha, beta)``, each of shape (n_actions,)."""
        stats = self.memory.current()
        return self.prior_alpha + stats.arm_to_successes, self.prior_beta + stats.arm_to_failures

    def _draw(
        self, rng: np.random.Generator, posterior: tuple[np.ndarray, ...], mask: np.ndarray
    ) -> np.ndarray:
        alpha, beta = posterior
        return rng.beta(alpha[mask], beta[mask], size=(self.n_draws, int(mask.sum())))

    def _check_rewards(self, name: str, rewards: np.ndarray) -> None:
        outside = (rewards < 0) | (rewards > 1)
        if outside.any():
            raise PolicyError(
                f"{name}: Beta-Bernoulli Thompson sampling needs rewards in [0, 1], "
                f"got {float(rewards[outside][0])!r}"
            )


class GaussianThompson(_PosteriorThompson):
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
    Bayesian analysis of the Gaussian distribution", eqs. 85-90 and 110). With weighted rows (``weights``,
    or the age weights of ``discount`` and ``window_days``), ``n`` is the total weight and :math:`\bar x`
    and ``m2`` are weighted. Batches merge by the parallel-variance formula (Chan et al. 1979), so
    arrival order does not matter (:class:`bandit.arm_stats.ArmMoments`).

    Parameters
    ----------
    n_actions : int
    prior_mean : float
    prior_count, prior_alpha, prior_beta : float, > 0
    n_draws, seed, min_share, discount, window_days : see :class:`BetaThompson`.
    """

    tag = "gaussian_thompson"
    stats_type = ArmMoments
    snapshot_options = ("prior_mean", "prior_count", "prior_alpha", "prior_beta", "n_draws", "seed")

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
        min_share: float | None = None,
        discount: float | None = None,
        window_days: float | None = None,
    ) -> None:
        super().__init__(check_n_actions(n_actions))
        self.prior_mean = check_finite("prior_mean", prior_mean)
        self.prior_count = check_positive("prior_count", prior_count)
        self.prior_alpha = check_positive("prior_alpha", prior_alpha)
        self.prior_beta = check_positive("prior_beta", prior_beta)
        self._start_thompson(n_draws, seed, min_share, discount, window_days)

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The posterior ``(mu_n, kappa_n, alpha_n, beta_n)``, each of shape (n_actions,)."""
        stats = self.memory.current()
        n, xbar = stats.arm_to_count, stats.arm_to_mean
        kappa = self.prior_count + n
        mu = (self.prior_count * self.prior_mean + n * xbar) / kappa
        alpha = self.prior_alpha + n / 2
        beta = self.prior_beta + stats.arm_to_m2 / 2 + self.prior_count * n * (
            xbar - self.prior_mean) ** 2 / (2 * kappa)
        return mu, kappa, alpha, beta

    def _draw(
        self, rng: np.random.Generator, posterior: tuple[np.ndarray, ...], mask: np.ndarray
    ) -> np.ndarray:
        mu, kappa, alpha, beta = posterior
        scale = np.sqrt(beta / (alpha * kappa))
        m = int(mask.sum())
        return mu[mask] + scale[mask] * rng.standard_t(2 * alpha[mask], size=(self.n_draws, m))
