"""Off-policy estimates over logs too big for memory: chunk by chunk, or partition by partition.

Each chunk (a :class:`~simulations.load_reports.LoadReport`) becomes a :class:`ChunkSummary`: one
:class:`~simulations.estimators.EstimatorState` per estimator plus the rejected-row counts. Summaries
merge with ``+`` exactly, so the result does not depend on the order of the chunks (and on how the log
was cut only through each chunk's rounding of its own sums, about 1e-16 relative), and the same
:func:`summarize_chunk` runs on Dask partitions (:mod:`simulations.dask_estimation`).

The target policy is a function from a chunk of logged sends to its ``(n, k)`` probabilities, and the
reward model (for ``dm`` and ``dr``) is fitted beforehand, for example on a sample or an earlier
period, so every chunk uses the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from simulations.data import LoggedData, SimulationInputError
from simulations.estimators import (
    ESTIMATORS,
    EstimatorName,
    EstimatorState,
    PolicyEstimate,
    WarningThresholds,
    estimator_states,
)
from simulations.load_reports import REJECTION_REASONS, LoadReport, RejectedRows
from simulations.reward_model import RewardModel

TargetFunction = Callable[[LoggedData], np.ndarray]
_MODEL_ESTIMATORS = frozenset({"dm", "dr", "clipped_dr"})


@dataclass(frozen=True)
class ChunkSummary:
    """Mergeable estimator states and rejection counts of some chunks of a log.

    Attributes
    ----------
    states : mapping of str to EstimatorState
        ``estimator -> state``, in the order asked.
    rejected : mapping of str to RejectedRows
        Rows set aside, by reason.
    rows_read : int
        Rows read, used or not.
    """

    states: Mapping[str, EstimatorState]
    rejected: Mapping[str, RejectedRows] = field(default_factory=dict)
    rows_read: int = 0

    def __add__(self, other: ChunkSummary) -> ChunkSummary:
        if not isinstance(other, ChunkSummary):
            return NotImplemented
        if list(self.states) != list(other.states):
            raise SimulationInputError(
                f"estimators: cannot merge summaries of {list(self.states)} and {list(other.states)}"
            )
        rejected = dict(self.rejected)
        for reason, rows in other.rejected.items():
            rejected[reason] = rejected[reason] + rows if reason in rejected else rows
        return ChunkSummary(
            states={name: state + other.states[name] for name, state in self.states.items()},
            rejected={r: rejected[r] for r in REJECTION_REASONS if r in rejected},
            rows_read=self.rows_read + other.rows_read,
        )

    def estimates(
        self, alpha: float = 0.05, thresholds: WarningThresholds = WarningThresholds()
    ) -> list[PolicyEstimate]:
        """One estimate per estimator, with normal intervals."""
        return [state.to_estimate(alpha, thresholds) for state in self.states.values()]


def check_estimators(estimators: Sequence[str], reward_model: RewardModel | None) -> None:
    if not estimators:
        raise SimulationInputError("estimators: at least one is needed")
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise SimulationInputError(f"estimators: unknown {unknown}; expected some of {', '.join(ESTIMATORS)}")
    if reward_model is None and _MODEL_ESTIMATORS.intersection(estimators):
        raise SimulationInputError(
            "reward_model: dm and dr over chunks need a reward model fitted beforehand (fit_reward_model)"
        )


def summarize_chunk(
    report: LoadReport,
    target: TargetFunction,
    estimators: Sequence[EstimatorName] = ("ips", "snips", "dr"),
    *,
    reward_model: RewardModel | None = None,
    clip: float = 10.0,
) -> ChunkSummary:
    """Estimator states of one chunk.

    Parameters
    ----------
    report : LoadReport
        A chunk as loaded (its rejections are carried along).
    target : callable
        ``target(data) -> (n, k)`` probabilities of the target policy on the chunk's rows.
    estimators : sequence of str
    reward_model : RewardModel, optional
        Required by ``dm``, ``dr`` and ``clipped_dr``.
    clip : float
        Weight cap of the clipped estimators.

    Returns
    -------
    ChunkSummary
    """
    check_estimators(estimators, reward_model)
    data = report.data
    probabilities = np.asarray(target(data), dtype=float)
    predictions = None
    if reward_model is not None and _MODEL_ESTIMATORS.intersection(estimators):
        predictions = reward_model.predict(data.contexts)
    states = estimator_states(estimators, data, probabilities, predictions, clip=clip)
    return ChunkSummary(states, dict(report.rejected), report.rows_read)


def estimate_chunks(
    reports: Iterable[LoadReport],
    target: TargetFunction,
    estimators: Sequence[EstimatorName] = ("ips", "snips", "dr"),
    *,
    reward_model: RewardModel | None = None,
    clip: float = 10.0,
) -> ChunkSummary:
    """Summaries of every chunk, merged (memory bounded by one chunk); see :func:`summarize_chunk`.

    Examples
    --------
    >>> import numpy as np
    >>> from simulations.data import LoggedData
    >>> from simulations.logs import LoadReport
    >>> rng = np.random.default_rng(0)
    >>> def chunk(n):
    ...     data = LoggedData(np.zeros((n, 0)), rng.integers(0, 2, n), rng.random(n), np.full(n, 0.5),
    ...                       ("a", "b"))
    ...     return LoadReport(data, rows_read=n)
    >>> always_a = lambda data: np.tile([1.0, 0.0], (data.n, 1))
    >>> summary = estimate_chunks((chunk(1000) for _ in range(5)), always_a, ("ips", "snips"))
    >>> summary.rows_read, [e.estimator for e in summary.estimates()]
    (5000, ['ips', 'snips'])
    """
    check_estimators(estimators, reward_model)
    total: ChunkSummary | None = None
    for report in reports:
        summary = summarize_chunk(report, target, estimators, reward_model=reward_model, clip=clip)
        total = summary if total is None else total + summary
    if total is None:
        raise SimulationInputError("reports: the log has no chunks")
    return total
