"""The one interface every SendLab policy answers.

A policy chooses one of ``n_actions`` actions per row of a batch. Non-contextual policies accept the
batch size as ``contexts`` (an ``int``) or any batch (only its length is used); contextual policies
need the features, one row per recipient: a sequence of mappings (``{"device": "ios",
"recency_days": 3}``), a 2-D numeric array (column ``j`` is the feature ``x{j}``) or a pandas
DataFrame (see :mod:`bandit.context_columns`).

``allowed`` is an optional boolean mask of shape ``(n, n_actions)``: actions that rules removed for a
row get probability zero and are never chosen; each row must allow at least one action.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bandit.inputs import Feedback, Revision

FeatureValue = float | int | str | bool
Context = Mapping[str, FeatureValue]
Contexts = int | Sequence[Context] | np.ndarray


class PolicyError(ValueError):
    """Bad input to a policy: the message names the problem."""


class RevisionUnsupported(PolicyError):
    """The policy cannot replace a reward it has already learned (see :meth:`Policy.revise`)."""


@dataclass(frozen=True)
class Choices:
    """What ``choose`` drew for a batch of ``n`` rows.

    Attributes
    ----------
    actions : ndarray of int, shape (n,)
        The chosen action index per row.
    propensities : ndarray of float, shape (n,)
        The probability with which that action was chosen, in (0, 1].
    explored : ndarray of bool, shape (n,)
        True where the drawn action is not among the highest-probability actions of its row, ties
        included (:func:`bandit.sampling.top_set`: one definition for every policy).
    """

    actions: np.ndarray
    propensities: np.ndarray
    explored: np.ndarray

    def __len__(self) -> int:
        return int(self.actions.shape[0])


class Policy(ABC):
    """A policy over ``n_actions`` actions. Subclasses implement ``probabilities``, ``update`` and
    ``to_bytes``; ``choose`` draws from ``probabilities`` unless a subclass has a faster way.

    Policies whose state is a sufficient statistic of the rewards also answer :meth:`revise` and set
    ``can_revise`` to True.
    """

    n_actions: int
    #: Whether :meth:`revise` is exact for this policy (otherwise it raises RevisionUnsupported).
    can_revise: bool = False

    @abstractmethod
    def probabilities(self, contexts: Contexts, allowed: np.ndarray | None = None) -> np.ndarray:
        """The distribution the policy draws from, shape ``(n, n_actions)``, rows sum to 1."""

    def choose(
        self, contexts: Contexts, rng: np.random.Generator, allowed: np.ndarray | None = None
    ) -> Choices:
        """Draw one action per row from :meth:`probabilities` with ``rng``, with its propensity (its
        probability there) and whether it explored (:func:`bandit.sampling.make_choices`)."""
        from bandit.sampling import make_choices  # sampling builds on this module's Choices

        return make_choices(self.probabilities(contexts, allowed), rng)

    def update(
        self,
        contexts: Contexts,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        *,
        allowed: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        times: np.ndarray | None = None,
    ) -> None:
        """Learn from a batch of logged decisions and their rewards (delayed, in bulk).

        Parameters
        ----------
        contexts : int or sequence of mappings, length n
        actions : ndarray of int, shape (n,)
        rewards : ndarray of float, shape (n,)
        propensities : ndarray of float, shape (n,), in (0, 1]
        allowed : ndarray of bool, shape (n, n_actions), optional
            The mask the decisions were made under; every policy checks that each logged action was
            allowed, and the VW policy learns from exactly those actions.
        weights : ndarray of float, shape (n,), optional
            Each row's trial weight, finite and >= 0 (default 1): a row of weight ``w`` counts as ``w``
            of a trial (:mod:`bandit.row_changes`), as delay-aware learning needs for a decision whose
            outcome window is still open. Every policy with ``can_revise`` takes them; the others
            refuse any weight other than 1.
        times : ndarray of float, shape (n,), optional
            Each row's time in days on any fixed origin (the decision's send time). Required by
            policies that forget (``discount``, ``window_days``: :mod:`bandit.forgetting`); checked
            and ignored by the others.
        """
        from bandit.inputs import check_feedback  # inputs builds on this module's types

        n, rows = self._learning_rows(contexts)
        self._learn(rows, check_feedback(n, self.n_actions, actions, rewards, propensities, allowed),
                    weights, times)

    def _learning_rows(self, contexts: Contexts) -> tuple[int, Any]:
        """The batch size and the contexts in the form this policy learns from (default: as given)."""
        from bandit.inputs import batch_size

        return batch_size(contexts), contexts

    @abstractmethod
    def _learn(self, rows: Any, feedback: Feedback, weights: np.ndarray | None,
               times: np.ndarray | None) -> None:
        """Learn checked ``feedback`` (:meth:`update`) on ``rows`` of :meth:`_learning_rows`."""

    def revise(
        self,
        contexts: Contexts,
        actions: np.ndarray,
        old_rewards: np.ndarray,
        new_rewards: np.ndarray,
        *,
        old_weights: np.ndarray | None = None,
        new_weights: np.ndarray | None = None,
        times: np.ndarray | None = None,
    ) -> None:
        """Replace rewards already learned: row ``i`` was learned with ``old_rewards[i]``.

        Afterwards the state is the one ``update`` with ``new_rewards`` (and ``new_weights``) in their
        place would have given (exact, up to floating-point rounding), so an outcome that arrives after
        its decision was learned is not lost. The caller guarantees that each row was learned, with that
        context, action, old reward, old weight and time. Policies that cannot do this exactly
        (``can_revise`` False) raise :class:`RevisionUnsupported`.

        Parameters
        ----------
        contexts : int or sequence of mappings, length n
        actions : ndarray of int, shape (n,)
        old_rewards, new_rewards : ndarray of float, shape (n,)
        old_weights, new_weights : ndarray of float, shape (n,), optional
            The trial weight each row was learned with and the one it has now (default 1 each): a
            pending decision learned as ``F(e)`` of a trial moves to weight 1 when its outcome arrives.
        times : ndarray of float, shape (n,), optional
            Each row's time in days, as passed to ``update`` (required where ``update`` needs it).
        """
        if not self.can_revise:
            raise RevisionUnsupported(f"{type(self).__name__} cannot revise a reward it has learned")
        from bandit.inputs import check_revision

        n, rows = self._learning_rows(contexts)
        self._relearn(rows, check_revision(n, self.n_actions, actions, old_rewards, new_rewards),
                      old_weights, new_weights, times)

    def _relearn(self, rows: Any, revision: Revision, old_weights: np.ndarray | None,
                 new_weights: np.ndarray | None, times: np.ndarray | None) -> None:
        """Replace checked rewards (:meth:`revise`); every policy with ``can_revise`` implements it."""
        raise NotImplementedError

    @abstractmethod
    def to_bytes(self) -> bytes:
        """A snapshot that ``bandit.load_policy`` restores to an equivalent policy."""
