"""A replay of a log chunk by chunk: what ``sendlab replay`` runs.

Beside the source (a file source holds the file's mapped columns in Arrow form, about 40 bytes a row
with three features), memory holds one chunk's work and the reward model's sample.

The log (a :class:`~simulations.sources.LogSource`) is taken in chunks, each row once (a file is read
once, by :class:`~simulations.sources.FileSource`; records are fetched in two passes at most):

1. the earlier part (the first ``train_fraction`` of the source's usable rows, counted in a first pass
   when there is something to train) trains the candidate policy through ``update`` and gives the
   reward model its rows: at most ``model_rows`` of them, each kept with the same probability (a seeded
   uniform sample), so the model's memory is bounded too;
2. the later part is evaluated chunk by chunk: the candidate's probabilities, the reward model's
   predictions and every estimator's kernel are computed on the chunk, and only their mergeable sums
   (:class:`~simulations.estimators.EstimatorState`, :class:`~simulations.merged_sums.LiftSums`,
   :class:`~simulations.merged_sums.RewardSums`) are kept.

With nothing to train (a per-row probability file), the reward model's sample is drawn from the whole
log in a first pass. Intervals are normal ones from the merged moments (the delta method of
:mod:`simulations.estimators`); with ``bootstrap > 0`` they are percentile intervals of a Poisson
bootstrap accumulated chunk by chunk (:func:`~simulations.merged_sums.add_poisson_bootstrap`), the
reward model held fixed. Lifts use the paired normal interval. ``dm`` gets an interval only with
``refit_bootstrap > 0``: the reward model is refitted on that many resamples of its rows
(:func:`~simulations.refit_bootstrap.refit_models`), each refit's DM estimate is summed chunk by chunk,
and their spread is added to the per-row error (:func:`~simulations.estimates.with_model_error`).

The estimates equal the in-memory ones (:func:`simulations.replay.replay_report` on the same rows,
with the same reward model, which is the one-chunk case of the same sums) up to each chunk's own
rounding of its sums (about 1e-16 relative; merging chunks is exact): both split training from
evaluation by usable rows, rows set aside counting on neither side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bandit import Policy, make_policy
from simulations.candidates import CandidateSpec
from simulations.data import LoggedData, SimulationInputError
from simulations.estimates import with_model_error
from simulations.estimators import (
    ESTIMATORS,
    EstimatorName,
    EstimatorState,
    PolicyEstimate,
    WarningThresholds,
    check_target_probabilities,
    kernel_and_state,
)
from simulations.load_reports import LoadReport, LoadSummary, concat_logged
from simulations.merged_sums import BootstrapSums, LiftSums, RewardSums, add_poisson_bootstrap
from simulations.refit_bootstrap import RefitModels, refit_models
from simulations.replay import CandidateResult, ReplayReport, probabilities_from_policy, update_policy
from simulations.reward_model import RewardModel, RewardModelKind, fit_reward_model
from simulations.sources import LogSource, ProbabilityReader

#: ``on_progress(stage, rows done, rows in the stage)``; stages: ``"sampling"`` (the reward model's
#: rows, when nothing is trained), ``"training"``, ``"evaluating"``.
ProgressCallback = Callable[[str, int, int], None]
#: ``run_chunks(task, ranges)``: ``[task(first, stop) for first, stop in ranges]`` in order, computed
#: anywhere (on a Dask cluster: :func:`simulations.dask_replay.dask_runner`).
ChunkRunner = Callable[[Callable[[int, int], tuple[LoadSummary, "_Evaluation"]], list[tuple[int, int]]],
                       Iterable[tuple[LoadSummary, "_Evaluation"]]]
_MODEL_ESTIMATORS = frozenset({"dm", "dr", "clipped_dr"})


@dataclass(frozen=True)
class StreamedReplay:
    """A replay of a whole log.

    Attributes
    ----------
    load : LoadSummary
        Rows read, used and set aside by reason (every row of the source counted once).
    replay : ReplayReport
    reward_model_rows : int
        Rows the reward model was fitted on (0 without ``dm``/``dr``).
    """

    load: LoadSummary
    replay: ReplayReport
    reward_model_rows: int = 0

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping: ``{"logs": rows read, used and rejected by reason, ...replay}``."""
        return {"logs": self.load.to_dict(), **self.replay.to_dict(),
                "reward_model_rows": self.reward_model_rows}


@dataclass(frozen=True)
class ReplayRequest:
    """What a replay evaluates and how, for a log file (:func:`simulations.replay_files.replay_files`) and
    any other source (:func:`replay_source`) alike. A request that cannot run is refused when made, before
    any row is read.

    Attributes
    ----------
    candidate : CandidateSpec, optional
        A SendLab policy, trained on the first ``candidate.train_fraction`` of the source's usable rows
        (when ``candidate.train``) and evaluated on the rest; or a fixed variant.
    probabilities : str or Path, optional
        A CSV or Parquet file with one row per row of the source and one column per variant; evaluated
        on the whole log. Exactly one of ``candidate`` and ``probabilities`` is given.
    estimators : tuple of str
        From ``ESTIMATORS`` (any sequence is kept as a tuple); ``replay`` is added for a deterministic
        candidate and skipped (with a note) for a stochastic one.
    reward_model_kind : {"auto", "logistic", "linear", "vw"}
        For ``dm``, ``dr`` and ``clipped_dr``.
    clip, alpha, thresholds
        As in :func:`simulations.estimators.estimate_policy_value`.
    seed : int
        Seeds the candidate, the reward model's sample and the bootstrap.
    bootstrap : int
        0: normal intervals; else the number of Poisson bootstrap replicates.
    refit_bootstrap : int
        0: ``dm`` has no interval; else the number of resamples of the reward model's rows, each
        refitting the model, whose spread gives ``dm`` its interval.
    model_rows : int
        At most about this many rows are sampled to fit the reward model.
    """

    candidate: CandidateSpec | None = None
    probabilities: str | Path | None = None
    estimators: Sequence[EstimatorName] = ("ips", "snips", "dm", "dr")
    reward_model_kind: RewardModelKind = "auto"
    clip: float = 10.0
    alpha: float = 0.05
    seed: int = 0
    bootstrap: int = 0
    refit_bootstrap: int = 0
    model_rows: int = 200_000
    thresholds: WarningThresholds = WarningThresholds()

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimators", tuple(self.estimators))
        if (self.candidate is None) == (self.probabilities is None):
            raise SimulationInputError(
                "policy: give exactly one of a candidate policy or a probabilities file")
        if not self.estimators:
            raise SimulationInputError("estimators: at least one is needed")
        unknown = [e for e in self.estimators if e not in ESTIMATORS]
        if unknown:
            raise SimulationInputError(
                f"estimators: unknown {unknown}; expected some of {', '.join(ESTIMATORS)}")
        if self.bootstrap < 0:
            raise SimulationInputError(
                f"bootstrap: must be 0 (normal intervals) or positive, got {self.bootstrap}")
        if self.refit_bootstrap < 0 or self.refit_bootstrap == 1:
            raise SimulationInputError(
                f"refit_bootstrap: must be 0 (no interval for dm) or at least 2, got {self.refit_bootstrap}")
        if self.refit_bootstrap and "dm" not in self.estimators:
            raise SimulationInputError(
                "refit_bootstrap: gives dm its interval, and dm is not among the estimators")
        if self.model_rows < 1:
            raise SimulationInputError(f"model_rows: must be at least 1, got {self.model_rows}")


class _Sample:
    """A seeded uniform sample of at most about ``limit`` usable rows of a known number of source rows;
    when the draw keeps none (a small ``limit``), the first usable row, so that a log with a usable
    row always gives the model one."""

    def __init__(self, limit: int, source_rows: int, seed: int) -> None:
        self.share = min(1.0, limit / source_rows) if source_rows else 1.0
        self.rng = np.random.default_rng([seed, 3])
        self.parts: list[LoggedData] = []
        self.first: LoggedData | None = None

    def add(self, data: LoggedData) -> None:
        if self.first is None and data.n:
            self.first = data.rows(0, 1)
        if self.share >= 1.0:
            self.parts.append(data)
        elif data.n:
            self.parts.append(data.take(np.flatnonzero(self.rng.random(data.n) < self.share)))

    def data(self) -> LoggedData | None:
        parts = [p for p in self.parts if p.n]
        return concat_logged(parts) if parts else self.first


@dataclass(frozen=True)
class _Targets:
    """The candidate's probabilities on a chunk: a trained policy's, or all on one fixed variant."""

    policy: Policy | None
    variant: str | None

    def __call__(self, data: LoggedData) -> np.ndarray:
        if self.policy is not None:
            return probabilities_from_policy(self.policy, data)
        assert self.variant is not None
        if self.variant not in data.action_names:
            raise SimulationInputError(
                f"candidate.variant: {self.variant!r} is not one of {list(data.action_names)}")
        out = np.zeros((data.n, data.n_actions))
        out[:, data.action_names.index(self.variant)] = 1.0
        return out


def _predictions(model: RewardModel | None, data: LoggedData) -> np.ndarray | None:
    return model.predict(data.contexts) if model is not None and data.n else None


def evaluate_rows(source: LogSource, targets: _Targets, model: RewardModel | None, estimators: list[str],
                  clip: float, first: int, stop: int) -> tuple[LoadSummary, _Evaluation]:
    """The load summary and evaluation sums of rows ``first:stop`` of ``source``: one task of a
    :data:`ChunkRunner` (module-level, so that it can be sent to another process)."""
    load, evaluation = LoadSummary(), _Evaluation(estimators, clip, 0, 0)
    for report in source.chunks(first, stop):
        load = load + report.summary()
        evaluation.add(report, targets(report.data), _predictions(model, report.data))
    return load, evaluation


def replay_source(
    source: LogSource,
    request: ReplayRequest,
    *,
    on_progress: ProgressCallback | None = None,
    run_chunks: ChunkRunner | None = None,
) -> StreamedReplay:
    """Evaluate a candidate policy, or a file of per-row probabilities, on a log read in chunks.

    Parameters
    ----------
    source : LogSource
        The log (:class:`~simulations.sources.FileSource`, :class:`~simulations.sources.RecordSource`).
    request : ReplayRequest
        What to evaluate (a candidate or a probability file), with which estimators and settings.
    on_progress : callable, optional
        Called after each chunk (see :data:`ProgressCallback`).
    run_chunks : callable, optional
        Evaluates the chunks elsewhere (see :data:`ChunkRunner`); the source needs a ``chunk_rows``,
        and the evaluated ranges are the chunks the source itself yields, so the sums, hence every
        estimate, are the same as in one process.

    Returns
    -------
    StreamedReplay
    """
    candidate, probabilities, seed = request.candidate, request.probabilities, request.seed
    names = source.action_names
    if run_chunks is not None and (probabilities is not None or request.bootstrap or request.refit_bootstrap):
        raise SimulationInputError("a cluster replay evaluates a candidate policy with normal intervals "
                                   "(no probability file, no bootstrap)")
    train_fraction = candidate.train_fraction if candidate is not None else 0.0
    split, train_rows = split_row(source, train_fraction)
    needs_model = bool(_MODEL_ESTIMATORS.intersection(request.estimators))
    policy: Policy | None = None
    if candidate is not None and candidate.variant is None:
        policy = make_policy(candidate.policy, len(names), options=dict(candidate.options), seed=seed)
    # the probability file's header is read now: a file that cannot be read fails before any work
    reader = ProbabilityReader(probabilities, names, source.rows) if probabilities is not None else None
    progress = on_progress or (lambda *_: None)

    load = LoadSummary()
    sample = _Sample(request.model_rows, train_rows if split else source.rows, seed)
    if split:
        done = 0
        for report in source.chunks(0, split):
            load = load + report.summary()
            if policy is not None and candidate is not None and candidate.train:
                update_policy(policy, report.data)
            if needs_model:
                sample.add(report.data)
            done += report.rows_read
            progress("training", done, split)
    elif needs_model:
        done = 0
        for report in source.chunks():
            sample.add(report.data)
            done += report.rows_read
            progress("sampling", done, source.rows)
    model: RewardModel | None = None
    model_data = sample.data() if needs_model else None
    if needs_model:
        if model_data is None:
            raise SimulationInputError("logs: no usable row to fit the reward model on")
        model = fit_reward_model(model_data, kind=request.reward_model_kind)
    refits: RefitModels | None = None
    if request.refit_bootstrap and model_data is not None:
        refits = refit_models(model_data, request.reward_model_kind, request.refit_bootstrap,
                              np.random.default_rng([seed, 4]))

    targets = _Targets(policy, candidate.variant if candidate is not None else None)
    evaluation = _Evaluation(list(request.estimators), request.clip, request.bootstrap, seed, refits)
    if run_chunks is None:
        done = 0
        for report in source.chunks(split, None):
            load = load + report.summary()
            target = reader.rows_of(report) if reader is not None else targets(report.data)
            evaluation.add(report, target, _predictions(model, report.data))
            done += report.rows_read
            progress("evaluating", done, source.rows - split)
    else:
        step = getattr(source, "chunk_rows", None)
        if not isinstance(step, int):
            raise SimulationInputError("run_chunks: the source must have a chunk_rows")
        ranges = [(first, min(first + step, source.rows)) for first in range(split, source.rows, step)]
        task = partial(evaluate_rows, source, targets, model, list(request.estimators), request.clip)
        done = 0
        for (first, stop), (part_load, part) in zip(ranges, run_chunks(task, ranges), strict=True):
            load, evaluation = load + part_load, evaluation.merge(part)
            done += stop - first
            progress("evaluating", done, source.rows - split)
    if reader is not None:
        reader.finish()
    if evaluation.rewards.n < 2:
        raise SimulationInputError(
            f"logs: only {evaluation.rewards.n} usable row(s) to evaluate of {source.rows - split}; "
            "rejected: "
            + (", ".join(f"{k} {v.count}" for k, v in load.rejected.items()) or "none")
        )
    if candidate is not None:
        label = candidate.name
    else:
        label = Path(str(probabilities)).stem
    result = evaluation.result(label, request.alpha, request.thresholds)
    logged = evaluation.rewards.estimate(request.alpha)
    report = ReplayReport(train_rows, evaluation.rewards.n, logged, (result,), names)
    return StreamedReplay(load, report, model_data.n if model_data is not None else 0)


def split_row(source: LogSource, train_fraction: float) -> tuple[int, int]:
    """Where training ends: the source row at which evaluation starts, and the usable rows before it.

    The first ``floor(usable * train_fraction)`` usable rows train, as
    :func:`simulations.replay.replay_report` splits the usable rows it is given; rows set aside count on
    neither side. With something to train, a first pass counts the usable rows (and a second reads the
    chunk where the split falls); with ``train_fraction`` 0 nothing is read.
    """
    if train_fraction <= 0:
        return 0, 0
    chunks: list[tuple[int, int, int]] = []  # (first row, rows read, usable rows) per chunk
    first = 0
    for report in source.chunks():
        chunks.append((first, report.rows_read, report.data.n))
        first += report.rows_read
    wanted = int(math.floor(sum(c[2] for c in chunks) * train_fraction))
    if wanted == 0:
        return 0, 0
    before = 0
    for first, read, usable in chunks:
        if before + usable > wanted:
            kept = np.concatenate([r.kept_rows for r in source.chunks(first, first + read)])
            return int(kept[wanted - before]), wanted
        before += usable
    raise AssertionError("unreachable: train_fraction < 1 leaves a usable row to evaluate")


class _Evaluation:
    """The merged sums of the evaluated part, chunk by chunk; with ``refits``, per refitted reward model
    the sum of ``dm``'s per-row terms."""

    def __init__(self, estimators: list[str], clip: float, bootstrap: int, seed: int,
                 refits: RefitModels | None = None) -> None:
        self.asked = estimators
        self.names = estimators if "replay" in estimators else ["replay", *estimators]
        self.clip = clip
        self.bootstrap = bootstrap
        self.seed = seed
        self.deterministic = True
        self.lifts: dict[str, LiftSums] = {}
        self.rewards = RewardSums()
        self.boot: dict[str, BootstrapSums] = {n: BootstrapSums.zeros(bootstrap) for n in self.names}
        self.refits = refits
        self.refit_sums = np.zeros(len(refits) if refits is not None else 0)

    def add(self, report: LoadReport, target: np.ndarray, predictions: np.ndarray | None) -> None:
        data = report.data
        target = np.asarray(target, dtype=float)
        check_target_probabilities(target, data.n, data.n_actions)
        self.rewards = self.rewards + RewardSums.of(data.rewards)
        if self.deterministic and not bool(np.all((target == 0) | (target == 1))):
            self.deterministic = False
        kernels: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for name in self.names:
            if name == "replay" and not self.deterministic:
                continue
            u, d, state = kernel_and_state(name, data, target, predictions,  # type: ignore[arg-type]
                                           clip=self.clip, validate=False)
            sums = LiftSums.of(state, u, d, data.rewards)
            self.lifts[name] = self.lifts[name] + sums if name in self.lifts else sums
            kernels[name] = (u, d)
        if self.bootstrap:
            self.boot = add_poisson_bootstrap(self.boot, report.kept_rows, kernels, seed=self.seed)
        if self.refits is not None and data.n:
            self.refit_sums += self.refits.direct_sums(data.contexts, target)

    def merge(self, other: _Evaluation) -> _Evaluation:
        """These sums and ``other``'s (later rows, no bootstrap), merged exactly."""
        out = _Evaluation(self.asked, self.clip, self.bootstrap, self.seed)
        out.deterministic = self.deterministic and other.deterministic
        out.rewards = self.rewards + other.rewards
        out.lifts = {n: self.lifts[n] + other.lifts[n] if n in self.lifts and n in other.lifts
                     else self.lifts.get(n) or other.lifts[n] for n in {**self.lifts, **other.lifts}}
        out.boot = self.boot
        return out

    def _estimate(self, name: str, state: EstimatorState, alpha: float,
                  thresholds: WarningThresholds) -> PolicyEstimate:
        estimate = state.to_estimate(alpha, thresholds)
        if name == "dm" and self.refits is not None:
            return with_model_error(estimate, state.std_error, self.refit_sums / state.n, alpha)
        if not self.bootstrap or estimate.ci_method == "none":
            return estimate
        interval = self.boot[name].interval(alpha)
        if interval is None:
            return estimate
        low, high, se = interval
        return PolicyEstimate(estimate.estimator, estimate.value, (low, high), se, estimate.n,
                              estimate.effective_sample_size, estimate.max_weight, estimate.warnings,
                              ci_method="poisson bootstrap")

    def _lift(self, name: str, alpha: float, thresholds: WarningThresholds) -> PolicyEstimate:
        sums = self.lifts[name]
        lift = sums.estimate(alpha, thresholds)
        if name == "dm" and self.refits is not None:  # the logged mean does not depend on the model
            return with_model_error(lift, sums.std_error, self.refit_sums / sums.state.n, alpha)
        return lift

    def result(self, label: str, alpha: float, thresholds: WarningThresholds) -> CandidateResult:
        names = [n for n in self.names if n != "replay" or self.deterministic]
        notes: tuple[str, ...] = ()
        if not self.deterministic and "replay" in self.asked:
            notes = ("replay skipped: it needs a deterministic candidate, this one is stochastic",)
        if not names:
            raise SimulationInputError("estimators: only replay was asked, and the candidate is stochastic")
        estimates = tuple(self._estimate(n, self.lifts[n].state, alpha, thresholds) for n in names)
        lifts = tuple(self._lift(n, alpha, thresholds) for n in names)
        return CandidateResult(label, estimates, self.deterministic, notes, lifts)
