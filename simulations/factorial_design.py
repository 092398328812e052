"""The multivariate (full factorial) design of a synthetic run, and what its analysis concludes.

:class:`FactorialDesign` assigns each slot's variant independently and uniformly (one draw per slot and
recipient, as SendLab's multivariate experiments bucket each slot separately); the arm is the
combination, indexed in ``itertools.product`` order, and its propensity the product of the slots'.
:func:`factorial_conclusion` fits the factorial model (:func:`analysis.factorial.analyze_factorial`,
main effects and interactions) to a run's per-combination counts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.errors import AnalysisInputError
from bandit import Choices
from simulations.data import SimulationInputError


class FactorialDesign:
    """Uniform, independent assignment per slot; the action is the combination.

    Parameters
    ----------
    slot_sizes : sequence of int
        Variants per slot (a single slot is a plain uniform A/B/n test).
    """

    def __init__(self, slot_sizes: Sequence[int]) -> None:
        if not slot_sizes or any(int(s) < 1 for s in slot_sizes):
            raise SimulationInputError(f"slot_sizes: expected positive sizes, got {list(slot_sizes)}")
        self.slot_sizes = [int(s) for s in slot_sizes]
        self.n_actions = math.prod(self.slot_sizes)

    def positions(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Each slot's variant per recipient, shape ``(n, n_slots)``: one uniform draw per slot."""
        return np.stack([rng.integers(0, size, n) for size in self.slot_sizes], axis=1).reshape(n, -1)

    def arms(self, positions: np.ndarray) -> np.ndarray:
        """The combination index of per-slot positions (``itertools.product`` order), shape ``(n,)``."""
        index = np.zeros(positions.shape[0], dtype=np.int64)
        for s, size in enumerate(self.slot_sizes):
            index = index * size + positions[:, s]
        return index

    def choose(self, contexts: int | Sequence[object], rng: np.random.Generator) -> Choices:
        """Draw every slot for each recipient; the propensity is ``1 / prod(slot sizes)``."""
        n = contexts if isinstance(contexts, int) else len(contexts)
        actions = self.arms(self.positions(n, rng))
        return Choices(actions, np.full(n, 1.0 / self.n_actions), np.zeros(n, dtype=bool))

    def update(self, *_: object, **__: object) -> None:
        """A fixed design learns nothing."""


@dataclass(frozen=True)
class FactorialConclusion:
    """What the factorial analysis of one seed's multivariate run concludes.

    Attributes
    ----------
    seed : int
    winner : str
        The combination with the highest observed rate.
    correct : bool
        Whether it is the best combination in truth.
    effects : tuple of (str, float, float, bool)
        Per model term (main effects and interactions, intercept left out): ``(term, odds ratio,
        p-value, significant at alpha)``.
    interaction_p_value : float or None
        Likelihood-ratio test of all interactions at once.
    note : str
        The analysis' note, or why it could not be fitted.
    """

    seed: int
    winner: str
    correct: bool
    effects: tuple[tuple[str, float, float, bool], ...]
    interaction_p_value: float | None
    note: str

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "seed": self.seed,
            "winner": self.winner,
            "correct": self.correct,
            "effects": [{"term": t, "odds_ratio": o, "p_value": p, "significant": s}
                        for t, o, p, s in self.effects],
            "interaction_p_value": self.interaction_p_value,
            "note": self.note,
        }


def factorial_conclusion(
    seed: int,
    slots: dict[str, list[str]],
    variants: Sequence[str],
    traffic: np.ndarray,
    successes: np.ndarray,
    best: int,
    alpha: float,
) -> FactorialConclusion:
    """Fit the factorial model to one run's counts per combination.

    Parameters
    ----------
    seed : int
    slots : mapping of str to list of str
        The slots and their variants (a scenario without slots: one slot of all its variants).
    variants : sequence of str
        The combinations' names, in ``itertools.product`` order of ``slots``.
    traffic, successes : ndarray of int, shape (k,)
        Sends and responses per combination.
    best : int
        The truly best combination.
    alpha : float

    Returns
    -------
    FactorialConclusion
    """
    from analysis.factorial import FactorialCell, analyze_factorial  # statsmodels: only when asked

    rates = np.divide(successes, traffic, out=np.zeros(len(variants)), where=traffic > 0)
    winner = int(np.argmax(rates))
    names = list(slots)
    combos = itertools.product(*(slots[s] for s in names))
    cells = [FactorialCell(dict(zip(names, combo, strict=True)), int(traffic[arm]), int(successes[arm]))
             for arm, combo in enumerate(combos) if traffic[arm] > 0]
    try:
        analysis = analyze_factorial(cells, alpha=alpha)
    except AnalysisInputError as exc:
        return FactorialConclusion(seed, variants[winner], winner == best, (), None, f"not fitted: {exc}")
    effects = tuple((r.term, r.odds_ratio, r.p_value, r.significant) for r in analysis.rows
                    if r.kind != "intercept")
    return FactorialConclusion(seed, variants[winner], winner == best, effects, analysis.interaction_p_value,
                               analysis.note)
