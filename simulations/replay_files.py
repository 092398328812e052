"""One call from files to a replay report: what ``sendlab replay --logs`` runs.

The log is read in chunks through a :class:`~simulations.column_maps.ColumnMap` (rejected rows are reported),
then either a candidate policy (:class:`~simulations.candidates.CandidateSpec`, trained on the earlier
part of the log) or a file of per-row action probabilities is evaluated, in bounded memory
(:func:`simulations.streaming.replay_source`).
"""

from __future__ import annotations

from pathlib import Path

from simulations.column_maps import ColumnMap
from simulations.sources import FileSource
from simulations.streaming import ProgressCallback, ReplayRequest, StreamedReplay, replay_source

#: A replay of a log file (the same type as any streamed replay).
FileReplay = StreamedReplay


def replay_files(
    logs: str | Path,
    columns: ColumnMap,
    request: ReplayRequest,
    *,
    chunk_rows: int = 100_000,
    on_progress: ProgressCallback | None = None,
) -> StreamedReplay:
    """Evaluate a candidate policy, or a file of per-row probabilities, on a logged-sends file.

    Parameters
    ----------
    logs : str or Path
        CSV or Parquet log.
    columns : ColumnMap
        Which column holds what (:func:`simulations.column_maps.default_column_map` for SendLab's own names).
    request : ReplayRequest
        What to evaluate: a candidate (trained on the first ``candidate.train_fraction`` of the log) or a
        file of per-row probabilities (one row per logged send, one column per variant; evaluated on the
        whole log, nothing to train, the reward model being fitted on a sample of the same rows).
    chunk_rows : int
        Rows per chunk while reading.
    on_progress : callable, optional
        As in :func:`simulations.streaming.replay_source`.

    Returns
    -------
    StreamedReplay
    """
    source = FileSource.open(logs, columns, chunk_rows=chunk_rows)
    return replay_source(source, request, on_progress=on_progress)
