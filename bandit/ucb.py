r"""UCB1 over a batch: the share of each arm in the schedule sequential UCB1 would follow.

UCB1 (Auer, Cesa-Bianchi & Fischer 2002) pulls the arm of highest upper confidence bound

.. math:: U_a = \bar x_a + \alpha \sqrt{2 \ln N / n_a},

with ``N`` the total and ``n_a`` the arm's (weighted) number of rewards. SendLab decides in batches and
learns later, so pulling the top bound for a whole batch would send it all to one arm with propensity 1.
Instead the policy plans ``batch_size`` pulls as sequential UCB1 would if each pending pull counted
towards its arm (its width shrinks, its mean stays: the pending outcome is not known yet) while the
confidence level :math:`\ln N` stays at its value at the start of the batch:

.. math:: v_a(c) = \bar x_a + \alpha \sqrt{2 \ln N} / \sqrt{n_a + c},\qquad c = 0, 1, \ldots

Each step takes the largest next index, so the plan takes the ``batch_size`` largest values of all
the arms' decreasing sequences (:func:`batch_schedule`). Arm ``a``'s share of the plan,
:math:`c_a / \text{batch\_size}`, is its probability, and each row draws its arm independently from
these probabilities, so the logged propensity is the true probability of the logged arm (a fixed
schedule handed out in a fixed order would make each row's arm certain, and a schedule shuffled across
a batch would tie the rows of a batch together). The probabilities depend on the learned state only,
not on how many rows a call asks for, so a stream of single decisions spreads as a batch does.
Every allowed arm then keeps at least ``min_share``. While an allowed arm has no data
(:math:`U_a = +\infty`) the untried allowed arms share the plan evenly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bandit.arm_policy import ArmPolicy
from bandit.arm_stats import ArmMeans
from bandit.inputs import check_positive
from bandit.options import check_n_actions
from bandit.policy import PolicyError
from bandit.sampling import best_set, split_evenly

DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 10**9
#: Bisection steps for the plan's threshold: enough to reach adjacent floats from any start.
MAX_BISECTIONS = 2100


def check_batch_size(value: object) -> int:
    """``options.batch_size`` as an int in [1, :data:`MAX_BATCH_SIZE`] (1 is textbook UCB1)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= MAX_BATCH_SIZE:
        raise PolicyError(
            f"options.batch_size: expected an integer in [1, {MAX_BATCH_SIZE:,}], got {value!r}")
    return int(value)


def _pulls_above(level: float, means: np.ndarray, counts: np.ndarray, width: float, cap: int) -> np.ndarray:
    """Per arm, how many of its indices :math:`v_a(c)` are >= ``level`` (at most ``cap``)."""
    gap = level - means
    reach = np.full(means.shape, float(cap))
    above = gap > 0
    reach[above] = np.clip(np.floor((width / gap[above]) ** 2 - counts[above]) + 1, 0, cap)
    return reach


def batch_schedule(means: np.ndarray, counts: np.ndarray, width: float, pulls: int) -> np.ndarray:
    r"""How many of ``pulls`` pending pulls sequential UCB would give each arm.

    Arm ``a`` has index :math:`v_a(c) = m_a + w / \sqrt{n_a + c}` after ``c`` pending pulls, and
    :math:`\#\{c \ge 0 : v_a(c) \ge L\} = \lfloor w^2 / (L - m_a)^2 - n_a \rfloor + 1` for
    :math:`L > m_a`. Bisection finds a level with exactly ``pulls`` indices at or above it, or the level
    of the ``pulls``-th largest index, where the arms tied at it share the rest evenly.

    Parameters
    ----------
    means, counts : ndarray of float, shape (m,)
        Each arm's mean and its (positive) count.
    width : float, > 0
        :math:`w = \alpha\sqrt{2 \ln N}`.
    pulls : int, >= 1

    Returns
    -------
    ndarray of float, shape (m,): the pulls per arm, summing to ``pulls``.
    """
    cap = pulls + 1
    low = float(means.max())  # every index of the best mean is above it: count "infinite"
    high = float(np.nextafter((means + width / np.sqrt(counts)).max(), np.inf))  # no index reaches it
    for _ in range(MAX_BISECTIONS):
        middle = low + (high - low) / 2
        if middle <= low or middle >= high:
            break
        taken = _pulls_above(middle, means, counts, width, cap)
        total = taken.sum()
        if total == pulls:
            return taken
        if total > pulls:
            low = middle
        else:
            high = middle
    above = _pulls_above(high, means, counts, width, cap)
    tied = _pulls_above(low, means, counts, width, cap) - above
    return above + (pulls - above.sum()) * tied / tied.sum()


class UCB1(ArmPolicy):
    r"""UCB1 spread over a planned batch (see the module); exploration constant ``alpha``.

    ``explored`` is True where the drawn arm is not the one with the largest share.

    Parameters
    ----------
    n_actions : int
    alpha : float, > 0
        Multiplies the confidence width (1 is the textbook UCB1 for rewards in [0, 1]).
    batch_size : int, >= 1
        The pulls planned per learning step (decisions made between two updates). 1 is textbook UCB1:
        the top bound takes every draw but the floor.
    min_share, discount, window_days : see :class:`bandit.thompson.BetaThompson`. With ``discount``
        or ``window_days`` the counts and sums are discounted or windowed, and ``N`` is their total
        (discounted and sliding-window UCB, Garivier & Moulines 2011).
    """

    tag = "ucb"
    stats_type = ArmMeans
    snapshot_options = ("alpha", "batch_size")

    def __init__(
        self,
        n_actions: int,
        *,
        alpha: float = 1.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        min_share: float | None = None,
        discount: float | None = None,
        window_days: float | None = None,
    ) -> None:
        super().__init__(check_n_actions(n_actions))
        self.alpha = check_positive("alpha", alpha)
        self.batch_size = check_batch_size(batch_size)
        self._start_learning(min_share, discount, window_days)

    @property
    def stats(self) -> ArmMeans:
        """The per-arm weighted counts and reward sums the policy learns from now."""
        return self.memory.current()

    def _width(self) -> float:
        r""":math:`\alpha\sqrt{2 \ln N}`, with :math:`\ln N` as 0 while ``N`` < 1 (fractional counts)."""
        total = float(self.stats.arm_to_count.sum())
        return self.alpha * math.sqrt(2 * math.log(max(total, 1.0)))

    def upper_bounds(self) -> np.ndarray:
        """The bound :math:`U_a` per arm, shape (n_actions,); +inf for an arm without data."""
        counts = self.stats.arm_to_count
        tried = counts > 0
        bonus = np.full(counts.shape, np.inf)
        bonus[tried] = self._width() / np.sqrt(counts[tried])
        return self.stats.means(0.0) + bonus

    def _distribution(self, mask: np.ndarray) -> np.ndarray:
        counts = self.stats.arm_to_count
        untried = mask & (counts <= 0)
        if untried.any():
            return split_evenly(untried)
        means, width = self.stats.means(0.0), self._width()
        if width <= 0:
            return split_evenly(best_set(means, mask))
        probs = np.zeros(self.n_actions)
        probs[mask] = batch_schedule(means[mask], counts[mask], width, self.batch_size) / self.batch_size
        return probs

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> UCB1:
        # a snapshot from before batch planning pulled the top bound alone: batch_size 1
        return super().from_state({"batch_size": 1, **state})
