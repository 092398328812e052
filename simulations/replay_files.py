"""One call from files to a replay report: what ``sendlab replay --logs`` runs.

The log is read in chunks through a :class:`~simulations.column_maps.ColumnMap` (rejected rows are reported),
then either a candidate policy (:class:`~simulations.candidates.CandidateSpec`, trained on the earlier
part of the log) or a file of per-row action probabilities is evaluated, in bounded memory
(:func:`simulations.streaming.replay_source`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulations.candidates import CandidateSpec
from simulations.column_maps import ColumnMap
from simulations.estimators import EstimatorName
from simulations.reward_model import RewardModelKind
from simulations.sources import FileSource
from simulations.streaming import ProgressCallback, StreamedReplay, check_request, replay_source

#: A replay of a log file (the same type as any streamed replay).
FileReplay = StreamedReplay


def replay_files(
    logs: str | Path,
    columns: ColumnMap,
    *,
    candidate: CandidateSpec | None = None,
    probabilities: str | Path | None = None,
    estimators: Sequence[EstimatorName] = ("ips", "snips", "dm", "dr"),
    reward_model_kind: RewardModelKind = "auto",
    alpha: float = 0.05,
    chunk_rows: int = 100_000,
    seed: int = 0,
    bootstrap: int = 0,
    model_rows: int = 200_000,
    on_progress: ProgressCallback | None = None,
) -> StreamedReplay:
    """Evaluate a candidate policy, or a file of per-row probabilities, on a logged-sends file.

    Parameters
    ----------
    logs : str or Path
        CSV or Parquet log.
    columns : ColumnMap
        Which column holds what (:func:`simulations.column_maps.default_column_map` for SendLab's own names).
    candidate : CandidateSpec, optional
        A SendLab policy; trained on the first ``candidate.train_fraction`` of the log.
    probabilities : str or Path, optional
        Per-row probabilities (one row per logged send, one column per variant); evaluated on the
        whole log (nothing to train), the reward model being fitted on a sample of the same rows.
    estimators, reward_model_kind, alpha, seed, bootstrap, model_rows, on_progress
        As in :func:`simulations.streaming.replay_source`.
    chunk_rows : int
        Rows per chunk while reading.

    Returns
    -------
    StreamedReplay
    """
    check_request(candidate, probabilities, estimators, bootstrap, model_rows)  # before the file is read
    source = FileSource.open(logs, columns, chunk_rows=chunk_rows)
    return replay_source(
        source, candidate=candidate, probabilities=probabilities, estimators=estimators,
        reward_model_kind=reward_model_kind, alpha=alpha, seed=seed, bootstrap=bootstrap,
        model_rows=model_rows, on_progress=on_progress,
    )
