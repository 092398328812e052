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
from api.cli.power_options import QuestionOptions, with_question_options
from api.cli.power_plans import bandit, sequential, test_then_send
from api.convert import MEAN_MDE_OMITS, WITHOUT_SIZES, answer_to_dict, plan_to_dict

power_app = typer.Typer(
    help="Sample size, minimum detectable effect, power and duration of a test before launch.",
    no_args_is_help=True,
)

def _question(options: QuestionOptions) -> str:
    """``"size"``, ``"mde"`` or ``"power"``, from the options given; contradictions are bad input."""
    if options.mde is None and options.n is None:
        raise CliError("--mde / --n: give --mde (sample size), --n (minimum detectable effect) or both "
                       "(power)")
    if options.direction is not None and options.mde is not None:
        raise CliError("--direction: only with --n alone; the sign of --mde gives the direction")
    if options.daily is not None and options.n is not None:
        raise CliError("--daily: only for the sample-size question (--mde without --n)")
    return "size" if options.n is None else ("mde" if options.mde is None else "power")


def _solve(solve: Callable[..., Any], question: str, options: QuestionOptions) -> Any:
    """The metric's solver on the question: the size, the effect, or the power (then ``--power`` is
    only the curve's target)."""
    if question == "size":
        return solve(mde=options.mde, relative=options.relative, power=options.power, daily=options.daily,
                     traffic_share=options.traffic_share)
    if question == "mde":
        return solve(n_per_arm=options.n, power=options.power, direction=options.direction or "increase")
    return solve(mde=options.mde, relative=options.relative, n_per_arm=options.n, power=None)


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


def _curve(options: QuestionOptions, question: str, **kwargs: Any) -> Any:
    """The power curve when asked: over the effect at ``--n`` for the effect question, else over n."""
    if not (options.curve or options.html is not None):
        return None
    from analysis.power.curves import power_curve
    from analysis.power.plots import power_curve_html

    common = {"points": options.points, "target_power": options.power, **kwargs}
    if question == "mde":
        curve = power_curve(over="effect", n_per_arm=options.n, **common)
    else:
        curve = power_curve(over="n", mde=options.mde, relative=options.relative, **common)
    if options.html is not None:
        options.html.write_text(power_curve_html(curve), encoding="utf-8")
    return curve


def _html_note(options: QuestionOptions) -> None:
    if options.html is not None and not options.as_json:
        typer.echo(f"\nchart written to {options.html}")


@power_app.command("rate")
@with_question_options
def power_rate(
    options: QuestionOptions,
    baseline: Annotated[float, typer.Option(help="Control rate, in (0, 1).")],
    method: Annotated[str, typer.Option(help="statsmodels (Cohen's h) or unpooled.")] = "statsmodels",
) -> None:
    """A rate (opens, clicks, purchases): recipients needed, smallest detectable effect, or power.

    --mde alone gives the recipients needed (and days with --daily); --n alone the smallest effect that
    many recipients per arm detect; --n with --mde the power.
    """
    question = _question(options)
    check_output("--html", options.html)
    settings = options.test_settings(method)
    answer = _solve(lambda **q: solve_rate(baseline, **q, **settings), question, options)
    drawn = _curve(options, question, metric="rate", baseline=baseline, **settings)
    lines = [] if question == "size" else [
        ("mde", f"{answer.mde_absolute:+.6g} ({_signed_percent(answer.mde_relative)} of {baseline:g})"),
        ("treatment rate", f"{answer.treatment_rate:.6g}"),
    ]
    _show(answer, question, lines, options.as_json, drawn)
    _html_note(options)


@power_app.command("mean")
@with_question_options
def power_mean(
    options: QuestionOptions,
    sd: Annotated[float | None, typer.Option(help="Standard deviation of the value per recipient.")] = None,
    values: Annotated[Path | None, typer.Option(
        help="Past values per recipient instead of --sd: one number per line, or a CSV column.")] = None,
    column: Annotated[str | None, typer.Option(help="The CSV column of --values.")] = None,
    baseline_mean: Annotated[float | None, typer.Option(
        help="Control mean (for --relative; --values gives it).")] = None,
    method: Annotated[str, typer.Option(help="statsmodels (t test) or normal.")] = "statsmodels",
) -> None:
    """A mean value (revenue per email): recipients needed, smallest detectable effect, or power.

    The spread is --sd, or --values FILE of past values per recipient. --mde alone gives the recipients
    needed (and days with --daily); --n alone the smallest effect that many recipients per arm detect;
    --n with --mde the power.
    """
    from analysis.power.means import solve_mean
    from api.cli.past_values import read_past_values
    from api.errors import reported_as

    question = _question(options)
    if sd is not None and values is not None:
        raise CliError("--sd / --values: give one of them")
    if sd is None and values is None:
        raise CliError("--sd / --values: give the standard deviation or a file of past values")
    if column is not None and values is None:
        raise CliError("--column: only with --values")
    check_output("--html", options.html)
    sample = read_past_values(values, column) if values is not None else None
    settings = options.test_settings(method)
    with reported_as(sample="values"):  # the sample is the --values file here
        spread = {"sample": sample, "baseline_mean": baseline_mean}
        answer = _solve(lambda **q: solve_mean(sd, **spread, **q, **settings), question, options)
        drawn = _curve(options, question, metric="mean", sd=sd, sample=sample, baseline=baseline_mean,
                       **settings)
    if question == "size":
        lines = [] if sample is None else [("sd", _describe_sd(answer.sd, sample, values))]
    else:
        lines = [("sd", _describe_sd(answer.sd, sample, values)),
                 ("mde", _mean_effect(answer.mde_absolute, answer.mde_relative, answer.baseline_mean)),
                 ("effect size", f"{answer.effect_size:+.4g} sd")]
    _show(answer, question, lines, options.as_json, drawn,
          MEAN_MDE_OMITS if question == "mde" else WITHOUT_SIZES)
    _html_note(options)


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
