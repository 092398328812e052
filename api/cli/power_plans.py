"""``sendlab power test-then-send | sequential | bandit``: plans for a campaign, not a single test.

Each command imports its simulation and chart libraries when it runs (see ``api.cli.group``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.group import CliError
from api.cli.output import check_output, print_fields, print_json
from api.cli.power_options import parse_whole_number
from api.convert import answer_to_dict

Alpha = Annotated[float, typer.Option(help="Significance level of the reported power.")]
Correction = Annotated[str, typer.Option(help="bonferroni or none (with more than two arms).")]
Seed = Annotated[int, typer.Option(help="Seeds the simulation; the same seed gives the same answer.")]
Html = Annotated[Path | None, typer.Option(help="Also write the chart as an offline HTML page here.")]
Json = Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")]

#: The largest simulations the command line runs: memory grows with the simulated paths or campaigns
#: (the HTTP routes cap the work lower, see ``api.routes.power``); 50 times the defaults.
MAX_SEQUENTIAL_REPLICATIONS = 1_000_000
MAX_BANDIT_REPLICATIONS = 10_000


def parse_rates(option: str, text: str) -> list[float]:
    """``"0.03, 0.036"`` -> ``[0.03, 0.036]``; anything else is reported for ``option``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise CliError(f"{option}: expected rates separated by commas, e.g. 0.03,0.036; got {text!r}") \
            from None


def print_plan(plan: Any, pairs: list[tuple[str, Any]], as_json: bool, html: Path | None = None,
               chart: Callable[[], str] | None = None) -> None:
    """The plan as JSON (``--json``) or as ``pairs``; its chart (``chart()``, a page) written to ``html``."""
    data = answer_to_dict(plan)
    if html is not None and chart is not None:
        html.write_text(chart(), encoding="utf-8")
    if as_json:
        print_json(data)
        return
    print_fields(pairs)
    if html is not None:
        typer.echo(f"\nchart written to {html}")


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise CliError(f"--seed: must be 0 or more; got {seed}")


def test_then_send(
    list_size: Annotated[int, typer.Option(parser=parse_whole_number, help="Recipients on the list.")],
    baseline: Annotated[float | None, typer.Option(help="Control rate, in (0, 1) (with --lift or "
                                                   "--prior-sd).")] = None,
    lift: Annotated[float | None, typer.Option(help="The treatment's effect, relative to the baseline "
                                               "(absolute with --absolute).")] = None,
    absolute: Annotated[bool, typer.Option("--absolute", help="Read --lift as a difference of "
                                           "rates.")] = False,
    rates: Annotated[str | None, typer.Option(help="The true rate of each arm, control first, "
                                              "comma-separated.")] = None,
    prior_sd: Annotated[float | None, typer.Option(help="Spread of a normal prior of the arms' rates "
                                                   "around --baseline.")] = None,
    arms: Annotated[int, typer.Option(help="Arms with --prior-sd (--rates sets it otherwise).")] = 2,
    alpha: Alpha = 0.05,
    correction: Correction = "bonferroni",
    html: Html = None,
    as_json: Json = False,
) -> None:
    """Test on a share of a known list, send the winner to the rest: the share that converts most."""
    from analysis.power.plots import figure_html, plot_test_then_send
    from analysis.power.test_then_send import plan_test_then_send

    check_output("--html", html)
    plan = plan_test_then_send(
        list_size, baseline, lift=lift, relative=not absolute,
        rates=None if rates is None else parse_rates("--rates", rates), prior_sd=prior_sd, arms=arms,
        alpha=alpha, correction=correction,  # type: ignore[arg-type]
    )
    winner = "-" if plan.prob_correct_winner is None else f"{plan.prob_correct_winner:.1%}"
    without = "control to everyone" if plan.model == "known rates" else "any one arm to everyone"
    print_plan(plan, [
        ("list size", f"{plan.list_size:,}"),
        ("per arm", f"{plan.per_arm:,}"),
        ("test", f"{plan.test_size:,} ({plan.test_share:.1%} of the list, {plan.arms} arms)"),
        ("send to the rest", f"{plan.send_size:,}"),
        ("expected conversions", f"{plan.expected_conversions:,.0f}"),
        ("  without a test", f"{plan.expected_conversions_without_test:,.0f} ({without})"),
        ("  knowing the winner", f"{plan.expected_conversions_perfect:,.0f}"),
        ("power", f"{plan.power:.3f}"),
        ("right winner", winner),
        ("method", plan.method),
    ], as_json, html, lambda: figure_html(plot_test_then_send(plan)))


def sequential(
    design: Annotated[str, typer.Option(help="msprt (analyse any time), pocock or "
                                        "obrien_fleming.")] = "msprt",
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Power, as for the fixed test.")] = 0.8,
    looks: Annotated[int | None, typer.Option(help="Analyses (pocock, obrien_fleming: at most 10, default "
                                              "5) or mSPRT checks per fixed sample (default 100).")] = None,
    mixing_ratio: Annotated[float, typer.Option(help="mSPRT mixing sd over the planned effect.")] = 1.0,
    replications: Annotated[int, typer.Option(
        help="mSPRT simulated paths.", max=MAX_SEQUENTIAL_REPLICATIONS)] = 20_000,
    fixed_n: Annotated[int | None, typer.Option(parser=parse_whole_number, help="A fixed-sample size "
                                                "(per arm or total) to inflate.")] = None,
    seed: Seed = 0,
    as_json: Json = False,
) -> None:
    """How much larger the sample is when the test is analysed sequentially (peeking), same power."""
    from analysis.power.sequential import sequential_inflation

    _check_seed(seed)
    result = sequential_inflation(
        design, seed=seed, alpha=alpha, power=power, looks=looks,  # type: ignore[arg-type]
        mixing_ratio=mixing_ratio, replications=replications, fixed_n=fixed_n,
    )
    pairs: list[tuple[str, Any]] = [
        ("design", result.design),
        ("looks", result.looks),
        ("inflation", f"{result.inflation:.4f} x the fixed sample"),
        ("expected sample", f"{result.expected_sample_ratio:.4f} x the fixed sample, under the effect"),
    ]
    if result.critical_value is not None:
        pairs.append(("critical value", f"{result.critical_value:.4f}"))
    if result.fixed_n is not None:
        pairs += [("fixed n", f"{result.fixed_n:,}"), ("sequential n", f"{result.sequential_n:,}")]
    pairs += [("seed", seed), ("method", result.method)]
    print_plan(result, pairs, as_json)


def bandit(
    rates: Annotated[str, typer.Option(help="Assumed true rate of each arm, control first, "
                                       "comma-separated.")],
    horizon: Annotated[int, typer.Option(parser=parse_whole_number, help="Sends in the campaign.")],
    batches: Annotated[int, typer.Option(help="Batches the sends go out in; the bandit learns between "
                                         "them.")] = 20,
    replications: Annotated[int, typer.Option(
        help="Simulated campaigns.", max=MAX_BANDIT_REPLICATIONS)] = 200,
    draws: Annotated[int, typer.Option(help="The policy's draws for its probabilities of being "
                                       "best.")] = 1000,
    alpha: Alpha = 0.05,
    correction: Correction = "bonferroni",
    seed: Seed = 0,
    html: Html = None,
    as_json: Json = False,
) -> None:
    """Share of traffic a Thompson sampling bandit sends to losing variants, vs a fixed A/B test."""
    from analysis.power.bandit import plan_bandit
    from analysis.power.plots import figure_html, plot_bandit_plan
    from api.cli.progress import progress_after

    _check_seed(seed)
    values = parse_rates("--rates", rates)
    check_output("--html", html)
    length = max(replications, 1)
    with progress_after(length, "simulating campaigns", hidden=as_json) as report:
        plan = plan_bandit(values, horizon, seed=seed, batches=batches,
                           replications=replications, n_draws=draws, alpha=alpha,
                           correction=correction, on_progress=report)  # type: ignore[arg-type]
    print_plan(plan, [
        ("to losing variants", f"{plan.losing_share_bandit:.1%} ± {plan.losing_share_bandit_se:.1%} "
                               f"(bandit) vs {plan.losing_share_fixed:.1%} (fixed A/B test)"),
        ("lost conversions", f"{plan.lost_conversions_bandit:,.1f} ± {plan.lost_conversions_bandit_se:,.1f} "
                             f"(bandit) vs {plan.lost_conversions_fixed:,.1f} (fixed)"),
        ("bandit picks best", f"{plan.prob_bandit_picks_best:.1%} of campaigns"),
        ("fixed test power", f"{plan.fixed_power:.3f}"),
        ("campaigns", f"{plan.replications:,} simulated, seed {seed}"),
        ("method", plan.method),
    ], as_json, html, lambda: figure_html(plot_bandit_plan(plan)))
