"""The chunked estimators on Dask partitions, for logs bigger than one machine.

Each partition is validated and summarised by the same code as a file chunk
(:func:`simulations.logs.validate_frame`, :func:`simulations.chunked.summarize_chunk`); the partition
summaries come back to the client, which merges them exactly, so the numbers equal the in-memory and
chunked ones up to each partition's rounding of its own sums. Run it on a ``distributed`` cluster by
creating a ``Client`` before calling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.stats import merged
from simulations.chunked import ChunkSummary, TargetFunction, check_estimators, summarize_chunk
from simulations.column_maps import ColumnMap
from simulations.data import SimulationInputError
from simulations.estimators import EstimatorName
from simulations.logs import validate_frame
from simulations.reward_model import RewardModel


def _partition_summary(
    frame: pd.DataFrame,
    columns: ColumnMap,
    action_names: tuple[str, ...],
    target: TargetFunction,
    estimators: Sequence[EstimatorName],
    reward_model: RewardModel | None,
    clip: float,
    row_column: str | None,
) -> pd.DataFrame:
    numbers = frame[row_column].to_numpy() if row_column else np.arange(len(frame))
    report = validate_frame(frame, columns, action_names, row_numbers=numbers)
    summary = summarize_chunk(report, target, estimators, reward_model=reward_model, clip=clip)
    return pd.DataFrame({"summary": [summary]}, dtype=object)


def estimate_dask(
    frame: object,
    columns: ColumnMap,
    target: TargetFunction,
    estimators: Sequence[EstimatorName] = ("ips", "snips", "dr"),
    *,
    reward_model: RewardModel | None = None,
    clip: float = 10.0,
    row_column: str | None = None,
) -> ChunkSummary:
    """Estimate a target policy's value over a Dask DataFrame of logged sends.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The log, holding ``columns.columns``.
    columns : ColumnMap
        Which column holds what; ``columns.actions`` is required (partitions must agree on the
        variants without a pass over the data).
    target : callable
        ``target(data) -> (n, k)`` target probabilities of a partition's rows.
    estimators, reward_model, clip
        As in :func:`simulations.chunked.summarize_chunk`.
    row_column : str, optional
        A column with global row numbers, used in rejection examples (else numbers are per partition).

    Returns
    -------
    ChunkSummary
        Equal to :func:`simulations.chunked.estimate_chunks` on the same rows.
    """
    check_estimators(estimators, reward_model)
    if columns.actions is None:
        raise SimulationInputError("columns.actions: required on Dask (list the variants)")
    meta = pd.DataFrame({"summary": pd.Series([], dtype=object)})
    parts = frame.map_partitions(  # type: ignore[attr-defined]
        _partition_summary,
        columns,
        columns.actions,
        target,
        tuple(estimators),
        reward_model,
        clip,
        row_column,
        meta=meta,
    ).compute()
    summaries = list(parts["summary"])
    if not summaries:
        raise SimulationInputError("frame: the Dask DataFrame has no partitions")
    return merged(summaries)
