"""One call from files to a replay report: what ``sendlab replay`` runs.

The log is read through a :class:`~simulations.logs.ColumnMap` (rejected rows are reported), then
either a candidate policy (:class:`~simulations.candidates.CandidateSpec`, trained on the earlier part
of the log) or a file of per-row action probabilities is evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulations.candidates import CandidateSpec
from simulations.data import SimulationInputError
from simulations.estimators import EstimatorName
from simulations.logs import ColumnMap, LoadReport, read_logs
from simulations.replay import ReplayReport, load_probabilities, replay_report
from simulations.reward_model import RewardModelKind


@dataclass(frozen=True)
class FileReplay:
    """A replay of a log file.

    Attributes
    ----------
    load : LoadReport
        The rows used and the rows set aside, by reason.
    replay : ReplayReport
    """

    load: LoadReport
    replay: ReplayReport

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping: ``{"logs": rows read, used and rejected by reason, ...replay}``."""
        return {"logs": self.load.to_dict(), **self.replay.to_dict()}


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
) -> FileReplay:
    """Evaluate a candidate policy, or a file of per-row probabilities, on a logged-sends file.

    Parameters
    ----------
    logs : str or Path
        CSV or Parquet log.
    columns : ColumnMap
        Which column holds what.
    candidate : CandidateSpec, optional
        A SendLab policy; trained on the first ``candidate.train_fraction`` of the log.
    probabilities : str or Path, optional
        Per-row probabilities (one row per logged send, one column per variant); evaluated on the
        whole log (nothing to train), the reward model being fitted on the same rows.
    estimators, reward_model_kind, alpha, seed
        As in :func:`simulations.replay.replay_report`.
    chunk_rows : int
        Rows per chunk while reading.

    Returns
    -------
    FileReplay
    """
    if (candidate is None) == (probabilities is None):
        raise SimulationInputError("policy: give exactly one of a candidate policy or a probabilities file")
    load = read_logs(logs, columns, chunk_rows=chunk_rows)
    if load.data.n < 2:
        raise SimulationInputError(
            f"logs: only {load.data.n} usable row(s) of {load.rows_read}; rejected: "
            + (", ".join(f"{k} {v.count}" for k, v in load.rejected.items()) or "none")
        )
    if probabilities is not None:
        target = load_probabilities(
            probabilities, load.data.action_names, kept_rows=load.kept_rows, total_rows=load.rows_read
        )
        name = Path(probabilities).stem
        report = replay_report(
            load.data, {name: target}, train_fraction=0.0, estimators=estimators,
            reward_model_kind=reward_model_kind, alpha=alpha, seed=seed,
        )
    else:
        assert candidate is not None
        report = replay_report(
            load.data, {candidate.name: candidate}, train_fraction=candidate.train_fraction,
            estimators=estimators, reward_model_kind=reward_model_kind, alpha=alpha, seed=seed,
        )
    return FileReplay(load, report)
