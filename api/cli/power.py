"""``sendlab power rate|mean``: sample size and days before launch."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from analysis.power import solve_mean_sample_size, solve_rate_sample_size
from api.cli.output import print_fields, print_json
from api.convert import plan_to_dict

power_app = typer.Typer(help="Sample size and duration of a test before launch.", no_args_is_help=True)

Mde = Annotated[float, typer.Option(help="Minimum detectable effect (negative plans for a decrease).")]
Relative = Annotated[bool, typer.Option("--relative", help="Read --mde as a share of the baseline.")]
Alpha = Annotated[float, typer.Option(help="Family-wise significance level.")]
Power = Annotated[float, typer.Option(help="Probability of detecting the effect.")]
Arms = Annotated[int, typer.Option(help="Number of arms, the control included.")]
Ratio = Annotated[float, typer.Option(help="Size of each treatment arm relative to the control.")]
Daily = Annotated[int | None, typer.Option(help="Emails sent per day: prints the days needed.")]
Share = Annotated[float, typer.Option(help="Share of the daily volume in the test.")]
Alternative = Annotated[str, typer.Option(help="two-sided or one-sided.")]
Correction = Annotated[str, typer.Option(help="bonferroni or none (with more than two arms).")]
Json = Annotated[bool, typer.Option("--json", help="Print the full plan as JSON.")]


def _show(plan: Any, as_json: bool) -> None:
    data = plan_to_dict(plan)
    if as_json:
        print_json(data)
        return
    pairs: list[tuple[str, Any]] = [
        ("per arm", f"{data['per_arm']:,}"),
        ("arm sizes", ", ".join(f"{n:,}" for n in data["per_arm_sizes"])),
        ("total", f"{data['total']:,}"),
    ]
    if data["days"] is not None:
        pairs.append(("days", data["days"]))
    pairs.append(("method", data["method"]))
    print_fields(pairs)


@power_app.command("rate")
def power_rate(
    baseline: Annotated[float, typer.Option(help="Control rate, in (0, 1).")],
    mde: Mde,
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
    as_json: Json = False,
) -> None:
    """Recipients per arm and in total to detect a change of a rate (opens, clicks, purchases)."""
    plan = solve_rate_sample_size(
        baseline, mde, relative=relative, alpha=alpha, power=power, alternative=alternative,  # type: ignore[arg-type]
        arms=arms, ratio=ratio, daily=daily, traffic_share=traffic_share, method=method,  # type: ignore[arg-type]
        correction=correction,  # type: ignore[arg-type]
    )
    _show(plan, as_json)


@power_app.command("mean")
def power_mean(
    sd: Annotated[float, typer.Option(help="Standard deviation of the value per recipient.")],
    mde: Mde,
    baseline_mean: Annotated[float | None, typer.Option(help="Control mean (for --relative).")] = None,
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
    as_json: Json = False,
) -> None:
    """Recipients per arm and in total to detect a change of a mean (revenue per email)."""
    plan = solve_mean_sample_size(
        sd, mde, baseline_mean=baseline_mean, relative=relative, alpha=alpha, power=power,
        alternative=alternative, arms=arms, ratio=ratio, daily=daily,  # type: ignore[arg-type]
        traffic_share=traffic_share, method=method, correction=correction,  # type: ignore[arg-type]
    )
    _show(plan, as_json)
