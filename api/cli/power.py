"""``sendlab power``: sample size, minimum detectable effect, power, curves and campaign plans.

``rate`` and ``mean`` answer one of three questions, picked by what is given: ``--mde`` alone gives the
sample size (and days with ``--daily``); ``--n`` alone the minimum detectable effect at that size;
``--n`` with ``--mde`` the power. ``--curve`` adds the power curve as a table, ``--html FILE`` writes it
as an offline chart too. ``test-then-send``, ``sequential`` and ``bandit`` plan a campaign (see
``api.cli.power_plans``). A rate question needs only the standard library's normal distribution;
the mean questions, curves and charts import their libraries when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from analysis.power.rates import solve_rate
from api.cli.group import CliError
from api.cli.output import check_output, print_fields, print_json, print_table
from api.cli.power_plans import bandit, sequential, test_then_send
from api.convert import MEAN_MDE_OMITS, WITHOUT_SIZES, answer_to_dict, plan_to_dict

power_app = typer.Typer(
    help="Sample size, minimum detectable effect, power and duration of a test before launch.",
    no_args_is_help=True,
)

Mde = Annotated[float | None, typer.Option(
    help="Minimum detectable effect (negative plans for a decrease); with --n: the effect whose power "
    "is asked.")]
N = Annotated[int | None, typer.Option(
    "--n", "--n-per-arm", help="Recipients in the control arm: alone, answers the minimum detectable "
    "effect; with --mde, the power.")]
Relative = Annotated[bool, typer.Option("--relative", help="Read --mde as a share of the baseline.")]
Alpha = Annotated[float, typer.Option(help="Family-wise significance level.")]
Power = Annotated[float, typer.Option(
    help="Probability of detecting the effect (with --n and --mde: the target marked on the curve).")]
Arms = Annotated[int, typer.Option(help="Number of arms, the control included.")]
Ratio = Annotated[float, typer.Option(help="Size of each treatment arm relative to the control.")]
Daily = Annotated[int | None, typer.Option(help="Emails sent per day: prints the days needed.")]
Share = Annotated[float, typer.Option(help="Share of the daily volume in the test.")]
Alternative = Annotated[str, typer.Option(help="two-sided or one-sided.")]
Correction = Annotated[str, typer.Option(help="bonferroni or none (with more than two arms).")]
Direction = Annotated[str | None, typer.Option(
    help="With --n alone: increase (default) or decrease of the metric.")]
Curve = Annotated[bool, typer.Option("--curve", help="Add the power curve (a table; over n, or over "
                                     "the effect, drawn for increases, with --n alone).")]
Points = Annotated[int, typer.Option(help="Points on the power curve.")]
Html = Annotated[Path | None, typer.Option(help="Write the power curve as an offline HTML chart here "
                                           "(implies --curve).")]
Json = Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")]


def _question(mde: float | None, n: int | None, direction: str | None, daily: int | None) -> str:
    """``"size"``, ``"mde"`` or ``"power"``, from the options given; contradictions are bad input."""
    if mde is None and n is None:
        raise CliError("--mde / --n: give --mde (sample size), --n (minimum detectable effect) or both "
                       "(power)")
    if direction is not None and mde is not None:
        raise CliError("--direction: only with --n alone; the sign of --mde gives the direction")
    if daily is not None and n is not None:
        raise CliError("--daily: only for the sample-size question (--mde without --n)")
    return "size" if n is None else ("mde" if mde is None else "power")


def _solve(solve: Callable[..., Any], question: str, *, mde: float | None, n: int | None, relative: bool,
           power: float, direction: str | None, daily: int | None, traffic_share: float) -> Any:
    """The metric's solver on the question: the size, the effect, or the power (then ``--power`` is
    only the curve's target)."""
    if question == "size":
        return solve(mde=mde, relative=relative, power=power, daily=daily, traffic_share=traffic_share)
    if question == "mde":
        return solve(n_per_arm=n, power=power, direction=direction or "increase")
    return solve(mde=mde, relative=relative, n_per_arm=n, power=None)


def _signed_percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _show(answer: Any, question: str, metric_lines: list[tuple[str, Any]], as_json: bool, curve: Any,
          omit: frozenset[str] = WITHOUT_SIZES) -> None:
    """Print the answer (``omit`` leaves fields out of the JSON of an effect or power answer)."""
    data = plan_to_dict(answer) if question == "size" else answer_to_dict(answer, omit)
    if as_json:
        print_json({**data, "curve": answer_to_dict(curve)} if curve is not None else data)
        return
    if question == "size":
        pairs: list[tuple[str, Any]] = [
            ("per arm", f"{data['per_arm']:,}"),
            ("arm sizes", ", ".join(f"{n:,}" for n in data["per_arm_sizes"])),
            ("total", f"{data['total']:,}"),
        ]
        if data["days"] is not None:
            pairs.append(("days", data["days"]))
        pairs += metric_lines
    else:
        n_text = f"{answer.n_per_arm:,}" if question == "mde" else f"{answer.n_per_arm:,.0f}"
        power_text = f"{answer.power:g}" if question == "mde" else f"{answer.power:.4f}"
        pairs = [("n per arm", n_text), *metric_lines, ("power", power_text)]
    print_fields(pairs + [("method", answer.method)])
    _print_curve(curve)


def _print_curve(curve: Any) -> None:
    if curve is None:
        return
    answer_to_dict(curve)  # the same finiteness check as the JSON answer
    if curve.over == "n":
        typer.echo(f"\npower curve (effect {curve.fixed_effect:+.6g} fixed)")
        rows = [[f"{x:,.0f}", f"{p:.3f}"] for x, p in zip(curve.x, curve.power, strict=True)]
        print_table(["n per arm", "power"], rows)
    else:
        typer.echo(f"\npower curve ({curve.fixed_n_per_arm:,} per arm fixed)")
        rows = [[f"{x:+.6g}", f"{p:.3f}"] for x, p in zip(curve.x, curve.power, strict=True)]
        print_table(["effect", "power"], rows)


def _curve(want: bool, html: Path | None, question: str, mde: float | None, n: int | None, relative: bool,
           **kwargs: Any) -> Any:
    """The power curve when asked: over the effect at ``n`` for the effect question, else over n."""
    if not (want or html is not None):
        return None
    from analysis.power.curves import power_curve
    from analysis.power.plots import power_curve_html

    if question == "mde":
        curve = power_curve(over="effect", n_per_arm=n, **kwargs)
    else:
        curve = power_curve(over="n", mde=mde, relative=relative, **kwargs)
    if html is not None:
        html.write_text(power_curve_html(curve), encoding="utf-8")
    return curve


def _html_note(html: Path | None, as_json: bool) -> None:
    if html is not None and not as_json:
        typer.echo(f"\nchart written to {html}")


@power_app.command("rate")
def power_rate(
    baseline: Annotated[float, typer.Option(help="Control rate, in (0, 1).")],
    mde: Mde = None,
    n: N = None,
    relative: Relative = False,
    alpha: Alpha = 0.05,
    power: Power = 0.8,
    arms: Arms = 2,
    ratio: Ratio = 1.0,
    daily: Daily = None,
    traffic_share: Share = 1.0,
    alternative: Alternative = "two-sided",
    correction: Correction = "bonferroni",
    method: Annotated[str, typer.Option(help="statsmodels (Cohen's h) or unpooled.")] = "statsmodels",
    direction: Direction = None,
    curve: Curve = False,
    points: Points = 25,
    html: Html = None,
    as_json: Json = False,
) -> None:
    """A rate (opens, clicks, purchases): recipients needed, smallest detectable effect, or power.

    --mde alone gives the recipients needed (and days with --daily); --n alone the smallest effect that
    many recipients per arm detect; --n with --mde the power.
    """
    question = _question(mde, n, direction, daily)
    check_output("--html", html)
    options: dict[str, Any] = {"alpha": alpha, "alternative": alternative, "arms": arms, "ratio": ratio,
                               "method": method, "correction": correction}
    answer = _solve(lambda **q: solve_rate(baseline, **q, **options), question, mde=mde, n=n,
                    relative=relative, power=power, direction=direction, daily=daily,
                    traffic_share=traffic_share)
    drawn = _curve(curve, html, question, mde, n, relative, metric="rate", baseline=baseline, points=points,
                   target_power=power, **options)
    lines = [] if question == "size" else [
        ("mde", f"{answer.mde_absolute:+.6g} ({_signed_percent(answer.mde_relative)} of {baseline:g})"),
        ("treatment rate", f"{answer.treatment_rate:.6g}"),
    ]
    _show(answer, question, lines, as_json, drawn)
    _html_note(html, as_json)


@power_app.command("mean")
def power_mean(
    sd: Annotated[float | None, typer.Option(help="Standard deviation of the value per recipient.")] = None,
    mde: Mde = None,
    n: N = None,
    values: Annotated[Path | None, typer.Option(
        help="Past values per recipient instead of --sd: one number per line, or a CSV column.")] = None,
    column: Annotated[str | None, typer.Option(help="The CSV column of --values.")] = None,
    baseline_mean: Annotated[float | None, typer.Option(
        help="Control mean (for --relative; --values gives it).")] = None,
    relative: Relative = False,
    alpha: Alpha = 0.05,
    power: Power = 0.8,
    arms: Arms = 2,
    ratio: Ratio = 1.0,
    daily: Daily = None,
    traffic_share: Share = 1.0,
    alternative: Alternative = "two-sided",
    correction: Correction = "bonferroni",
    method: Annotated[str, typer.Option(help="statsmodels (t test) or normal.")] = "statsmodels",
    direction: Direction = None,
    curve: Curve = False,
    points: Points = 25,
    html: Html = None,
    as_json: Json = False,
) -> None:
    """A mean value (revenue per email): recipients needed, smallest detectable effect, or power.

    The spread is --sd, or --values FILE of past values per recipient. --mde alone gives the recipients
    needed (and days with --daily); --n alone the smallest effect that many recipients per arm detect;
    --n with --mde the power.
    """
    from analysis.power.means import solve_mean
    from api.cli.past_values import read_past_values
    from api.errors import reported_as

    question = _question(mde, n, direction, daily)
    if sd is not None and values is not None:
        raise CliError("--sd / --values: give one of them")
    if sd is None and values is None:
        raise CliError("--sd / --values: give the standard deviation or a file of past values")
    if column is not None and values is None:
        raise CliError("--column: only with --values")
    check_output("--html", html)
    sample = read_past_values(values, column) if values is not None else None
    options: dict[str, Any] = {"alpha": alpha, "alternative": alternative, "arms": arms, "ratio": ratio,
                               "method": method, "correction": correction}
    with reported_as(sample="values"):  # the sample is the --values file here
        answer = _solve(lambda **q: solve_mean(sd, sample=sample, baseline_mean=baseline_mean, **q,
                **options),
                        question, mde=mde, n=n, relative=relative, power=power, direction=direction,
                        daily=daily, traffic_share=traffic_share)
        drawn = _curve(curve, html, question, mde, n, relative, metric="mean", sd=sd, sample=sample,
                       baseline=baseline_mean, points=points, target_power=power, **options)
    if question == "size":
        lines = [] if sample is None else [("sd", _describe_sd(answer.sd, sample, values))]
    else:
        lines = [("sd", _describe_sd(answer.sd, sample, values)),
                 ("mde", _mean_effect(answer.mde_absolute, answer.mde_relative, answer.baseline_mean)),
                 ("effect size", f"{answer.effect_size:+.4g} sd")]
    _show(answer, question, lines, as_json, drawn, MEAN_MDE_OMITS if question == "mde" else WITHOUT_SIZES)
    _html_note(html, as_json)


def _describe_sd(sd: float, sample: list[float] | None, path: Path | None) -> str:
    if sample is None:
        return f"{sd:.6g}"
    return f"{sd:.6g} (from {len(sample):,} values in {path})"


def _mean_effect(absolute: float, relative: float | None, baseline: float | None) -> str:
    if relative is None or baseline is None:
        return f"{absolute:+.6g}"
    return f"{absolute:+.6g} ({_signed_percent(relative)} of {baseline:.6g})"


power_app.command("test-then-send")(test_then_send)
power_app.command("sequential")(sequential)
power_app.command("bandit")(bandit)
