"""``sendlab replay`` and ``sendlab simulate``: offline, before anyone launches a policy.

What only some requests need is imported by them: the store (``--experiment``), Dask (``--dask``), the
HTML reports (``--html``), the synthetic environment (``simulate``); a replay of a log file loads neither
pandas, scipy nor SQLAlchemy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.group import CliError
from api.cli.output import check_output, print_json, print_table
from bandit import PolicyError
from simulations.candidates import load_candidate
from simulations.column_maps import ColumnMap, default_column_map, load_column_fields
from simulations.estimators import EstimatorName, PolicyEstimate
from simulations.load_reports import LoadSummary
from simulations.log_files import log_columns
from simulations.parquet_parts import PartitionedSource, is_partitioned, parquet_files
from simulations.reward_model import RewardModelKind
from simulations.sources import FileSource, LogSource, RecordSource, experiment_source
from simulations.streaming import ReplayRequest, replay_source

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

#: Most bootstrap replicates: each block of 4,096 rows draws a (replicates x 4,096) array of weights.
MAX_BOOTSTRAP = 10_000
#: Most refit resamples: each is a reward model, all held in memory and each predicting every chunk.
MAX_REFIT_BOOTSTRAP = 2_000
Html = Annotated[Path | None, typer.Option(help="Also write an HTML report here.")]


def split_names(option: str, text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; with ``allowed``, unknown names are reported for ``option``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CliError(f"{option}: give at least one name")
    unknown = [n for n in names if allowed is not None and n not in allowed]
    if unknown:
        raise CliError(f"{option}: unknown {unknown}; choose from {list(allowed or ())}")
    return names


def resolve_columns(
    logs: Path, map_file: Path | None, action: str | None, reward: str | None, propensity: str | None,
    position: str | None, context: str | None,
) -> ColumnMap:
    """The column map: SendLab's own column names, ``--map`` over them, the single-column options over
    both (see :func:`simulations.column_maps.default_column_map`)."""
    fields: dict[str, Any] = load_column_fields(map_file) if map_file is not None else {}
    given = {"action": action, "reward": reward, "propensity": propensity, "position": position}
    empty = [f"--{k}-col" for k, v in given.items() if v is not None and not v.strip()]
    if empty:
        raise CliError(f"{', '.join(empty)}: needed (or give them in --map)")
    fields.update({k: v for k, v in given.items() if v is not None})
    if context is not None:
        fields["context"] = tuple(split_names("--context-cols", context))
    return default_column_map(log_columns(logs), **fields)


def database_source(db: str, key: str, chunk_rows: int, slot: str | None = None) -> RecordSource:
    """The decision log of experiment ``key`` in the store at ``db``, read in chunks.

    The actions are the experiment's arms, named ``slot=variant|slot=variant`` in the spec's slot order;
    with ``slot="send_time"``, the send hours chosen, each with its own logged propensity (a timing
    policy is evaluated on its own).
    """
    from experiments.export import send_time_records
    from experiments.send_time import SEND_TIME_SLOT

    service = open_service(db)
    if slot is None:
        return experiment_source(service, key, chunk_rows)
    export = service.export_log_summary(key)
    if slot != SEND_TIME_SLOT:
        raise CliError(f"--slot: {slot!r}: only {SEND_TIME_SLOT} logs a propensity of its own")
    hours = tuple(dict.fromkeys(arm[slot] for arm in export.arms if slot in arm))
    if not hours:
        raise CliError(f"--slot: experiment {key!r} declares no send_time")

    def timing_chunks() -> Iterator[list[dict[str, Any]]]:
        chunks = service.export_log_chunks(key, chunk_rows)
        try:
            yield from map(send_time_records, chunks)
        finally:
            getattr(chunks, "close", lambda: None)()

    return RecordSource(open_chunks=timing_chunks, rows=export.rows, action_names=hours)


@contextmanager
def progress_bars(hidden: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A callback ``(stage, done, total)`` drawing one progress bar per stage on stderr (none if hidden,
    and then rich is not imported)."""
    if hidden:
        yield lambda stage, done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as progress:
        stage_to_task: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in stage_to_task:
                stage_to_task[stage] = progress.add_task(stage, total=total)
            progress.update(stage_to_task[stage], completed=done, total=total)

        yield update


@contextmanager
def policy_errors(source: str | None) -> Iterator[None]:
    """A policy's rejection of its name or options (:class:`bandit.PolicyError`) as one line naming
    where they came from: the candidate file, or ``--policies``."""
    try:
        yield
    except PolicyError as exc:
        if source is None:
            raise
        raise CliError(f"{source}: {exc}") from exc


def print_set_aside(load: LoadSummary) -> None:
    """The rows set aside per reason, each with its first example."""
    if not load.rejected:
        return
    rows = [[reason.replace("_", " "), r.count,
             f"row {r.examples[0][0]}: {r.examples[0][1]}" if r.examples else "-"]
            for reason, r in load.rejected.items()]
    print_table(["set aside", "rows", "example"], rows)


def interval_text(estimate: PolicyEstimate) -> str:
    """``[low, high]``, or ``n/a`` when the estimate has no interval (its warnings say why)."""
    low, high = estimate.ci
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{low:.4g}, {high:.4g}]"


def check_dask_request(logs: Path | None, probabilities: Path | None, bootstrap: int,
                       refit_bootstrap: int = 0) -> None:
    """What ``--dask`` evaluates: a ``--policy`` on Parquet ``--logs``, with normal intervals."""
    if logs is None:
        raise CliError("--dask: needs --logs (Parquet files the workers can read), not --experiment")
    if not is_partitioned(logs) and logs.suffix.lower() not in (".parquet", ".pq"):
        raise CliError(f"--dask: needs Parquet logs (a .parquet file, a directory or a glob of them), "
                       f"got {logs}")
    if probabilities is not None or bootstrap or refit_bootstrap:
        raise CliError("--dask: evaluates a --policy with normal intervals (no --probabilities, "
                       "no --bootstrap, no --refit-bootstrap)")


def replay(
    logs: Annotated[Path | None, typer.Option(
        help="Logged sends: a CSV or Parquet file, or a directory or glob of Parquet files.")] = None,
    map_file: Annotated[Path | None, typer.Option("--map", help="YAML column map.")] = None,
    action_col: Annotated[str | None, typer.Option(help="Column of the chosen variant.")] = None,
    reward_col: Annotated[str | None, typer.Option(help="Column of the reward.")] = None,
    propensity_col: Annotated[str | None, typer.Option(help="Column of the logged propensity.")] = None,
    position_col: Annotated[str | None, typer.Option(help="Column of the slot position.")] = None,
    context_cols: Annotated[str | None, typer.Option(help="Feature columns, comma-separated.")] = None,
    db: DbOption = DEFAULT,
    experiment: Annotated[
        str | None, typer.Option(help="Replay this experiment's decision log from the --db store.")
    ] = None,
    slot: Annotated[str | None, typer.Option(
        help="With --experiment: evaluate a policy of this choice alone (send_time: a timing policy).")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Candidate policy spec (YAML).")] = None,
    probabilities: Annotated[Path | None, typer.Option(help="Per-row probabilities, CSV or Parquet.")] = None,
    estimators: Annotated[str, typer.Option(help="Comma-separated estimators.")] = "ips,snips,dm,dr",
    reward_model: Annotated[str, typer.Option(help="auto, logistic, linear or vw (for dm and dr).")] = "auto",
    alpha: Annotated[float, typer.Option(help="Intervals at 1 - alpha.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of training, sampling and bootstraps.", min=0)] = 0,
    bootstrap: Annotated[int, typer.Option(
        help="Poisson bootstrap replicates for the intervals (0: normal intervals).", min=0,
        max=MAX_BOOTSTRAP)] = 0,
    refit_bootstrap: Annotated[int, typer.Option(
        help="Resamples of the reward model's rows, each refitting the model, for dm's interval (0: dm "
             "has no interval, as one that holds the model fixed is far too narrow).", min=0,
        max=MAX_REFIT_BOOTSTRAP)] = 0,
    chunk_rows: Annotated[int, typer.Option(help="Rows read at a time.", min=1)] = 100_000,
    model_rows: Annotated[
        int, typer.Option(help="At most this many sampled rows fit the reward model.", min=1)
    ] = 200_000,
    dask: Annotated[str | None, typer.Option(
        help="Evaluate on a Dask cluster: a scheduler address (tcp://host:8786) or local[N].")] = None,
    as_json: Json = False,
    html: Html = None,
) -> None:
    """Estimate how a policy would have done on logged sends (IPS, SNIPS, DM, DR), in bounded memory."""
    if (policy is None) == (probabilities is None):
        raise CliError("--policy / --probabilities: give exactly one")
    if (logs is None) == (experiment is None):
        raise CliError("--logs / --experiment: give exactly one (a log file, or an experiment in --db)")
    if slot is not None and experiment is None:
        raise CliError("--slot: needs --experiment (a log file names its columns with --action-col and "
                       "--propensity-col)")
    names = split_names("--estimators", estimators, get_args(EstimatorName))
    if reward_model not in get_args(RewardModelKind):
        kinds = list(get_args(RewardModelKind))
        raise CliError(f"--reward-model: unknown {reward_model!r}; choose from {kinds}")
    check_output("--html", html)
    candidate = load_candidate(policy) if policy is not None else None
    if dask is not None:
        check_dask_request(logs, probabilities, bootstrap, refit_bootstrap)
    if logs is not None and (dask is not None or is_partitioned(logs)):
        columns = resolve_columns(parquet_files(logs)[0], map_file, action_col, reward_col, propensity_col,
                                  position_col, context_cols)
        source: LogSource = PartitionedSource.open(logs, columns, chunk_rows=chunk_rows)
    elif logs is not None:
        columns = resolve_columns(logs, map_file, action_col, reward_col, propensity_col, position_col,
                                  context_cols)
        source = FileSource.open(logs, columns, chunk_rows=chunk_rows)
    else:
        from experiments.export import EXPORT_CHUNK_ROWS

        assert experiment is not None
        source = database_source(db, experiment, min(chunk_rows, EXPORT_CHUNK_ROWS), slot)
    cluster: AbstractContextManager[Any] = nullcontext()
    if dask is not None:
        from simulations.dask_replay import dask_client, dask_runner

        cluster = dask_client(dask)
    with cluster as client, progress_bars(hidden=as_json) as on_progress, \
            policy_errors(str(policy) if policy else None):
        request = ReplayRequest(
            candidate=candidate, probabilities=probabilities, estimators=names,  # type: ignore[arg-type]
            reward_model_kind=reward_model, alpha=alpha, seed=seed,  # type: ignore[arg-type]
            bootstrap=bootstrap, refit_bootstrap=refit_bootstrap, model_rows=model_rows,
        )
        result = replay_source(source, request, on_progress=on_progress,
                               run_chunks=dask_runner(client) if client is not None else None)
    if html is not None:
        from simulations.report import replay_html

        html.write_text(replay_html(result.replay, result.load), encoding="utf-8")
    if as_json:
        print_json(result.to_dict())
        return
    report, load = result.replay, result.load
    typer.echo(f"rows: {load.rows_read} read, {load.rows_used} used, {load.rows_rejected} set aside; "
               f"{report.train_rows} to train, {report.test_rows} evaluated")
    print_set_aside(load)
    estimates = [("logging policy", report.logged)]
    estimates += [(c.name, e) for c in report.candidates for e in c.estimates]
    rows = [[name, e.estimator, e.value, interval_text(e), e.effective_sample_size, "; ".join(e.warnings)]
            for name, e in estimates]
    print_table(["policy", "estimator", "value", f"{1 - alpha:.0%} CI", "ESS", "warnings"], rows)
    for candidate_result in report.candidates:
        for note in candidate_result.notes:
            typer.echo(f"{candidate_result.name}: {note}")
    if html is not None:
        typer.echo(f"report written to {html}")


def simulate(
    scenario: Annotated[Path, typer.Option(help="Scenario file (YAML).")],
    policies: Annotated[str | None, typer.Option(help="Comma-separated policies (default: the scenario's "
                                                 "named policies, else ab,thompson,ucb,vw).")] = None,
    seeds: Annotated[int, typer.Option(help="Repetitions (seeds 0 .. N-1).", min=1)] = 5,
    as_json: Json = False,
    html: Html = None,
) -> None:
    """Run policies on a synthetic audience and compare reward, regret and the A/B test's verdicts."""
    from simulations.scenario import load_scenario
    from simulations.synthetic import run_simulation

    loaded = load_scenario(scenario)
    default = ",".join(loaded.policies) if loaded.policies else "ab,thompson,ucb,vw"
    names = split_names("--policies", policies or default)
    check_output("--html", html)
    with progress_bars(hidden=as_json) as on_progress, policy_errors("--policies"):
        result = run_simulation(loaded, names, seeds,
                                on_progress=lambda _, done, total: on_progress("simulating", done, total))
    if html is not None:
        from simulations.report import simulation_html

        html.write_text(simulation_html(result), encoding="utf-8")
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    typer.echo(f"scenario {result.scenario!r}: {len(result.variants)} variants, "
               f"{sum(result.wave_sizes):,} recipients in {len(result.wave_sizes)} waves, {seeds} seeds")
    timed = loaded.timing is not None
    alerts = ["drift alerts"] if timed else []
    others = loaded.timing.others if loaded.timing is not None else []
    print_table(["policy", "reward", "regret", "regret sd", "loser share", *alerts, *others],
                [[p["policy"], p["final_reward_mean"], p["final_regret_mean"], p["final_regret_sd"],
                  p["loser_share_mean"]] + ([f"{p['drift_alert_share']:.0%}"] if timed else [])
                 + [p["events"][e]["total_mean"] for e in others]
                 for p in data["policies"]])
    ab = data["ab_test"]
    typer.echo(f"A/B test: declared a winner in {ab['declared_share']:.0%} of seeds, "
               f"the right one in {ab['declared_correct_share']:.0%}")
    if "multivariate_test" in data:
        typer.echo(f"multivariate test: the best combination observed was the right one in "
                   f"{data['multivariate_test']['correct_share']:.0%} of seeds")
    if html is not None:
        typer.echo(f"report written to {html}")
