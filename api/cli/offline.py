"""``sendlab replay`` and ``sendlab simulate``: offline, before anyone launches a policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from api.cli.group import CliError
from api.cli.output import print_json, print_table
from simulations.candidates import load_candidate
from simulations.estimators import EstimatorName
from simulations.logs import ColumnMap, column_map, load_column_map
from simulations.replay_files import replay_files
from simulations.report import replay_html, simulation_html
from simulations.reward_model import RewardModelKind
from simulations.scenario import load_scenario
from simulations.synthetic import run_simulation

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
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
    map_file: Path | None, action: str | None, reward: str | None, propensity: str | None,
    position: str | None, context: str | None,
) -> ColumnMap:
    """The column map from ``--map`` with the single-column options laid over it."""
    fields: dict[str, Any] = load_column_map(map_file).model_dump() if map_file is not None else {}
    given = {"action": action, "reward": reward, "propensity": propensity, "position": position}
    fields.update({k: v for k, v in given.items() if v is not None})
    if context is not None:
        fields["context"] = tuple(split_names("--context-cols", context))
    missing = [f"--{k}-col" for k in ("action", "reward", "propensity") if not fields.get(k)]
    if missing:
        raise CliError(f"{', '.join(missing)}: needed (or give them in --map)")
    return column_map(**fields)


def replay(
    logs: Annotated[Path, typer.Option(help="Logged sends, CSV or Parquet.")],
    map_file: Annotated[Path | None, typer.Option("--map", help="YAML column map.")] = None,
    action_col: Annotated[str | None, typer.Option(help="Column of the chosen variant.")] = None,
    reward_col: Annotated[str | None, typer.Option(help="Column of the reward.")] = None,
    propensity_col: Annotated[str | None, typer.Option(help="Column of the logged propensity.")] = None,
    position_col: Annotated[str | None, typer.Option(help="Column of the slot position.")] = None,
    context_cols: Annotated[str | None, typer.Option(help="Feature columns, comma-separated.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Candidate policy spec (YAML).")] = None,
    probabilities: Annotated[Path | None, typer.Option(help="Per-row probabilities, CSV or Parquet.")] = None,
    estimators: Annotated[str, typer.Option(help="Comma-separated estimators.")] = "ips,snips,dm,dr",
    reward_model: Annotated[str, typer.Option(help="auto, logistic, linear or vw (for dm and dr).")] = "auto",
    alpha: Annotated[float, typer.Option(help="Intervals at 1 - alpha.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of training and bootstraps.")] = 0,
    as_json: Json = False,
    html: Html = None,
) -> None:
    """Estimate how a policy would have done on logged sends (IPS, SNIPS, DM, DR)."""
    if (policy is None) == (probabilities is None):
        raise CliError("--policy / --probabilities: give exactly one")
    names = split_names("--estimators", estimators, get_args(EstimatorName))
    if reward_model not in get_args(RewardModelKind):
        kinds = list(get_args(RewardModelKind))
        raise CliError(f"--reward-model: unknown {reward_model!r}; choose from {kinds}")
    columns = resolve_columns(map_file, action_col, reward_col, propensity_col, position_col, context_cols)
    candidate = load_candidate(policy) if policy is not None else None
    result = replay_files(
        logs, columns, candidate=candidate, probabilities=probabilities, estimators=names,  # type: ignore[arg-type]
        reward_model_kind=reward_model, alpha=alpha, seed=seed,  # type: ignore[arg-type]
    )
    if html is not None:
        html.write_text(replay_html(result.replay), encoding="utf-8")
    if as_json:
        print_json(result.to_dict())
        return
    report = result.replay
    typer.echo(f"rows: {result.load.rows_read} read, {report.train_rows} to train, "
               f"{report.test_rows} to evaluate")
    estimates = [("logging policy", report.logged)]
    estimates += [(c.name, e) for c in report.candidates for e in c.estimates]
    rows = [[name, e.estimator, e.value, f"[{e.ci[0]:.4g}, {e.ci[1]:.4g}]", e.effective_sample_size,
             "; ".join(e.warnings)] for name, e in estimates]
    print_table(["policy", "estimator", "value", f"{1 - alpha:.0%} CI", "ESS", "warnings"], rows)
    if html is not None:
        typer.echo(f"report written to {html}")


def simulate(
    scenario: Annotated[Path, typer.Option(help="Scenario file (YAML).")],
    policies: Annotated[str, typer.Option(help="Comma-separated policies.")] = "ab,thompson,ucb,vw",
    seeds: Annotated[int, typer.Option(help="Repetitions (seeds 0 .. N-1).", min=1)] = 5,
    as_json: Json = False,
    html: Html = None,
) -> None:
    """Run policies on a synthetic audience and compare reward, regret and the A/B test's verdicts."""
    loaded = load_scenario(scenario)
    names = split_names("--policies", policies)
    with typer.progressbar(length=len(names) * seeds, label="simulating", hidden=as_json) as bar:
        result = run_simulation(loaded, names, seeds, on_progress=lambda *_: bar.update(1))
    if html is not None:
        html.write_text(simulation_html(result), encoding="utf-8")
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    typer.echo(f"scenario {result.scenario!r}: {len(result.variants)} variants, "
               f"{sum(result.wave_sizes):,} recipients in {len(result.wave_sizes)} waves, {seeds} seeds")
    print_table(["policy", "reward", "regret", "regret sd", "loser share"],
                [[p["policy"], p["final_reward_mean"], p["final_regret_mean"], p["final_regret_sd"],
                  p["loser_share_mean"]] for p in data["policies"]])
    ab = data["ab_test"]
    typer.echo(f"A/B test: declared a winner in {ab['declared_share']:.0%} of seeds, "
               f"the right one in {ab['declared_correct_share']:.0%}")
    if html is not None:
        typer.echo(f"report written to {html}")
